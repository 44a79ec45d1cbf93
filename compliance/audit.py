"""The audit trail: append-only, hash-chained business events, and the model
change log (django-auditlog) with personal data kept out of its diffs.

Every event carries the SHA-256 of its canonical form, which includes the hash
of the event before it, so editing or removing a row breaks the chain at that
row. What is left after deleting the newest rows, or all of them, still links
up: signed anchors kept outside the database (`compliance.anchors`, written by
`audit_chain_anchor`) record how far the chain went, and `verify_chain`
(`manage.py verify_audit_chain`) checks the rows against each other and against
every anchor. Appends are serialised with a PostgreSQL
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
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from clinics.models import Clinic, ClinicMembership
from compliance import anchors
from compliance.models import AuditEvent, ConsentRecord, DataSubjectRequest, TermsVersion
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
    # Officers' back-office actions: no reveal, verification, export or incident
    # change happens without its record.
    Event.PII_REVEALED,
    Event.AUDIT_CHAIN_VERIFIED,
    Event.AUDIT_TRAIL_EXPORTED,
    Event.INCIDENT_RECORDED,
    Event.INCIDENT_UPDATED,
    Event.INCIDENT_NOTIFIED,
    Event.INCIDENT_CLOSED,
    Event.ENCRYPTION_KEYS_ROTATED,
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


def _walk(*, after_id: int, expected_prev: str, chunk_size: int
          ) -> tuple[int, int, ChainBreak | None]:
    """Check every event after `after_id` links to the one before, in id order.

    Streams in keyset-paginated chunks (a few thousand rows in memory at most).
    Returns (events checked, id of the last good event, the first break or None).
    """
    previous_id, checked = after_id, 0
    while True:
        chunk = list(AuditEvent.objects.filter(id__gt=previous_id).order_by("id")[:chunk_size])
        if not chunk:
            return checked, previous_id, None
        for event in chunk:
            broken = None
            if event.id != previous_id + 1:
                broken = f"events {previous_id + 1}..{event.id - 1} are missing"
            elif event.prev_hash != expected_prev:
                broken = "prev_hash does not match the hash of the previous event"
            elif event_hash(event) != event.hash:
                broken = "the event's content does not match its hash"
            if broken:
                return checked, previous_id, ChainBreak(event.id, broken)
            expected_prev, previous_id, checked = event.hash, event.id, checked + 1


def audit_chain_verify(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the whole trail in id order; report the first event that breaks the chain.

    This checks the rows against each other only; `verify_chain` also checks them
    against the signed anchors outside the database.
    """
    first = AuditEvent.objects.order_by("id").first()
    if first is None:
        return ChainReport(checked=0, first_id=None, last_id=None, broken=None)
    expected_prev = _expected_first_prev(first)
    if expected_prev is None:
        return ChainReport(0, first.id, None, ChainBreak(
            first.id, "events before this one are missing and no audit purge recorded it"))
    checked, last_id, broken = _walk(after_id=first.id - 1, expected_prev=expected_prev,
                                     chunk_size=chunk_size)
    return ChainReport(checked, first.id, last_id, broken)


# --- Anchors outside the database -------------------------------------------------------


def _tail() -> tuple[int, str, int, int]:
    """(last id, its hash, event count, first id) in one statement: one snapshot.

    (0, GENESIS_HASH, 0, 0) for an empty trail.
    """
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            "SELECT id, hash, (SELECT count(*) FROM compliance_auditevent),"
            " (SELECT min(id) FROM compliance_auditevent)"
            " FROM compliance_auditevent ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
    return (0, GENESIS_HASH, 0, 0) if row is None else (row[0], row[1], row[2], row[3])


def _purged_anchors() -> dict[int, str]:
    """up_to_id -> hash of the last event removed, for every audit-retention purge batch."""
    return {
        event.metadata["up_to_id"]: event.metadata.get("anchor_hash")
        for event in AuditEvent.objects.filter(
            event_type=Event.RETENTION_PURGE, metadata__scope="audit").only("metadata")
        if isinstance(event.metadata.get("up_to_id"), int)
    }


def _contradiction(anchor: anchors.Anchor) -> str | None:
    """Why the trail as it is now contradicts `anchor`, or None when it extends it."""
    last_id, _, _, first_id = _tail()
    if anchor.last_id == 0:
        return None
    if anchor.last_id > last_id:
        end = f"ends at id {last_id}" if last_id else "is empty"
        return (f"the chain {end} but was anchored up to id {anchor.last_id} at "
                f"{anchor.anchored_at.isoformat()}")
    if anchor.last_id < first_id:  # gone: only the audit-retention purge may do that
        purged = _purged_anchors()
        if anchor.last_id > max(purged, default=0):
            return f"anchored event id={anchor.last_id} is missing"
        if purged.get(anchor.last_id, anchor.last_hash) != anchor.last_hash:
            return f"anchored event id={anchor.last_id} was purged with another hash"
        return None
    stored = AuditEvent.objects.filter(id=anchor.last_id).values_list("hash", flat=True).first()
    if stored != anchor.last_hash:
        return f"event id={anchor.last_id} no longer has the hash anchored at " \
               f"{anchor.anchored_at.isoformat()}"
    _, _, broken = _walk(after_id=anchor.last_id, expected_prev=anchor.last_hash,
                         chunk_size=2000)
    if broken is not None:
        return f"chain broken at event id={broken.event_id}: {broken.reason}"
    return None


