"""The chat pipeline writes its business events (counts and ids only) to the audit trail."""

from __future__ import annotations

import json

import pytest

from compliance import audit
from compliance.audit import Event
from compliance.models import AuditEvent
from tests.chat.helpers import api_client

pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = "/api/v1/ai-chat/sessions/"
SECRET_TEXT = "Paciente Marta Quintela, CPF 529.982.247-25, retorno amanhã"


def _events(session_id) -> dict[str, list[AuditEvent]]:
    found: dict[str, list[AuditEvent]] = {}
    for event in AuditEvent.objects.filter(session_id=session_id).order_by("id"):
        found.setdefault(event.event_type, []).append(event)
    return found


def _exchange(user, content: str) -> str:
    client = api_client(user)
    session_id = client.post(SESSIONS, {"title": ""}, format="json").json()["id"]
    response = client.post(f"{SESSIONS}{session_id}/messages/", {"content": content},
                           format="json")
    assert response.status_code == 201, response.content
    assert client.post(f"{SESSIONS}{session_id}/close/").status_code == 200
    return session_id


def test_a_chat_exchange_leaves_counts_only_in_the_audit_trail(clinician, ai_settings):
    session_id = _exchange(clinician, SECRET_TEXT)
    events = _events(session_id)
    assert set(events) >= {Event.SESSION_CREATED, Event.PII_DETECTED,
                           Event.MESSAGE_PROCESSED, Event.SESSION_CLOSED}
    created = events[Event.SESSION_CREATED][0]
    assert (created.actor_id, created.subject_user_id) == (clinician.pk, clinician.pk)
    assert created.clinic_id == clinician.clinic_membership.clinic_id
    pii = events[Event.PII_DETECTED][0].metadata["types"]
    assert pii.get("CPF") == 1
    processed = events[Event.MESSAGE_PROCESSED][0].metadata
    assert processed["status"] == "complete" and processed["provider"] == "openai"
    assert processed["output_tokens"] > 0 and processed["attempts"] == 1
    assert events[Event.SESSION_CLOSED][0].metadata == {"status": "closed",
                                                        "reason": "closed_by_user"}
    trail = json.dumps([e.metadata for es in events.values() for e in es], ensure_ascii=False)
    for fragment in ("Marta", "Quintela", "529.982.247-25", "retorno"):
        assert fragment not in trail
    assert audit.audit_chain_verify().ok


def test_an_answer_appends_its_events_together_once(clinician, ai_settings, simulator):
    # pii_detected of the question, message_processed and provider_failover of the
    # answer go onto the chain in one append, after the answer; a replayed resend adds none.
    simulator.set_fault(provider="openai", status=503)
    client = api_client(clinician)
    session_id = client.post(SESSIONS, {"title": ""}, format="json").json()["id"]
    message = {"content": SECRET_TEXT, "client_id": "7d1c3a52-2b7e-4a59-9f39-3c4c8e0b9a11"}
    for _ in range(2):
        response = client.post(f"{SESSIONS}{session_id}/messages/", message, format="json")
        assert response.status_code == 201, response.content
    appended = list(AuditEvent.objects.filter(session_id=session_id)
                    .exclude(event_type=Event.SESSION_CREATED).order_by("id"))
    assert [e.event_type for e in appended] == [
        Event.PII_DETECTED, Event.MESSAGE_PROCESSED, Event.PROVIDER_FAILOVER]
    assert [e.id for e in appended] == list(range(appended[0].id, appended[0].id + 3))
    assert len({e.created_at for e in appended}) == 1
    assert audit.audit_chain_verify().ok


def test_a_failover_is_recorded(clinician, ai_settings, simulator):
    simulator.set_fault(provider="openai", status=503)
    session_id = _exchange(clinician, "Cuidados após preenchimento labial?")
    failover = _events(session_id)[Event.PROVIDER_FAILOVER][0].metadata
    assert (failover["from_provider"], failover["to_provider"]) == ("openai", "anthropic")
    assert failover["attempts"] >= 2 and failover["outcome"] == "success"


def test_with_audit_logging_off_the_pipeline_writes_no_optional_events(clinician, ai_settings):
    ai_settings.AUDIT_LOGGING_ENABLED = False
    session_id = _exchange(clinician, SECRET_TEXT)
    assert _events(session_id) == {}
