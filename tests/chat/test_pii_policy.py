"""PII_POLICY through the whole chat: surrogates reach the provider and come back as the
real values; a blocked type refuses the message on REST, SSE and WebSocket with nothing
stored or sent; a redaction failure on real input fails closed and is counted for the
alert."""

from __future__ import annotations

import json
import re

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from chat.models import ChatMessage, ChatSession
from chat.pipeline import sessions
from compliance.models import AuditEvent
from compliance.redaction import checksums, engine
from compliance.redaction.detectors import BrazilianDetector, default_detectors
from neonpro.asgi import application
from tests.chat.helpers import api_client, ws_headers

pytestmark = pytest.mark.django_db(transaction=True)

CPF = "529.982.247-25"
PHONE = "(11) 98765-4321"
MESSAGE = (f"Paciente Maria Aparecida Souza, CPF {CPF}, telefone {PHONE}, "
           "retorna para reaplicação de toxina botulínica.")
SECRETS = ("Maria", "Aparecida", "Souza", CPF, "52998224725", "98765-4321")


def _leaks(secret: str, text: str) -> bool:
    # Whole words: a surrogate "Mariana" is not the real "Maria".
    return re.search(rf"(?<!\w){re.escape(secret)}(?!\w)", text) is not None


def _session(user) -> str:
    response = api_client(user).post("/api/v1/ai-chat/sessions/", {}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _sent(simulator) -> str:
    return json.dumps([r["body"] for r in simulator.requests()], ensure_ascii=False)


def _sent_by_user(simulator) -> str:
    """What the clinician's turns looked like at the provider (the system prompt aside)."""
    return json.dumps([m for r in simulator.requests() for m in r["body"].get("messages", [])
                       if m.get("role") == "user"], ensure_ascii=False)


def _post(user, session_id, content, **extra):
    return api_client(user).post(f"/api/v1/ai-chat/sessions/{session_id}/messages/",
                                 {"content": content}, format="json", **extra)


# --- surrogate ---------------------------------------------------------------------------
def test_it_sends_surrogates_and_shows_the_real_values(clinician, ai_settings, simulator):
    ai_settings.PII_POLICY = "NOME:surrogate,CPF:surrogate,TELEFONE:surrogate"
    session_id = _session(clinician)
    response = _post(clinician, session_id, MESSAGE)
    assert response.status_code == 201, response.content
    mapping = ChatSession.objects.get(id=session_id).pii_mapping
    fake_name, fake_cpf = mapping["~[NOME_1]"], mapping["~[CPF_1]"]
    fake_phone = mapping["~[TELEFONE_1]"]
    sent = _sent(simulator)
    for secret in SECRETS:
        assert not _leaks(secret, sent)
    assert "[NOME_1]" not in _sent_by_user(simulator) and "[CPF_1]" not in _sent_by_user(
        simulator)
    assert fake_name in sent and fake_cpf in sent and fake_phone in sent
    assert checksums.cpf_is_valid(fake_cpf.replace(".", "").replace("-", ""))
    # The simulated answer echoes the question: the surrogates come back and are reversed.
    answer = response.json()["assistant_message"]["content"]
    assert "Maria Aparecida Souza" in answer and CPF in answer and PHONE in answer
    assert fake_name not in answer and fake_cpf not in answer
    stored = ChatMessage.objects.get(id=response.json()["user_message"]["id"])
    assert fake_cpf in stored.redacted_content and CPF not in stored.redacted_content


def test_it_keeps_a_surrogate_for_the_whole_session(clinician, ai_settings, simulator):
    ai_settings.PII_POLICY = "CPF:surrogate"
    session_id = _session(clinician)
    assert _post(clinician, session_id, f"CPF da paciente: {CPF}").status_code == 201
    fake = ChatSession.objects.get(id=session_id).pii_mapping["~[CPF_1]"]
    simulator.clear_requests()
    assert _post(clinician, session_id, f"Confirme o CPF {CPF.replace('.', '')}"
                 ).status_code == 201
    last = simulator.requests()[-1]["body"]["messages"][-1]["content"]
    assert fake in last and CPF not in last


@pytest.mark.asyncio
async def test_it_streams_real_values_back_over_the_websocket(clinician, ai_settings,
                                                               simulator):
    ai_settings.PII_POLICY = "*:surrogate"
    session = await database_sync_to_async(sessions.session_create)(user=clinician, title="")
    ws = WebsocketCommunicator(application, f"/ws/ai-chat/{session.id}/",
                               headers=ws_headers(clinician))
    assert (await ws.connect(timeout=5))[0]
    await ws.send_json_to({"type": "message", "content": MESSAGE})
    frames = []
    while not frames or frames[-1]["type"] not in ("done", "error"):
        frames.append(await ws.receive_json_from(timeout=10))
    await ws.disconnect()
    assert frames[0]["pii"] == {"NOME": 1, "CPF": 1, "TELEFONE": 1}
    shown = "".join(f["delta"] for f in frames if f["type"] == "token")
    assert "Maria Aparecida Souza" in shown and CPF in shown and PHONE in shown
    mapping = (await ChatSession.objects.aget(id=session.id)).pii_mapping
    for key in ("~[NOME_1]", "~[CPF_1]", "~[TELEFONE_1]"):
        assert mapping[key] not in shown
    sent = _sent(simulator)
    assert not any(_leaks(secret, sent) for secret in SECRETS)


def test_it_audits_the_policy_each_detected_type_was_handled_under(clinician, ai_settings):
    ai_settings.PII_POLICY = "NOME:surrogate"
    session_id = _session(clinician)
    assert _post(clinician, session_id, MESSAGE).status_code == 201
    event = AuditEvent.objects.get(event_type="pii_detected", session_id=session_id)
    assert event.metadata["types"] == {"NOME": 1, "CPF": 1, "TELEFONE": 1}
    assert event.metadata["policy"] == {"NOME": "surrogate", "CPF": "tag", "TELEFONE": "tag"}


# --- block ----------------------------------------------------------------------------------
def _assert_blocked_and_nothing_left(session_id, simulator, body):
    assert body["code"] == "pii_blocked"
    assert body["types"] == ["CPF"]
    assert "CPF" in body["detail"] and CPF not in json.dumps(body)
    assert simulator.requests() == []  # neither the chat nor the moderation endpoint
    assert not ChatMessage.objects.filter(session_id=session_id).exists()
    assert ChatSession.objects.get(id=session_id).pii_mapping == {}
    event = AuditEvent.objects.get(event_type="pii_detected", session_id=session_id)
    assert event.metadata == {"message_id": None, "types": {"NOME": 1, "CPF": 1, "TELEFONE": 1},
                              "policy": {"NOME": "tag", "CPF": "block", "TELEFONE": "tag"},
                              "outcome": "blocked"}
    assert all(secret not in json.dumps(event.metadata) for secret in SECRETS)


def test_it_refuses_a_blocked_type_over_rest(clinician, ai_settings, simulator):
    ai_settings.PII_POLICY = "CPF:block"
    ai_settings.AI_CONTENT_FILTER_MODERATION = True  # even the moderation call must not run
    session_id = _session(clinician)
    before = REGISTRY.get_sample_value("ai_chat_errors_total", {"type": "pii_blocked"}) or 0
    response = _post(clinician, session_id, MESSAGE)
    assert response.status_code == 422
    _assert_blocked_and_nothing_left(session_id, simulator, response.json())
    assert REGISTRY.get_sample_value("ai_chat_errors_total", {"type": "pii_blocked"}) == \
        before + 1


def test_it_refuses_a_blocked_type_over_sse(clinician, ai_settings, simulator):
    ai_settings.PII_POLICY = "CPF:block"
    session_id = _session(clinician)
    response = _post(clinician, session_id, MESSAGE, HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 422
    _assert_blocked_and_nothing_left(session_id, simulator, json.loads(response.content))


@pytest.mark.asyncio
async def test_it_refuses_a_blocked_type_over_the_websocket(clinician, ai_settings, simulator):
    ai_settings.PII_POLICY = "CPF:block"
    session = await database_sync_to_async(sessions.session_create)(user=clinician, title="")
    ws = WebsocketCommunicator(application, f"/ws/ai-chat/{session.id}/",
                               headers=ws_headers(clinician))
    assert (await ws.connect(timeout=5))[0]
    await ws.send_json_to({"type": "message", "content": MESSAGE})
    frame = await ws.receive_json_from(timeout=10)
    await ws.disconnect()
    assert frame["type"] == "error"
    await database_sync_to_async(_assert_blocked_and_nothing_left)(
        session.id, simulator, frame)


def test_it_sends_a_message_without_the_blocked_type(clinician, ai_settings, simulator):
    ai_settings.PII_POLICY = "CPF:block"
    session_id = _session(clinician)
    response = _post(clinician, session_id, f"Paciente Maria Souza, telefone {PHONE}.")
    assert response.status_code == 201
    assert "[NOME_1]" in _sent_by_user(simulator)


# --- a failure inside redaction, on real input ------------------------------------------
class _BrokenDetector(BrazilianDetector):
    """Fails on one input, as a detector bug would: a message it cannot process."""

    name = "br_broken"
    needs_digit = False

    def candidates(self, text):
        if "\u2695" in text:  # ⚕, kept by the normalised view
            raise ValueError(f"cannot process {text!r}")
        return []


@pytest.fixture
def detector_that_fails_on_some_input():
    scrubber = engine.BrazilianScrubber([*default_detectors(), _BrokenDetector()])
    previous = engine.set_scrubber(scrubber)
    yield
    engine.set_scrubber(previous)


@pytest.mark.usefixtures("detector_that_fails_on_some_input")
def test_it_fails_closed_and_counts_the_failure_for_the_alert(clinician, ai_settings,
                                                              simulator):
    session_id = _session(clinician)
    before = REGISTRY.get_sample_value("ai_chat_pii_redaction_failures_total") or 0
    content = f"CPF {CPF} \u2695 da paciente Maria Souza"
    response = _post(clinician, session_id, content)
    assert response.status_code == 422
    assert response.json()["code"] == "pii_redaction_failed"
    assert CPF not in response.content.decode()
    assert simulator.requests() == []
    # The counter the PIIRedactionFailure alert watches (monitoring/ai-chat-alerts.yaml).
    assert REGISTRY.get_sample_value("ai_chat_pii_redaction_failures_total") == before + 1
    kept = ChatMessage.objects.get(session_id=session_id)
    assert kept.status == "failed" and kept.redacted_content == ""
    # The same session still works for a message the detectors can process.
    assert _post(clinician, session_id, f"CPF {CPF}").status_code == 201


@pytest.mark.parametrize("content", ["CPF 529.982.247-25 \ud800 fim", "nulo \x00 CPF 52998224725"])
def test_it_refuses_text_that_cannot_be_stored_or_sent_with_a_clear_error(
        clinician, ai_settings, simulator, content):
    session_id = _session(clinician)
    response = api_client(clinician).post(
        f"/api/v1/ai-chat/sessions/{session_id}/messages/",
        json.dumps({"content": content}), content_type="application/json")
    assert response.status_code in (400, 422), response.content
    assert response.json()["code"] in ("invalid", "pii_redaction_failed")
    assert "529" not in response.content.decode()
    assert simulator.requests() == []
