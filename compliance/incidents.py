"""The security incident register (LGPD Art. 48; Resolução CD/ANPD nº 15/2024).

An incident that may cause relevant risk or damage is communicated to the ANPD
and to the people affected within 3 business days of the controller learning
of it. Business days skip weekends and Brazil's national holidays, taken from
the `holidays` library (kept up to date by its maintainers: the list changes,
as when 20 November became national in 2024), never from a hand-written list.

Every change is a required audit event in the same transaction; a closed
incident is evidence and never changes again.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from compliance import audit
from compliance.models import IncidentNotification, SecurityIncident

NOTIFICATION_BUSINESS_DAYS = 3


class IncidentError(Exception):
    """A change the register refuses (a closed incident, an unknown status)."""


@lru_cache(maxsize=64)
def _national_holidays(year: int) -> holidays.HolidayBase:
    # National holidays only: state and municipal ones differ per clinic.
    return holidays.country_holidays("BR", years=year)


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _national_holidays(day.year)


def notification_deadline(*, became_known_at: datetime) -> datetime:
    """The end (23:59:59.999999, local time) of the third business day after the day the
    incident became known."""
    day = timezone.localtime(became_known_at).date()
    remaining = NOTIFICATION_BUSINESS_DAYS
    while remaining:
        day += timedelta(days=1)
        if is_business_day(day):
            remaining -= 1
    return datetime.combine(day, time.max, tzinfo=timezone.get_current_timezone())


def _record(event_type: str, incident: SecurityIncident, actor, **metadata) -> None:
    audit.record_event(event_type=event_type, actor_id=getattr(actor, "pk", None),
                       metadata={"incident_id": incident.pk, **metadata})


def incident_record(*, incident: SecurityIncident, actor) -> SecurityIncident:
    """Save a new incident (from the admin form), its deadline computed, and audit it."""
    with transaction.atomic():
        incident.notification_due_at = notification_deadline(
            became_known_at=incident.became_known_at)
        incident.recorded_by = actor
        incident.save()
        _record(audit.Event.INCIDENT_RECORDED, incident, actor, status=incident.status,
                source=incident.source)
    return incident


def incident_update(*, incident: SecurityIncident, actor, changed: list[str]) -> SecurityIncident:
    """Save an officer's edit of an incident that is not closed; closing stamps the time."""
    previous = SecurityIncident.objects.filter(pk=incident.pk).values_list(
        "status", flat=True).first()
    if previous == SecurityIncident.Status.CLOSED:
        raise IncidentError("a closed incident is read-only")
    with transaction.atomic():
        incident.notification_due_at = notification_deadline(
            became_known_at=incident.became_known_at)
        if incident.is_closed:
            incident.closed_at = timezone.now()
        incident.save()
        event = audit.Event.INCIDENT_CLOSED if incident.is_closed else audit.Event.INCIDENT_UPDATED
        _record(event, incident, actor, status=incident.status, fields=sorted(changed)[:20])
    return incident


def incident_notification_record(*, notification: IncidentNotification,
                                 actor) -> IncidentNotification:
    """Record a communication sent about an incident; the first one marks it notified."""
    incident = notification.incident
    if incident.is_closed:
        raise IncidentError("a closed incident is read-only")
    with transaction.atomic():
        notification.recorded_by = actor
        notification.save()
        if incident.status in (SecurityIncident.Status.DRAFT, SecurityIncident.Status.OPEN) \
                and notification.recipient != IncidentNotification.Recipient.CONTROLLER:
            incident.status = SecurityIncident.Status.NOTIFIED
            incident.save(update_fields=["status"])
        _record(audit.Event.INCIDENT_NOTIFIED, incident, actor,
                recipient=notification.recipient, notification_id=notification.pk,
                late=notification.sent_at > incident.notification_due_at)
    return notification


def incident_open_for_chain_failure(*, verification: audit.ChainVerification,
                                    actor=None) -> SecurityIncident:
    """A failed verification (a broken link or an anchor that no longer holds) opens a
    draft incident (once while one is still open)."""
    existing = SecurityIncident.objects.filter(
        source=SecurityIncident.Source.CHAIN_VERIFICATION,
        status__in=SecurityIncident.OPEN_STATUSES).first()
    if existing is not None:
        return existing
    broken = verification.chain.broken
    if broken is not None:
        title = gettext("Audit chain verification failed at event no. %(id)s") % {
            "id": broken.event_id}
    else:
        title = gettext("Audit chain verification failed: the trail no longer matches "
                        "its anchors")
    incident = SecurityIncident(
        title=title,
        description="\n".join(verification.problems),
        became_known_at=timezone.now(), status=SecurityIncident.Status.DRAFT,
        source=SecurityIncident.Source.CHAIN_VERIFICATION,
        data_categories=gettext("audit trail (integrity)"),
    )
    return incident_record(incident=incident, actor=actor)


def incidents_next_deadline() -> datetime | None:
    """The nearest notification deadline of an open incident not yet notified that may
    cause relevant risk (what the alert watches)."""
    return (SecurityIncident.objects
            .filter(status__in=(SecurityIncident.Status.DRAFT, SecurityIncident.Status.OPEN),
                    risk_relevant=True)
            .order_by("notification_due_at")
            .values_list("notification_due_at", flat=True).first())
