"""Retention (LGPD Art. 15/16): chat data past DATA_RETENTION_DAYS and audit
events past AUDIT_RETENTION_DAYS are deleted in bounded batches.

Chat data is deleted by the chat's own purge (chat.retention), registered with
compliance.registry: session by session, by last activity, skipping sessions
under legal hold, in short batches that lock their sessions with `SELECT ...
FOR UPDATE SKIP LOCKED` and record a retention_purge event each.

Audit events are append-only in the database: a trigger refuses UPDATE and
DELETE on the table. The only way past it is the transaction-local setting
`neonpro.audit_purge = on`, which `audit_purge_expired` sets for its own
batches. It only deletes the oldest events (a prefix of the chain), and it
records the hash of the last one removed in a new retention_purge event, which
`verify_audit_chain` uses as the anchor for the oldest event that remains.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import Max
from django.utils import timezone

from compliance import audit, registry
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

    def plus(self, other: PurgeResult) -> PurgeResult:
        """Both results' counts added up (one per app that purges)."""
        return PurgeResult(
            sessions=self.sessions + other.sessions, messages=self.messages + other.messages,
            provider_attempts=self.provider_attempts + other.provider_attempts,
            batches=self.batches + other.batches,
            legal_hold_skipped=self.legal_hold_skipped + other.legal_hold_skipped,
            dry_run=self.dry_run,
        )


def retention_cutoff(*, now: datetime | None = None) -> datetime:
    """Sessions whose last activity is older than this are past retention."""
    return (now or timezone.now()) - timedelta(days=settings.DATA_RETENTION_DAYS)


def purge_expired_data(*, dry_run: bool = False, batch_size: int | None = None,
                       now: datetime | None = None) -> PurgeResult:
    """Delete chat sessions (with messages and attempts) past DATA_RETENTION_DAYS.

    The apps that hold the data do the deleting (compliance.registry: the chat
    registers its purge). Safe to run twice or concurrently. With `dry_run`
    nothing is deleted and nothing is recorded; the counts say what a real run
    would delete.
    """
    cutoff = retention_cutoff(now=now)
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH_SIZE
    result = PurgeResult(dry_run=dry_run)
    for purge in registry.retention_purgers():
        result = result.plus(purge(cutoff=cutoff, batch_size=batch_size, dry_run=dry_run))
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
