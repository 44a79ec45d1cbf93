"""Masked by default, revealed with a reason: an officer reads a session's personal data in
clear only after recording why, for that one page; operations staff never read text."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from compliance.audit import Event
from compliance.models import AuditEvent


@pytest.fixture
def session(make_user, make_session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        subject = make_user(username="subject-r")
        return make_session(subject, title="Paciente Joana Prado", exchanges=1)


def _change(session) -> str:
    return reverse("admin:chat_chatsession_change", args=[session.pk])


def _reveal(session) -> str:
    return reverse("admin:chat_chatsession_reveal", args=[session.pk])


@pytest.mark.django_db
def test_it_masks_the_text_and_title_by_default_and_offers_the_reveal(client, session,
                                                                      officer):
    client.force_login(officer)
    page = client.get(_change(session)).content.decode()
    assert "Paciente [NOME_1], CPF [CPF_1] #0" in page
    assert "Resposta para [NOME_1] #0" in page
    assert "Joana" not in page and "529.982.247-25" not in page
    assert _reveal(session) in page
    assert not AuditEvent.objects.filter(event_type=Event.PII_REVEALED).exists()


@pytest.mark.django_db
def test_it_reveals_the_clear_text_once_after_recording_who_when_which_session_and_why(
        client, session, officer):
    client.force_login(officer)
    form = client.get(_reveal(session))
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()
    response = client.post(_reveal(session), {"reason": "dsr", "reference": "DSR-12"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Paciente Joana Prado, CPF 529.982.247-25 #0" in page
    assert "Paciente [NOME_1], CPF [CPF_1] #0" in page  # what went to the provider, too
    assert "Paciente Joana Prado" in page  # title
    assert "no-store" in response["Cache-Control"]
    event = AuditEvent.objects.get(event_type=Event.PII_REVEALED)
    assert (event.actor_id, event.subject_user_id, event.session_id, event.clinic_id) == (
        officer.pk, session.user_id, session.pk, session.clinic_id)
    assert event.metadata == {"reason": "dsr", "reference": "DSR-12"}
    # The page's form saves to the session's own URL; reloading masks it again.
    assert f'action="{_change(session)}"' in page
    again = client.get(_change(session)).content.decode()
    assert "Joana" not in again


@pytest.mark.django_db
@pytest.mark.parametrize("data, field", [
    ({"reason": "curiosity", "reference": "DSR-1"}, "reason"),
    ({"reason": "dsr", "reference": ""}, "reference"),
    ({"reason": "dsr", "reference": "Maria Souza"}, "reference"),  # a name, not a number
    ({"reason": "dsr", "reference": "abc"}, "reference"),
])
def test_it_refuses_a_reveal_without_a_valid_reason(client, session, officer, data, field):
    client.force_login(officer)
    response = client.post(_reveal(session), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    page = response.content.decode()
    assert "Joana" not in page and "529.982.247-25" not in page
    assert not AuditEvent.objects.filter(event_type=Event.PII_REVEALED).exists()


@pytest.mark.django_db
def test_nothing_is_revealed_when_the_reason_cannot_be_recorded(client, session, officer):
    client.force_login(officer)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent "
                       "ADD CONSTRAINT refuse_inserts CHECK (false) NOT VALID")
    response = client.post(_reveal(session), {"reason": "incident", "reference": "INC-3"})
    assert response.status_code == 302 and response["Location"] == _change(session)


@pytest.mark.django_db
def test_operations_staff_can_neither_reveal_nor_read_any_text(client, session, ops):
    client.force_login(ops)
    assert client.get(_reveal(session)).status_code == 403
    assert client.post(_reveal(session), {"reason": "dsr", "reference": "DSR-1"}
                       ).status_code == 403
    page = client.get(_change(session)).content.decode()
    assert "[NOME_1]" not in page and "Joana" not in page
    assert _reveal(session) not in page
    assert not AuditEvent.objects.filter(event_type=Event.PII_REVEALED).exists()
