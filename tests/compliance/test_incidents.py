"""The security incident register: the ANPD's 3-business-day deadline skips weekends and
Brazil's national holidays, notifications are recorded, everything is audited, a closed
incident is read-only, and a failed chain verification opens a draft."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from compliance import incidents
from compliance.audit import Event
from compliance.models import AuditEvent, IncidentNotification, SecurityIncident

ADMIN = "/admin/compliance/securityincident/"


def _local(*args) -> datetime:
    return timezone.make_aware(datetime(*args), timezone.get_current_timezone())


@pytest.mark.parametrize("known, due", [
    # Wednesday 18/11/2026: Thursday 19, (Friday 20 is Consciência Negra, national since
    # 2024), Monday 23, Tuesday 24.
    ((2026, 11, 18, 10, 0), (2026, 11, 24)),
    # Friday 11/12/2026: Monday 14, Tuesday 15, Wednesday 16 (weekend only).
    ((2026, 12, 11, 16, 0), (2026, 12, 16)),
    # Wednesday 23/12/2026: Thursday 24, (Christmas), Monday 28, Tuesday 29.
    ((2026, 12, 23, 9, 0), (2026, 12, 29)),
])
def test_the_deadline_is_the_end_of_the_third_business_day(settings, known, due):
    deadline = incidents.notification_deadline(became_known_at=_local(*known))
    local = timezone.localtime(deadline)
    assert local.date() == datetime(*due).date()
    assert (local.hour, local.minute) == (23, 59)


def test_national_holidays_come_from_the_library_not_a_list():
    assert not incidents.is_business_day(datetime(2026, 11, 20).date())  # Consciência Negra
    assert not incidents.is_business_day(datetime(2026, 4, 21).date())  # Tiradentes
    assert incidents.is_business_day(datetime(2026, 11, 19).date())


def _form(**values) -> dict:
    known = values.pop("known", timezone.localtime())
    return {
        "title": "Chave de API exposta", "status": "open",
        "became_known_at_0": known.strftime("%d/%m/%Y"),
        "became_known_at_1": known.strftime("%H:%M:%S"),
        "occurred_at_0": "", "occurred_at_1": "", "description": "", "data_categories": "",
        "subjects_affected": "", "risk_relevant": "on", "measures": "",
        "notifications-TOTAL_FORMS": "0", "notifications-INITIAL_FORMS": "0",
        "notifications-MIN_NUM_FORMS": "0", "notifications-MAX_NUM_FORMS": "1000",
        **values,
    }


@pytest.fixture
def pt(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "pt-br"
    return client


@pytest.mark.django_db
def test_officers_record_an_incident_and_see_its_deadline(pt, officer):
    pt.force_login(officer)
    known = _local(2026, 11, 18, 10, 0)
    response = pt.post(ADMIN + "add/", _form(known=known), follow=True)
    incident = SecurityIncident.objects.get()
    assert timezone.localtime(incident.notification_due_at).date().isoformat() == "2026-11-24"
    assert incident.recorded_by == officer
    assert "24/11/2026" in response.content.decode()
    event = AuditEvent.objects.get(event_type=Event.INCIDENT_RECORDED)
    assert event.actor_id == officer.pk and event.metadata["incident_id"] == incident.pk


@pytest.mark.django_db
def test_notifications_are_recorded_and_a_closed_incident_is_read_only(pt, officer):
    pt.force_login(officer)
    pt.post(ADMIN + "add/", _form())
    incident = SecurityIncident.objects.get()
    change = f"{ADMIN}{incident.pk}/change/"
    now = timezone.localtime()
    response = pt.post(change, _form(**{
        "notifications-TOTAL_FORMS": "1", "notifications-0-recipient": "anpd",
        "notifications-0-sent_at_0": now.strftime("%d/%m/%Y"),
        "notifications-0-sent_at_1": now.strftime("%H:%M:%S"),
        "notifications-0-reference": "ANPD-2026-77", "notifications-0-summary": "",
    }))
    assert response.status_code == 302, response.content.decode()[:3000]
    incident.refresh_from_db()
    assert incident.status == "notified"
    assert IncidentNotification.objects.get().reference == "ANPD-2026-77"
    notified = AuditEvent.objects.get(event_type=Event.INCIDENT_NOTIFIED)
    assert notified.metadata["recipient"] == "anpd" and notified.metadata["late"] is False

    assert pt.post(change, _form(status="closed")).status_code == 302
    incident.refresh_from_db()
    assert incident.is_closed and incident.closed_at is not None
    assert AuditEvent.objects.filter(event_type=Event.INCIDENT_CLOSED).count() == 1
    assert pt.post(change, _form(title="Outro")).status_code == 403
    incident.refresh_from_db()
    assert incident.title == "Chave de API exposta"
    page = pt.get(change).content.decode()
    assert 'name="title"' not in page  # shown, not editable
    assert pt.post(f"{ADMIN}{incident.pk}/delete/", {"post": "yes"}).status_code == 403
    with pytest.raises(incidents.IncidentError):
        incidents.incident_update(incident=incident, actor=officer, changed=["title"])


@pytest.mark.django_db
def test_the_list_warns_of_a_deadline_that_is_near_or_past(pt, officer):
    near = incidents.incident_record(incident=SecurityIncident(
        title="Perto", became_known_at=timezone.now()), actor=officer)
    near.notification_due_at = timezone.now() + timedelta(hours=5)
    near.save()
    incidents.incident_record(incident=SecurityIncident(
        title="Atrasado", became_known_at=timezone.now() - timedelta(days=10)), actor=officer)
    pt.force_login(officer)
    page = pt.get(ADMIN).content.decode()
    assert '<strong class="np-due-soon">' in page
    assert '<strong class="np-overdue">ATRASADO: comunique a ANPD agora</strong>' in page


@pytest.mark.django_db
def test_a_failed_chain_verification_opens_one_draft_incident(client, officer,
                                                              make_user):
    make_user()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent DISABLE TRIGGER USER")
        cursor.execute("UPDATE compliance_auditevent SET metadata = '{\"x\": 1}' "
                       "WHERE id = (SELECT min(id) FROM compliance_auditevent)")
        cursor.execute("ALTER TABLE compliance_auditevent ENABLE TRIGGER USER")
    client.force_login(officer)
    client.post("/admin/compliance/auditevent/verify/")
    client.post("/admin/compliance/auditevent/verify/")
    draft = SecurityIncident.objects.get()
    assert draft.status == "draft" and draft.source == "chain_verification"
    assert AuditEvent.objects.filter(event_type=Event.INCIDENT_RECORDED).count() == 1


@pytest.mark.django_db
def test_operations_staff_do_not_see_the_register(client, ops):
    client.force_login(ops)
    assert client.get(ADMIN).status_code == 403


@pytest.mark.django_db
def test_the_scrape_reports_the_nearest_pending_deadline(officer):
    from monitoring.collectors import AIChatCollector, _incident_figures

    names = {family.name for family in AIChatCollector().describe()}
    assert "ai_chat_security_incident_notification_seconds_left" in names
    assert _incident_figures() is None
    incident = incidents.incident_record(incident=SecurityIncident(
        title="Vazamento", became_known_at=timezone.now() - timedelta(days=10)), actor=officer)
    assert _incident_figures() < 0  # overdue
    incident.risk_relevant = False
    incident.save()
    assert _incident_figures() is None  # assessed as without relevant risk