def _anchor_failed(code: str, message: str) -> anchors.AnchorError:
    metrics.AUDIT_ANCHOR_FAILURES.inc()
    logger.error("audit chain not anchored", extra={"event": "audit_anchor_failed",
                                                     "metadata": {"reason": code}})
    return anchors.AnchorError(message)


def audit_chain_anchor(*, trigger: str = "manual") -> dict[str, Any]:
    """Sign a checkpoint of the trail's current end and write it outside the database.

    Writes to `AUDIT_ANCHOR_DIR` and to the JSON log (event `audit_anchor`), and
    returns the record. Before signing, the trail must still extend the newest
    anchor (that event present with its hash, links intact since): a trail cut
    short or rewritten is not blessed with a fresh anchor. Refusals and write
    failures raise `anchors.AnchorError` and count in
    `ai_chat_audit_anchor_failures_total`. `trigger` (schedule, purge, manual)
    goes to the log line only.
    """
    try:
        previous = anchors.newest_anchor()
    except anchors.AnchorError as exc:
        raise _anchor_failed("no_key", str(exc)) from exc
    if previous is not None and (problem := _contradiction(previous)) is not None:
        raise _anchor_failed("chain_contradicts_anchor", (
            f"refusing to anchor: the audit chain contradicts the newest anchor "
            f"({previous.source}): {problem}"))
    last_id, last_hash, count, _ = _tail()
    record = anchors.signed_record(last_id=last_id, last_hash=last_hash, event_count=count,
                                   anchored_at=timezone.now())
    try:
        anchors.append_record(record)
    except anchors.AnchorError as exc:
        raise _anchor_failed("write_failed", str(exc)) from exc
    metrics.AUDIT_ANCHOR_LAST_TIMESTAMP.set(
        datetime.fromisoformat(record["anchored_at"]).timestamp())
    # The same signed record for the log pipeline: a copy off this host.
    logger.info("audit chain anchored", extra={"event": "audit_anchor",
                                               "metadata": {**record, "trigger": trigger}})
    return record


@dataclass(frozen=True)
class ChainVerification:
    """The trail checked link by link and against every anchor outside the database.

    `problems` lists what does not hold (at most `MAX_PROBLEMS`, the count of
    all of them in `problems_total`); empty means the trail is intact.
    """

    chain: ChainReport
    anchors_checked: int
    anchors_purged: int
    last_anchor_at: datetime | None
    last_anchored_id: int | None
    problems: tuple[str, ...]
    problems_total: int
    anchors_skipped: str | None = None

    MAX_PROBLEMS = 50

    @property
    def ok(self) -> bool:
        return self.problems_total == 0


@dataclass
class _AnchorCheck:
    """Running state of `verify_chain` over the anchors."""

    tail_id: int
    first_id: int
    purged: dict[int, str]
    problems: list[str]
    checked: int = 0
    purged_count: int = 0
    newest: anchors.Anchor | None = None
    furthest: anchors.Anchor | None = None
    beyond_tail: int = 0

    def add(self, batch: list[anchors.Anchor]) -> None:
        ids = {a.last_id for a in batch if a.last_id > 0}
        stored = dict(AuditEvent.objects.filter(id__in=ids).values_list("id", "hash"))
        for anchor in batch:
            self.checked += 1
            if self.newest is None or anchor.anchored_at > self.newest.anchored_at:
                self.newest = anchor
            if self.furthest is None or anchor.last_id > self.furthest.last_id:
                self.furthest = anchor
            self._check(anchor, stored)

    def _check(self, anchor: anchors.Anchor, stored: dict[int, str]) -> None:
        when = anchor.anchored_at.isoformat()
        if anchor.last_id == 0:
            return
        if anchor.last_id in stored:
            if stored[anchor.last_id] != anchor.last_hash:
                self.problems.append(
                    f"event id={anchor.last_id} no longer has the hash anchored at {when} "
                    f"({anchor.source}): it was rewritten")
        elif anchor.last_id > self.tail_id:
            self.beyond_tail += 1
        elif anchor.last_id < self.first_id and anchor.last_id <= max(self.purged, default=0):
            if self.purged.get(anchor.last_id, anchor.last_hash) != anchor.last_hash:
                self.problems.append(f"event id={anchor.last_id} anchored at {when} "
                                     f"({anchor.source}) was purged with another hash")
            self.purged_count += 1
        else:
            self.problems.append(f"anchored event id={anchor.last_id} (anchored at {when}, "
                                 f"{anchor.source}) is missing")


