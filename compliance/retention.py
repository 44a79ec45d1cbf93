"""Retention (LGPD Art. 15/16): chat data past DATA_RETENTION_DAYS and audit
events past AUDIT_RETENTION_DAYS are deleted in bounded batches.

Chat data goes session by session (with its messages and provider attempts),
by last activity, skipping sessions under legal hold. Each batch is one short
transaction that locks its sessions with `SELECT ... FOR UPDATE SKIP LOCKED`,
so two runs at once share the work instead of colliding, a session being
written to by the chat is left for the next run, and running twice deletes
nothing more. Every batch records a retention_purge event with its counts in
the same transaction.

Audit events are append-only in the database: a trigger refuses UPDATE and
DELETE on the table. The only way past it is the transaction-local setting
`neonpro.audit_purge = on`, which `audit_purge_expired` sets for its own
batches. It only deletes the oldest events (a prefix of the chain), and it
records the hash of the last one removed in a new retention_purge event, which
`verify_audit_chain` uses as the anchor for the oldest event that remains.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from auditlog.context import disable_auditlog
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Max
from django.utils import timezone

from chat.models import ChatMessage, ChatSession, ProviderAttempt
from compliance import audit
from compliance.models import AuditEvent

AUDIT_PURGE_SETTING = "neonpro.audit_purge"


@dataclass
class PurgeResult:
    """What a purge run deleted (or, with dry_run, would delete)."""

    sessions: int = 0
    messages: int = 0
    provider_attempts: int = 0
    batches: int = 0
    legal_hold_skipped: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def retention_cutoff(*, now: datetime | None = None) -> datetime:
    """Sessions whose last activity is older than this are past retention."""
    return (now or timezone.now()) - timedelta(days=settings.DATA_RETENTION_DAYS)


def _expired_sessions(cutoff: datetime):
    return ChatSession.objects.filter(last_activity_at__lt=cutoff)


# Every relation that points at sessions or messages, and is deleted here explicitly.
_KNOWN_RELATIONS = {("chat.ChatMessage", "session"), ("chat.ChatMessage", "reply_to"),
                    ("chat.ProviderAttempt", "message")}


def _only_known_relations() -> bool:
    found = {(rel.related_model._meta.label, rel.field.name)
             for model in (ChatSession, ChatMessage) for rel in model._meta.related_objects}
    return found <= _KNOWN_RELATIONS


def _delete_sessions(ids: list) -> PurgeResult:
    """Delete sessions with their messages and attempts; the caller holds their row locks."""
    if _only_known_relations():
        # One set-based DELETE per table: nothing is loaded or decrypted, and no
        # per-row signal fires (the retention_purge event records the batch).
        # Foreign keys are deferred to the commit, so the order is free.
        # Attempts by their message ids (a filter through the join would make Django
        # compare attempt ids against a self-join, a scan of the whole table per batch).
        messages = ChatMessage.objects.filter(session_id__in=ids).values("id")
        return PurgeResult(
            provider_attempts=ProviderAttempt.objects.filter(
                message_id__in=messages)._raw_delete(DEFAULT_DB_ALIAS),
            messages=ChatMessage.objects.filter(session_id__in=ids)._raw_delete(DEFAULT_DB_ALIAS),
            sessions=ChatSession.objects.filter(id__in=ids)._raw_delete(DEFAULT_DB_ALIAS),
            batches=1,
        )
    # Someone added a relation: let Django's collector follow it (slower, but complete).
    with disable_auditlog():
        _, deleted = ChatSession.objects.filter(id__in=ids).only("id").delete()
    return PurgeResult(
        sessions=deleted.get(ChatSession._meta.label, 0),
        messages=deleted.get(ChatMessage._meta.label, 0),
        provider_attempts=deleted.get(ProviderAttempt._meta.label, 0),
        batches=1,
    )


def _purge_batch(*, cutoff: datetime, batch_size: int, run_id: str, number: int
                 ) -> PurgeResult | None:
    with transaction.atomic():
        ids = list(
            _expired_sessions(cutoff).filter(legal_hold=False)
            .select_for_update(skip_locked=True)
            .order_by("last_activity_at")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return None
        batch = _delete_sessions(ids)
        audit.record_event(event_type=audit.Event.RETENTION_PURGE, metadata={
            "scope": "chat", "run_id": run_id, "batch": number,
            "retention_days": settings.DATA_RETENTION_DAYS,
            "cutoff": cutoff.isoformat(), "sessions": batch.sessions,
            "messages": batch.messages, "provider_attempts": batch.provider_attempts,
        })
    return batch


def _dry_run(cutoff: datetime) -> PurgeResult:
    sessions = _expired_sessions(cutoff).filter(legal_hold=False)
    return PurgeResult(
        sessions=sessions.count(),
        messages=ChatMessage.objects.filter(session__in=sessions).count(),
        provider_attempts=ProviderAttempt.objects.filter(message__session__in=sessions).count(),
        legal_hold_skipped=_expired_sessions(cutoff).filter(legal_hold=True).count(),
        dry_run=True,
    )


def purge_expired_data(*, dry_run: bool = False, batch_size: int | None = None,
                       now: datetime | None = None) -> PurgeResult:
    """Delete chat sessions (with messages and attempts) past DATA_RETENTION_DAYS.

    Safe to run twice or concurrently. With `dry_run` nothing is deleted and
    nothing is recorded; the counts say what a real run would delete.
    """
    cutoff = retention_cutoff(now=now)
    if dry_run:
        return _dry_run(cutoff)
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH_SIZE
    run_id = uuid.uuid4().hex
    result = PurgeResult()
    while (batch := _purge_batch(cutoff=cutoff, batch_size=batch_size, run_id=run_id,
                                 number=result.batches + 1)) is not None:
        result.sessions += batch.sessions
        result.messages += batch.messages
        result.provider_attempts += batch.provider_attempts
        result.batches += 1
    result.legal_hold_skipped = _expired_sessions(cutoff).filter(legal_hold=True).count()
    return result


# --- Audit events -----------------------------------------------------------------------


def _set_audit_purge(value: str) -> None:
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", [AUDIT_PURGE_SETTING, value])


@contextlib.contextmanager
def _audit_delete_allowed() -> Iterator[None]:
    """Let the append-only trigger pass DELETEs, for this block of this transaction only."""
    _set_audit_purge("on")
    yield
    # Switched off at once: even inside a longer transaction nothing else slips through.
    # (On an error the rollback undoes the setting anyway.)
    _set_audit_purge("off")


def audit_purge_expired(*, dry_run: bool = False, batch_size: int = 5000,
                        now: datetime | None = None) -> int:
    """Delete audit events older than AUDIT_RETENTION_DAYS (oldest first); returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    up_to = AuditEvent.objects.filter(created_at__lt=cutoff).aggregate(top=Max("id"))["top"]
    if up_to is None:
        return 0
    if dry_run:
        return AuditEvent.objects.filter(id__lte=up_to).count()
    total = 0
    while True:
        with transaction.atomic():
            audit.lock_chain()  # one purge at a time, and no append sees a half-done batch
            first = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()
            if first is None or first > up_to:
                return total
            last = min(first + batch_size - 1, up_to)
            anchor_hash = AuditEvent.objects.values_list("hash", flat=True).get(id=last)
            batch = AuditEvent.objects.filter(id__lte=last)
            expected = batch.count()
            # Recorded before the delete, so the table never becomes empty: an empty
            # table would restart the chain at id 1 from the genesis hash.
            audit.record_event(event_type=audit.Event.RETENTION_PURGE, metadata={
                "scope": "audit", "deleted": expected, "up_to_id": last,
                "anchor_hash": anchor_hash,
                "retention_days": settings.AUDIT_RETENTION_DAYS,
            })
            with _audit_delete_allowed():
                deleted = batch._raw_delete(DEFAULT_DB_ALIAS)
            if deleted != expected:  # rolls the batch back, its event included
                raise RuntimeError("audit purge batch changed while it was being deleted")
            total += deleted
