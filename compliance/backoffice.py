"""The compliance officer's back-office actions that are not a model's own:
revealing personal data on a session's page, verifying the audit chain and
exporting the trail for an auditor.

Each action is itself a required audit event written in the same transaction
as the action: when the event cannot be written the action does not happen
(`audit.AuditWriteError` reaches the caller, who shows the officer why).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compliance import audit, export_check
from compliance.incidents import incident_open_for_chain_failure
from compliance.models import AuditEvent

# Why an officer may read a session's personal data in clear (LGPD Art. 6 III, necessity).
REVEAL_REASONS = {
    "dsr": _("answering a data-subject request"),
    "incident": _("investigating a security incident"),
    "authority": _("request from a court or the ANPD"),
    "audit": _("internal compliance audit"),
}
# A protocol or request number: letters, digits and . / # -, with at least one digit and
# no spaces, so that it cannot carry a name into the audit trail.
_REFERENCE = re.compile(r"^(?=.*\d)[A-Za-z0-9./#-]{1,40}$")


class BackofficeError(Exception):
    """An officer's input the action refuses; `field` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def pii_reveal_record(*, actor, session, reason: str, reference: str) -> AuditEvent:
    """Record that `actor` reveals the personal data of `session`, and why.

    The event names who (actor), when (its time), which session and subject, and
    why (a reason code and the number of the request, incident or protocol).
    Raises `BackofficeError` for a reason or reference the form should not have
    let through and `audit.AuditWriteError` when the event cannot be written:
    in both cases nothing may be shown.
    """
    if reason not in REVEAL_REASONS:
        raise BackofficeError("reason", str(_("Choose one of the listed reasons.")))
    reference = reference.strip()
    if not _REFERENCE.match(reference):
        raise BackofficeError("reference", str(_(
            "Give the number of the request, incident or protocol (letters, digits and "
            ". / # -, no spaces, at least one digit).")))
    return audit.record_event(
        event_type=audit.Event.PII_REVEALED, actor_id=actor.pk,
        subject_user_id=session.user_id, clinic_id=session.clinic_id, session_id=session.id,
        metadata={"reason": reason, "reference": reference},
    )


# --- Chain verification -----------------------------------------------------------------


@dataclass(frozen=True)
class AnchorReport:
    """What the anchor check found: does the trail match its signed anchors, and when was
    the newest one written."""

    ok: bool
    anchors: int
    last_anchor_at: datetime | None
    detail: str = ""


@dataclass(frozen=True)
class ChainStatus:
    report: audit.ChainReport
    events: int
    anchors: list[AnchorReport]
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return self.report.ok and all(anchor.ok for anchor in self.anchors)

    @property
    def last_anchor_at(self) -> datetime | None:
        times = [a.last_anchor_at for a in self.anchors if a.last_anchor_at is not None]
        return max(times) if times else None


def _anchor_report(verification: audit.ChainVerification) -> list[AnchorReport]:
    """The anchors' part of a verification: its problems other than the broken link."""
    if verification.anchors_skipped:
        return []
    problems = [p for p in verification.problems
                if verification.chain.broken is None or not p.startswith("audit chain BROKEN")]
    if not problems and verification.anchors_checked == 0:
        return []
    return [AnchorReport(ok=not problems, anchors=verification.anchors_checked,
                         last_anchor_at=verification.last_anchor_at,
                         detail="; ".join(problems))]


def audit_chain_check(*, actor) -> ChainStatus:
    """Verify the chain and its anchors (`audit.verify_chain`), recording who did.

    The audit_chain_verified event is written even when the chain is broken (it
    is chained after the break, which verification reports by event id). A
    failed verification opens a draft security incident for the officer to complete.
    """
    verification = audit.verify_chain()
    report = verification.chain
    anchors = _anchor_report(verification)
    status = ChainStatus(report=report, events=AuditEvent.objects.count(), anchors=anchors,
                         checked_at=timezone.now())
    with transaction.atomic():
        audit.record_event(
            event_type=audit.Event.AUDIT_CHAIN_VERIFIED, actor_id=actor.pk,
            metadata={"ok": status.ok, "checked": report.checked,
                      "broken_at": report.broken.event_id if report.broken else None,
                      "anchors": verification.anchors_checked},
        )
        if not status.ok:
            incident_open_for_chain_failure(verification=verification, actor=actor)
    return status


