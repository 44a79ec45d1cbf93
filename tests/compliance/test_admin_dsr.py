"""Data-subject requests an officer can run: the person picked by name or e-mail, the
15-day due date shown, open requests first by due date, confirmations in pt-BR."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance import dsr
from compliance.models import ConsentRecord, DataSubjectRequest

ADMIN_DSR = "/admin/compliance/datasubjectrequest/"


@pytest.fixture
def pt_client():
    return Client(headers={"accept-language": "pt-br"})


@pytest.fixture
def maria(make_user):
    user = make_user(username="msouza")
    user.first_name, user.last_name, user.email = "Maria", "Souza", "maria@example.com"
    user.save()
    return user


def _autocomplete(client, term: str) -> list[str]:
    response = client.get(reverse("admin:autocomplete"), {
        "term": term, "app_label": "compliance", "model_name": "datasubjectrequest",
        "field_name": "user"})
    assert response.status_code == 200
    return [result["id"] for result in response.json()["results"]]


@pytest.mark.django_db
def test_officers_find_the_person_by_name_or_e_mail(pt_client, officer, maria, make_user):
    make_user(username="someone-else")
    pt_client.force_login(officer)
    assert _autocomplete(pt_client, "Souza") == [str(maria.pk)]
    assert _autocomplete(pt_client, "maria@example.com") == [str(maria.pk)]
    assert _autocomplete(pt_client, "Nobody") == []
    form = pt_client.get(ADMIN_DSR + "add/").content.decode()
    assert "admin-autocomplete" in form and "15 dias" in form


@pytest.mark.django_db
def test_a_request_filed_by_picking_a_person_shows_its_due_date(pt_client, officer, maria):
    pt_client.force_login(officer)
    received = timezone.localtime().replace(hour=9, minute=0, second=0, microsecond=0)
    response = pt_client.post(ADMIN_DSR + "add/", {
        "user": maria.pk, "request_type": "access", "details": "",
        "received_at_0": received.strftime("%d/%m/%Y"), "received_at_1": "09:00:00",
    }, follow=True)
    request = DataSubjectRequest.objects.get(user=maria)
    due = (received + timedelta(days=15)).strftime("%d/%m/%Y")
    assert timezone.localtime(request.due_at).strftime("%d/%m/%Y") == due
    page = response.content.decode()
    assert f"Solicitação registrada para Maria S.; a resposta vence em {due}." in page
    listing = pt_client.get(ADMIN_DSR).content.decode()
    assert due in listing and "Maria S." in listing


@pytest.mark.django_db
def test_open_requests_come_first_by_due_date_and_overdue_ones_are_highlighted(
        pt_client, officer, maria):
    now = timezone.now()
    late = dsr.dsr_create(user=maria, request_type="access",
                          received_at=now - timedelta(days=20))
    soon = dsr.dsr_create(user=maria, request_type="correction",
                          received_at=now - timedelta(days=13))
    later = dsr.dsr_create(user=maria, request_type="sharing_info")
    closed = dsr.dsr_create(user=maria, request_type="deletion",
                            received_at=now - timedelta(days=30))
    dsr.dsr_set_status(request=closed, status="completed", actor=officer)
    pt_client.force_login(officer)
    response = pt_client.get(ADMIN_DSR)
    order = [r.pk for r in response.context["cl"].result_list]
    assert order == [late.pk, soon.pk, later.pk, closed.pk]
    page = response.content.decode()
    assert '<strong class="np-overdue">ATRASADA há 5 dia(s)</strong>' in page
    assert '<strong class="np-due-soon">' in page  # two days left


@pytest.mark.django_db
def test_revoking_consent_asks_for_confirmation_in_pt_br(pt_client, officer, maria):
    request = dsr.dsr_create(user=maria, request_type="consent_revocation")
    pt_client.force_login(officer)
    selection = {"action": "apply_consent_revocation", "_selected_action": [request.pk]}
    page = pt_client.post(ADMIN_DSR, selection).content.decode()
    assert "Revogar o consentimento das pessoas destas solicitações?" in page
    assert "Solicitação de revogação de consentimento de Maria S." in page
    assert ConsentRecord.objects.filter(user=maria, revoked_at__isnull=True).exists()
    done = pt_client.post(ADMIN_DSR, {**selection, "confirmed": "yes"}, follow=True)
    assert "1 solicitação(ões) processada(s)." in done.content.decode()
    assert not ConsentRecord.objects.filter(user=maria, revoked_at__isnull=True).exists()
    assert get_user_model().objects.get(pk=maria.pk).is_active
