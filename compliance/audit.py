"""The audit trail: append-only, hash-chained business events, and the model
change log (django-auditlog) with personal data kept out of its diffs.

Every event carries the SHA-256 of its canonical form, which includes the hash
of the event before it, so editing or removing a row breaks the chain at that
row (`manage.py verify_audit_chain`). Appends are serialised with a PostgreSQL
transaction-scoped advisory lock, which works through PgBouncer's transaction
pooling; on SQLite the write transaction itself serialises them.

Events the law requires (consent changes, export, erasure, the retention purge
and an officer reading a session) are written inside the caller's transaction
and a failure raises `AuditWriteError`, so the action itself fails. Other events
are written after the caller's transaction commits (they never hold the append
lock for someone else's transaction, and work that rolled back is not
recorded); a failure is counted and logged but does not fail the action.
`AUDIT_LOGGING_ENABLED=false` turns off only those other events.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compliance.models import AuditEvent
from monitoring import metrics
from neonpro.db import insert_rows, pipelined_atomic

logger = logging.getLogger(__name__)

Event = AuditEvent.EventType

GENESIS_HASH = "0" * 64
# Key of the advisory lock that serialises appends (any constant bigint, unique to this use).
APPEND_LOCK_KEY = 0x4E50_4155_4449_54  # "NPAUDIT"

REQUIRED_EVENTS = frozenset({
    Event.CONSENT_GRANTED,
    Event.CONSENT_REVOKED,
    Event.DATA_EXPORTED,
    Event.DATA_ERASED,
    Event.RETENTION_PURGE,
    Event.ADMIN_VIEWED_SESSION,
})

# Metadata is for counts, codes and ids. Long strings are refused so that free
# text (a message, a name typed in a title) cannot slip into the trail by mistake.
_MAX_METADATA_STRING = 128


class AuditWriteError(Exception):
    """A required audit event could not be written; the action must not happen."""


# --- Canonical form and hash ---------------------------------------------------------


def canonical_bytes(
    *, id: int, created_at, event_type: str, actor_id: int | None,
    subject_user_id: int | None, clinic_id: int | None, session_id,
    metadata: dict[str, Any], prev_hash: str,
) -> bytes:
    """The bytes an event's hash covers: sorted-keys compact JSON of every field."""
    document = {
        "id": id,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "event_type": str(event_type),
        "actor_id": actor_id,
        "subject_user_id": subject_user_id,
        "clinic_id": clinic_id,
        "session_id": str(session_id) if session_id is not None else None,
        "metadata": metadata,
        "prev_hash": prev_hash,
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def event_hash(event: AuditEvent) -> str:
    """SHA-256 (hex) of the event's canonical form."""
    return hashlib.sha256(canonical_bytes(
        id=event.id, created_at=event.created_at, event_type=event.event_type,
        actor_id=event.actor_id, subject_user_id=event.subject_user_id,
        clinic_id=event.clinic_id, session_id=event.session_id,
        metadata=event.metadata, prev_hash=event.prev_hash,
    )).hexdigest()


def _checked_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """A JSON round-trip of `metadata` (what the database will give back), validated."""

    def check(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                check(key)
                check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)
        elif isinstance(value, str) and len(value) > _MAX_METADATA_STRING:
            raise ValueError("audit metadata strings are limited to codes and ids")

    normalised = json.loads(json.dumps(metadata or {}, sort_keys=True))
    check(normalised)
    return normalised


# --- Appending ------------------------------------------------------------------------


def lock_chain() -> None:
    """Take the append lock until the current transaction ends (PostgreSQL only)."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])


def _append(entries: list[dict[str, Any]]) -> list[AuditEvent]:
    """Chain `entries` (AuditEvent field values) onto the trail: one lock, one insert.

    Every append of every process waits for this lock, so it is held for as few
    round trips as possible: BEGIN, the lock and the read of the last event go out
    together, and the insert goes out with the COMMIT.
    """
    with pipelined_atomic():
        lock_chain()
        last = _last_link()
        prev_id, prev_hash = last if last is not None else (0, GENESIS_HASH)
        now = timezone.now()
        events = []
        for entry in entries:
            event = AuditEvent(id=prev_id + 1, created_at=now, prev_hash=prev_hash, **entry)
            event.hash = event_hash(event)
            events.append(event)
            prev_id, prev_hash = event.id, event.hash
        insert_rows(events)
        return events


def _last_link() -> tuple[int, str] | None:
    """(id, hash) of the newest event. SQL: it runs under the append lock (neonpro.db)."""
    with transaction.get_connection().cursor() as cursor:
        cursor.execute("SELECT id, hash FROM compliance_auditevent ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def _count_failure(event_type: str, required: bool, exc: BaseException) -> None:
    metrics.AUDIT_FAILURES.inc()
    logger.error(
        "audit event could not be written",
        extra={"event": "audit_write_failed", "metadata": {
            "event_type": str(event_type), "required": required, "error": type(exc).__name__,
        }},
    )


def _clinic_of(user_id: int | None) -> int | None:
    from chat.models import ClinicMembership

    if user_id is None:
        return None
    return (ClinicMembership.objects.filter(user_id=user_id)
            .values_list("clinic_id", flat=True).first())


def _entry(event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    clinic_id = fields["clinic_id"]
    if clinic_id is None:  # the subject's clinic at the time, for officers' filters
        clinic_id = _clinic_of(fields["subject_user_id"])
    return {
        "event_type": event_type, "actor_id": fields["actor_id"],
        "subject_user_id": fields["subject_user_id"], "clinic_id": clinic_id,
        "session_id": _as_uuid(fields["session_id"]),
        "metadata": _checked_metadata(fields["metadata"]),
    }


def _write(event_type: str, required: bool, fields: dict[str, Any]) -> AuditEvent | None:
    try:
        return _append([_entry(event_type, fields)])[0]
    except Exception as exc:  # every failure is counted; required ones stop the action
        _count_failure(event_type, required, exc)
        if required:
            raise AuditWriteError(f"required audit event {event_type} was not written") from exc
        return None


def _write_optional(events: list[tuple[str, dict[str, Any]]]) -> None:
    try:
        _append([_entry(event_type, fields) for event_type, fields in events])
    except Exception as exc:
        for event_type, _ in events:
            _count_failure(event_type, False, exc)


def _as_uuid(value) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def record_event(
    *, event_type: str, actor_id: int | None = None, subject_user_id: int | None = None,
    clinic_id: int | None = None, session_id=None, metadata: dict[str, Any] | None = None,
) -> AuditEvent | None:
    """Append one event to the audit trail.

    Required events (`REQUIRED_EVENTS`) are written now, in the caller's
    transaction, and raise `AuditWriteError` when they cannot be written. Other
    events are written once the caller's transaction commits (at once outside a
    transaction), return None, and never raise: failures are counted in
    `ai_chat_audit_failures` and logged. `metadata` holds counts, codes and ids only.
    Without `clinic_id`, the subject's clinic (if any) is recorded.
    """
    required = event_type in REQUIRED_EVENTS
    fields = {
        "actor_id": actor_id, "subject_user_id": subject_user_id, "clinic_id": clinic_id,
        "session_id": session_id, "metadata": metadata,
    }
    if required:
        return _write(event_type, True, fields)
    if not settings.AUDIT_LOGGING_ENABLED:
        return None
    transaction.on_commit(functools.partial(_write, event_type, False, fields))
    return None


# --- Events of the chat pipeline --------------------------------------------------------


def _failover_metadata(attempts: list) -> dict[str, Any] | None:
    """From the provider attempts of one answer: did it move to another provider?"""
    if len(attempts) < 2:
        return None
    return {
        "from_provider": attempts[0].provider,
        "to_provider": attempts[-1].provider,
        "attempts": len(attempts),
        "error_codes": [a.error_code or a.outcome for a in attempts[:-1]],
        "outcome": attempts[-1].outcome,
    }


def record_message_processed(*, message, session_id, subject_user_id: int, clinic_id: int,
                             pii_counts: dict[str, int], attempts: list,
                             pii_detected_in: str | None = None,
                             pii_policy: dict[str, str] | None = None) -> None:
    """message_processed (counts only) for a stored answer, provider_failover if any, and
    pii_detected for the question (`pii_detected_in`: its id) when it was just accepted,
    with the policy each type was handled under (`pii_policy`).

    Written together, after the answer: one append to the chain per answer, and none
    on the path to the first token.
    """
    if not settings.AUDIT_LOGGING_ENABLED:
        return
    ids = {"actor_id": None, "subject_user_id": subject_user_id, "clinic_id": clinic_id,
           "session_id": session_id}
    events: list[tuple[str, dict[str, Any]]] = []
    if pii_detected_in is not None and pii_counts:
        detected: dict[str, Any] = {"message_id": pii_detected_in, "types": dict(pii_counts)}
        if pii_policy:  # how each type was replaced: tag or surrogate (PII_POLICY)
            detected["policy"] = dict(pii_policy)
        events.append((Event.PII_DETECTED, {**ids, "metadata": detected}))
    events.append((Event.MESSAGE_PROCESSED, {**ids, "metadata": {
        "message_id": str(message.id),
        "status": message.status,
        "provider": message.provider,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "pii": dict(pii_counts or {}),
        "attempts": len(attempts),
    }}))
    failover = _failover_metadata(attempts)
    if failover is not None:
        events.append((Event.PROVIDER_FAILOVER, {**ids, "metadata": {
            "message_id": str(message.id), **failover}}))
    transaction.on_commit(functools.partial(_write_optional, events))


# --- Verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    """The first event where the chain does not hold, and why."""

    event_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_id: int | None
    last_id: int | None
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _expected_first_prev(first: AuditEvent) -> str | None:
    """The prev_hash the oldest remaining event must carry.

    Event 1 starts from the genesis hash. When older events were removed by the
    audit-retention purge, the purge recorded the hash of the last removed event
    (its anchor) in a later, itself chained, retention_purge event.
    """
    if first.id == 1:
        return GENESIS_HASH
    anchor = (
        AuditEvent.objects.filter(
            event_type=Event.RETENTION_PURGE, metadata__scope="audit",
            metadata__up_to_id=first.id - 1,
        ).order_by("-id").first()
    )
    return anchor.metadata.get("anchor_hash") if anchor is not None else None


def audit_chain_verify(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the whole trail in id order; report the first event that breaks the chain."""
    first = AuditEvent.objects.order_by("id").first()
    if first is None:
        return ChainReport(checked=0, first_id=None, last_id=None, broken=None)
    expected_prev = _expected_first_prev(first)
    if expected_prev is None:
        return ChainReport(0, first.id, None, ChainBreak(
            first.id, "events before this one are missing and no audit purge recorded it"))
    previous_id, checked = first.id - 1, 0
    while True:
        chunk = list(AuditEvent.objects.filter(id__gt=previous_id).order_by("id")[:chunk_size])
        if not chunk:
            return ChainReport(checked, first.id, previous_id, None)
        for event in chunk:
            broken = None
            if event.id != previous_id + 1:
                broken = f"events {previous_id + 1}..{event.id - 1} are missing"
            elif event.prev_hash != expected_prev:
                broken = "prev_hash does not match the hash of the previous event"
            elif event_hash(event) != event.hash:
                broken = "the event's content does not match its hash"
            if broken:
                return ChainReport(checked, first.id, previous_id, ChainBreak(event.id, broken))
            expected_prev, previous_id, checked = event.hash, event.id, checked + 1


