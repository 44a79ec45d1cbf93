"""Reads for the compliance officer's overview: the figures a DPO reports each month."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from compliance.models import AuditEvent, ConsentRecord, DataSubjectRequest

Event = AuditEvent.EventType


@dataclass(frozen=True)
class PurgeRun:
    at: datetime
    sessions: int
    messages: int


@dataclass(frozen=True)
class ChainCheck:
    at: datetime
    ok: bool
    checked: int


@dataclass(frozen=True)
class Overview:
    month_start: datetime
    week_start: datetime
    consents_granted: int
    consents_revoked: int
    requests_open: int
    requests_overdue: int
    last_purge: PurgeRun | None
    pii_by_type: dict[str, int] = field(default_factory=dict)
    last_chain_check: ChainCheck | None = None


def _last_purge() -> PurgeRun | None:
    """The latest run of the chat retention purge: its batches share a run id."""
    last = (AuditEvent.objects.filter(event_type=Event.RETENTION_PURGE, metadata__scope="chat")
            .order_by("-id").first())
    if last is None:
        return None
    batches = AuditEvent.objects.filter(event_type=Event.RETENTION_PURGE, metadata__scope="chat",
                                        metadata__run_id=last.metadata.get("run_id"))
    totals = Counter()
    for metadata in batches.values_list("metadata", flat=True):
        totals["sessions"] += int(metadata.get("sessions", 0))
        totals["messages"] += int(metadata.get("messages", 0))
    return PurgeRun(at=last.created_at, sessions=totals["sessions"],
                    messages=totals["messages"])


def _pii_by_type(since: datetime) -> dict[str, int]:
    totals: Counter[str] = Counter()
    events = AuditEvent.objects.filter(event_type=Event.PII_DETECTED, created_at__gte=since)
    for metadata in events.values_list("metadata", flat=True).iterator(chunk_size=5000):
        for kind, count in (metadata.get("types") or {}).items():
            totals[kind] += int(count)
    return dict(totals.most_common())


def _last_chain_check() -> ChainCheck | None:
    last = (AuditEvent.objects.filter(event_type=Event.AUDIT_CHAIN_VERIFIED)
            .order_by("-id").first())
    if last is None:
        return None
    return ChainCheck(at=last.created_at, ok=bool(last.metadata.get("ok")),
                      checked=int(last.metadata.get("checked", 0)))


def compliance_overview(*, now: datetime | None = None) -> Overview:
    """This month's consents, the requests open and overdue, the last retention purge,
    this week's PII detections by type (from Monday, local time) and the last chain check."""
    now = timezone.localtime(now or timezone.now())
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    week_start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0,
                                                               microsecond=0)
    open_requests = DataSubjectRequest.objects.filter(
        status__in=DataSubjectRequest.OPEN_STATUSES)
    return Overview(
        month_start=month_start, week_start=week_start,
        consents_granted=ConsentRecord.objects.filter(granted_at__gte=month_start).count(),
        consents_revoked=ConsentRecord.objects.filter(revoked_at__gte=month_start).count(),
        requests_open=open_requests.count(),
        requests_overdue=open_requests.filter(due_at__lt=now).count(),
        last_purge=_last_purge(),
        pii_by_type=_pii_by_type(week_start),
        last_chain_check=_last_chain_check(),
    )
