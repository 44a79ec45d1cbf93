"""The chat's part of the retention purge (LGPD Art. 15/16): sessions past retention.

Sessions go with their messages and provider attempts, by last activity,
skipping sessions under legal hold. Each batch is one short transaction that
locks its sessions with `SELECT ... FOR UPDATE SKIP LOCKED`, so two runs at
once share the work instead of colliding, a session being written to by the
chat is left for the next run, and running twice deletes nothing more. Every
batch records a retention_purge event with its counts in the same transaction.
The schedule, the cutoff and the audit trail's own purge are compliance's
(compliance.retention); this module is registered there from ChatConfig.ready().
"""

from __future__ import annotations

import uuid
from datetime import datetime

from auditlog.context import disable_auditlog
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction

from chat.models import ChatMessage, ChatSession, ProviderAttempt
from compliance import audit
from compliance.retention import PurgeResult


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


def purge_chat_data(*, cutoff: datetime, batch_size: int, dry_run: bool = False
                    ) -> PurgeResult:
    """Delete sessions (with messages and attempts) whose last activity is before `cutoff`.

    Registered with compliance.registry; `compliance.retention.purge_expired_data`
    runs it. Safe to run twice or concurrently. With `dry_run` nothing is deleted
    and nothing is recorded; the counts say what a real run would delete.
    """
    if dry_run:
        return _dry_run(cutoff)
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