# --- Model change log (django-auditlog) -------------------------------------------------

MASK = "[masked]"


def mask_value(value: str) -> str:
    """auditlog mask callable: records that a field changed, never its value."""
    return MASK


@contextlib.contextmanager
def acting_as(actor) -> Iterator[None]:
    """Attribute model changes made inside (tasks, commands) to `actor` in the change log.

    Web and API requests get this from AuditlogMiddleware; Celery tasks and
    management commands acting for someone wrap their work in it. `None`
    records the system as the actor.
    """
    from auditlog.context import set_actor

    with set_actor(actor):
        yield


def register_auditlog() -> None:
    """Register the models that matter with django-auditlog (called at start-up).

    Free text and secrets never reach a diff: session titles and PII mappings
    are outside the tracked fields, request details and terms text are
    excluded, and identifying or secret values are masked (the log shows that
    they changed, not what to). ChatMessage is deliberately not registered:
    message text must never be copied into the change log, and message_processed
    events already record each message (counts only).
    """
    from auditlog.registry import auditlog
    from django.contrib.auth import get_user_model

    from chat.models import ChatSession, Clinic, ClinicMembership
    from compliance.models import ConsentRecord, DataSubjectRequest, TermsVersion

    registrations = [
        (get_user_model(), {
            "exclude_fields": ["last_login"],
            "mask_fields": ["password", "username", "first_name", "last_name", "email"],
            "m2m_fields": {"groups", "user_permissions"},
        }),
        (Clinic, {}),
        (ClinicMembership, {}),
        (ChatSession, {"include_fields": [
            "user", "clinic", "status", "closed_at", "close_reason", "legal_hold"]}),
        (ConsentRecord, {"mask_fields": ["ip_address", "user_agent"]}),
        (DataSubjectRequest, {"exclude_fields": ["details", "resolution_note"]}),
        (TermsVersion, {"exclude_fields": ["text"]}),
    ]
    for model, options in registrations:
        if not auditlog.contains(model):
            auditlog.register(model, mask_callable="compliance.audit.mask_value", **options)