# --- Export for an auditor ----------------------------------------------------------------

EXPORT_FORMATS = ("csv", "json")


@dataclass(frozen=True)
class TrailExport:
    filename: str
    content: bytes
    manifest: dict[str, Any]

    def as_zip(self) -> bytes:
        """The file and its manifest, as one download."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(self.filename, self.content)
            archive.writestr("manifest.json", json.dumps(self.manifest, indent=2,
                                                         ensure_ascii=False))
        return buffer.getvalue()


def _event_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "created_at": event.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "event_type": str(event.event_type), "actor_id": event.actor_id,
        "subject_user_id": event.subject_user_id, "clinic_id": event.clinic_id,
        "session_id": str(event.session_id) if event.session_id else None,
        "metadata": event.metadata, "prev_hash": event.prev_hash, "hash": event.hash,
    }


def _render(rows: list[dict[str, Any]], file_format: str) -> bytes:
    if file_format == "json":
        return json.dumps({"format": export_check.MANIFEST_FORMAT, "events": rows},
                          ensure_ascii=False, indent=1).encode()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=export_check.CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "metadata": json.dumps(row["metadata"], sort_keys=True,
                                                       separators=(",", ":"),
                                                       ensure_ascii=False)})
    return buffer.getvalue().encode()


def audit_trail_export(*, actor, start: date, end: date, clinic_id: int | None,
                       file_format: str) -> TrailExport:
    """The trail's events from `start` to `end` (local dates, inclusive), of one clinic
    or all, as CSV or JSON with each event's hashes, and a signed manifest.

    The manifest holds the count, first and last hash, the file's SHA-256 and an
    HMAC-SHA256 signature with AUDIT_EXPORT_KEY; `manage.py verify_audit_export`
    (or `python -m compliance.export_check`) checks both offline. The export is
    recorded (audit_trail_exported); nothing is delivered if that fails.
    """
    if file_format not in EXPORT_FORMATS:
        raise BackofficeError("file_format", str(_("Choose CSV or JSON.")))
    if end < start:
        raise BackofficeError("end", str(_("The end of the period is before its start.")))
    zone = timezone.get_current_timezone()
    since = datetime.combine(start, time.min, tzinfo=zone)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
    events = AuditEvent.objects.filter(created_at__gte=since, created_at__lt=until)
    if clinic_id is not None:
        events = events.filter(clinic_id=clinic_id)
    rows = [_event_row(event) for event in events.order_by("id").iterator(chunk_size=2000)]
    content = _render(rows, file_format)
    scope = f"clinic-{clinic_id}" if clinic_id is not None else "all-clinics"
    filename = f"audit-trail-{scope}-{start.isoformat()}-{end.isoformat()}.{file_format}"
    manifest: dict[str, Any] = {
        "format": export_check.MANIFEST_FORMAT, "file": filename, "file_format": file_format,
        "generated_at": timezone.now().astimezone(UTC).isoformat(timespec="seconds"),
        "generated_by": actor.pk, "period": {"from": start.isoformat(), "to": end.isoformat()},
        "clinic_id": clinic_id, "count": len(rows),
        "first_id": rows[0]["id"] if rows else None, "last_id": rows[-1]["id"] if rows else None,
        "first_hash": rows[0]["hash"] if rows else None,
        "last_hash": rows[-1]["hash"] if rows else None,
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    key = settings.AUDIT_EXPORT_KEY
    manifest["signature"] = {
        "algorithm": "HMAC-SHA256",
        "key_id": hashlib.sha256(key.encode()).hexdigest()[:12],
        "value": export_check.manifest_signature(manifest, key),
    }
    audit.record_event(
        event_type=audit.Event.AUDIT_TRAIL_EXPORTED, actor_id=actor.pk, clinic_id=clinic_id,
        metadata={"from": start.isoformat(), "to": end.isoformat(), "format": file_format,
                  "count": len(rows), "sha256": manifest["sha256"]},
    )
    return TrailExport(filename=filename, content=content, manifest=manifest)