def verify_chain(*, chunk_size: int = 2000) -> ChainVerification:
    """Check the whole audit trail: every link, and every anchor outside the database.

    A deleted tail or an emptied table shows as a chain shorter than anchored; a
    rewritten event as an anchored hash that no longer matches; a forged anchor
    as a bad signature; a missing AUDIT_ANCHOR_KEY as a problem of its own (except
    with DEBUG on and no anchor at all: then `anchors_skipped` says so). Anchored
    events removed by the audit-retention purge are accepted when a chained
    retention_purge event covers them. Streams both the events and the anchors.
    """
    chain = audit_chain_verify(chunk_size=chunk_size)
    problems: list[str] = []
    if chain.broken is not None:
        problems.append(f"audit chain BROKEN at event id={chain.broken.event_id}: "
                        f"{chain.broken.reason} ({chain.checked} events verified before it)")
    if not settings.AUDIT_ANCHOR_KEYS and settings.DEBUG and not anchors.anchor_files():
        # A development database that never had a key (production refuses to start
        # without one): nothing to check against, and nothing to hide behind.
        return ChainVerification(
            chain=chain, anchors_checked=0, anchors_purged=0, last_anchor_at=None,
            last_anchored_id=None, problems=tuple(problems), problems_total=len(problems),
            anchors_skipped="AUDIT_ANCHOR_KEY is not set (DEBUG) and there are no anchors")
    tail_id, _, _, first_id = _tail()
    state = _AnchorCheck(tail_id=tail_id, first_id=first_id, purged=_purged_anchors(),
                         problems=problems)
    batch: list[anchors.Anchor] = []
    try:
        for item in anchors.read_anchors():
            if isinstance(item, anchors.AnchorReadProblem):
                problems.append(f"anchor {item.source}: {item.reason}")
                continue
            batch.append(item)
            if len(batch) >= chunk_size:
                state.add(batch)
                batch = []
        state.add(batch)
    except anchors.AnchorError as exc:
        problems.append(str(exc))
    if state.beyond_tail:
        end = f"ends at id {tail_id}" if tail_id else "is empty"
        problems.insert(0, (
            f"the audit chain {end} but {state.beyond_tail} anchor(s) recorded events up to "
            f"id {state.furthest.last_id} (anchored at "
            f"{state.furthest.anchored_at.isoformat()}): events were deleted from the end "
            f"of the chain or the table was emptied"))
    return ChainVerification(
        chain=chain, anchors_checked=state.checked, anchors_purged=state.purged_count,
        last_anchor_at=state.newest.anchored_at if state.newest else None,
        last_anchored_id=state.newest.last_id if state.newest else None,
        problems=tuple(problems[:ChainVerification.MAX_PROBLEMS]),
        problems_total=len(problems),
    )


# --- Model change log (django-auditlog) -------------------------------------------------

MASK = "[masked]"


def mask_value(value: str) -> str:
    """auditlog mask callable: records that a field changed, never its value."""
    return MASK


CHANGELOG_SCRUB_SETTING = "neonpro.changelog_scrub"


def _set_transaction_setting(name: str, value: str) -> None:
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


@contextlib.contextmanager
def changelog_scrub_allowed() -> Iterator[None]:
    """Let this block clear identifiers from change-log entries (erasure only).

    The change log is append-only in PostgreSQL (compliance migration 0004); with
    this transaction-local setting its trigger lets an UPDATE rename the object and
    clear the actor's e-mail and address, and nothing else. Must run inside the
    transaction that records the data_erased event.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("changelog_scrub_allowed() needs the erasure's transaction")
    _set_transaction_setting(CHANGELOG_SCRUB_SETTING, "on")
    yield
    # Off at once: the rest of the transaction gets no such licence. (On an error
    # the rollback undoes the setting anyway.)
    _set_transaction_setting(CHANGELOG_SCRUB_SETTING, "off")


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


def auditlog_register(model, **options: Any) -> None:
    """Track `model` in django-auditlog's change log, values masked by `mask_value`.

    Apps above compliance call this from their ready() for their own models
    (the chat: session metadata). Idempotent.
    """
    from auditlog.registry import auditlog

    if not auditlog.contains(model):
        auditlog.register(model, mask_callable="compliance.audit.mask_value", **options)


def register_auditlog() -> None:
    """Register the models that matter with django-auditlog (called at start-up).

    Free text and secrets never reach a diff: session titles and PII mappings
    are outside the tracked fields (the chat registers its sessions itself),
    request details and terms text are excluded, and identifying or secret
    values are masked (the log shows that they changed, not what to).
    ChatMessage is deliberately not registered: message text must never be
    copied into the change log, and message_processed events already record
    each message (counts only).
    """
    registrations = [
        (get_user_model(), {
            "exclude_fields": ["last_login"],
            "mask_fields": ["password", "username", "first_name", "last_name", "email"],
            "m2m_fields": {"groups", "user_permissions"},
        }),
        (Clinic, {}),
        (ClinicMembership, {}),
        (ConsentRecord, {"mask_fields": ["ip_address", "user_agent"]}),
        (DataSubjectRequest, {"exclude_fields": ["details", "resolution_note"]}),
        (TermsVersion, {"exclude_fields": ["text"]}),
    ]
    for model, options in registrations:
        auditlog_register(model, **options)
