"""The compliance overview: the month's consents, open and overdue requests, the last
retention purge, this week's PII detections by type and the chain's last verification."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance import audit, dsr, selectors
from compliance.audit import Event
from compliance.services import consent_revoke

OVERVIEW = "/admin/compliance/auditevent/overview/"


@pytest.mark.django_db
def test_it_counts_what_the_dpo_reports(make_user, officer,
                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first, second, third = make_user(), make_user(), make_user()
        consent_revoke(user=third, purpose="ai_chat", actor=third)
        dsr.dsr_create(user=first, request_type="access",
                       received_at=timezone.now() - timedelta(days=20))
        dsr.dsr_create(user=second, request_type="correction")
        done = dsr.dsr_create(user=second, request_type="deletion")
        dsr.dsr_set_status(request=done, status="completed", actor=officer)
        for types in ({"NOME": 2, "CPF": 1}, {"NOME": 1, "TELEFONE": 1}):
            audit.record_event(event_type=Event.PII_DETECTED, subject_user_id=first.pk,
                               metadata={"message_id": "m", "types": types})
        for batch, (sessions, messages) in enumerate([(3, 10), (2, 4)]):
            audit.record_event(event_type=Event.RETENTION_PURGE, metadata={
                "scope": "chat", "run_id": "run-1", "batch": batch, "sessions": sessions,
                "messages": messages})
    overview = selectors.compliance_overview()
    assert (overview.consents_granted, overview.consents_revoked) == (3, 1)
    assert (overview.requests_open, overview.requests_overdue) == (2, 1)
    assert overview.pii_by_type == {"NOME": 3, "CPF": 1, "TELEFONE": 1}
    assert (overview.last_purge.sessions, overview.last_purge.messages) == (5, 14)
    assert overview.last_chain_check is None


@pytest.mark.django_db
def test_officers_see_the_overview_in_pt_br_and_ops_do_not(client, officer, ops, make_user):
    make_user()
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "pt-br"
    client.force_login(officer)
    client.post("/admin/compliance/auditevent/verify/")
    page = client.get(OVERVIEW).content.decode()
    assert "consentimentos concedidos" in page and "Íntegra" in page
    assert "Nenhum dado pessoal detectado nesta semana." in page
    assert client.get("/admin/").content.decode().count(OVERVIEW) == 1
    client.force_login(ops)
    assert client.get(OVERVIEW).status_code == 403
    assert OVERVIEW not in client.get("/admin/").content.decode()
