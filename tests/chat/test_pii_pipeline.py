"""Personal data through the whole chat: redacted before the provider, re-identified for
the clinician, counted (never shown) in acks, metrics and logs, fail-closed on errors."""

from __future__ import annotations

import json
import logging

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from prometheus_client import REGISTRY

from chat.models import ChatMessage, ChatSession
from chat.pipeline import sessions
from compliance import redaction
from neonpro.asgi import application
from tests.chat.helpers import api_client, ws_headers

pytestmark = pytest.mark.django_db(transaction=True)

CPF = "529.982.247-25"  # valid check digits
EMAIL = "maria.souza@example.com.br"
PHONE = "(11) 98765-4321"
MESSAGE = (f"Paciente Maria Aparecida Souza, CPF {CPF}, e-mail {EMAIL}, telefone {PHONE}, "
           "retorna para reaplicação de toxina botulínica.")
SECRETS = ("Maria Aparecida Souza", CPF, "52998224725", EMAIL, "98765-4321")


def _session(user) -> str:
    response = api_client(user).post("/api/v1/ai-chat/sessions/", {}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _provider_bodies(simulator) -> str:
    return json.dumps([r["body"] for r in simulator.requests()], ensure_ascii=False)


def test_it_sends_only_placeholders_and_shows_the_real_values(clinician, ai_settings, simulator):
    client = api_client(clinician)
    session_id = _session(clinician)
    response = client.post(f"/api/v1/ai-chat/sessions/{session_id}/messages/",
                           {"content": MESSAGE}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    sent = _provider_bodies(simulator)
    for value in SECRETS:
        assert value not in sent
    assert "[CPF_1]" in sent and "[EMAIL_1]" in sent and "[NOME_1]" in sent
    # The simulated answer echoes the question: placeholders come back and are re-identified.
    answer = body["assistant_message"]["content"]
    assert CPF in answer and "Maria Aparecida Souza" in answer and "[CPF_1]" not in answer
    assert body["user_message"]["pii_counts"]["CPF"] == 1
    stored = ChatMessage.objects.get(id=body["assistant_message"]["id"])
    assert "[CPF_1]" in stored.redacted_content and CPF in stored.content
    assert ChatSession.objects.get(id=session_id).pii_mapping["[CPF_1]"] == CPF


def test_it_keeps_placeholders_stable_within_a_session(clinician, ai_settings, simulator):
    client = api_client(clinician)
    session_id = _session(clinician)
    url = f"/api/v1/ai-chat/sessions/{session_id}/messages/"
    first = client.post(url, {"content": f"CPF da paciente: {CPF}"}, format="json")
    assert first.status_code == 201
    simulator.clear_requests()
    bare_cpf = CPF.replace(".", "").replace("-", "")
    second = client.post(url, {"content": f"Confirme o CPF {bare_cpf}"}, format="json")
    assert second.status_code == 201
    last = simulator.requests()[-1]["body"]["messages"][-1]["content"]
    assert "[CPF_1]" in last and "[CPF_2]" not in last


@pytest.mark.asyncio
async def test_it_streams_re_identified_tokens_and_counts_in_the_ack(clinician, ai_settings,
                                                                      simulator):
    session = await database_sync_to_async(sessions.session_create)(user=clinician, title="")
    ws = WebsocketCommunicator(application, f"/ws/ai-chat/{session.id}/",
                               headers=ws_headers(clinician))
    assert (await ws.connect(timeout=5))[0]
    await ws.send_json_to({"type": "message", "content": MESSAGE})
    frames = []
    while not frames or frames[-1]["type"] not in ("done", "error"):
        frames.append(await ws.receive_json_from(timeout=10))
    ack = frames[0]
    assert ack["pii"] == {"NOME": 1, "CPF": 1, "EMAIL": 1, "TELEFONE": 1}
    assert all(value not in json.dumps(ack, ensure_ascii=False) for value in SECRETS)
    shown = "".join(f["delta"] for f in frames if f["type"] == "token")
    assert CPF in shown and EMAIL in shown and "[" not in shown.split("Resposta")[0]
    await ws.disconnect()


def test_it_counts_detections_by_type_in_metrics(clinician, ai_settings):
    before = REGISTRY.get_sample_value("ai_chat_pii_detections_total", {"type": "CPF"}) or 0
    client = api_client(clinician)
    session_id = _session(clinician)
    client.post(f"/api/v1/ai-chat/sessions/{session_id}/messages/", {"content": MESSAGE},
                format="json")
    after = REGISTRY.get_sample_value("ai_chat_pii_detections_total", {"type": "CPF"})
    assert after == before + 1


def test_it_fails_closed_when_redaction_breaks(clinician, ai_settings, simulator, monkeypatch):
    def broken(text, *, mapping=None, policy=None):
        raise redaction.RedactionError("detector failed")

    monkeypatch.setattr(redaction, "redact", broken)
    before = REGISTRY.get_sample_value("ai_chat_pii_redaction_failures_total") or 0
    client = api_client(clinician)
    session_id = _session(clinician)
    response = client.post(f"/api/v1/ai-chat/sessions/{session_id}/messages/",
                           {"content": MESSAGE}, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "pii_redaction_failed"
    assert simulator.requests(path="/v1/chat/completions") == []
    kept = ChatMessage.objects.get(session_id=session_id)
    assert kept.status == "failed" and kept.redacted_content == "" and kept.content == MESSAGE
    assert REGISTRY.get_sample_value("ai_chat_pii_redaction_failures_total") == before + 1


def test_it_logs_no_personal_data_during_a_chat(clinician, ai_settings, caplog):
    caplog.set_level(logging.DEBUG)
    handler_output = []

    class Capture(logging.Handler):
        def emit(self, record):
            handler_output.append(self.format(record))

    from monitoring.logging import ContextFilter, JsonFormatter, RedactPIIFilter

    capture = Capture(level=logging.DEBUG)
    capture.setFormatter(JsonFormatter())
    capture.addFilter(ContextFilter())
    capture.addFilter(RedactPIIFilter())
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        client = api_client(clinician)
        session_id = _session(clinician)
        client.post(f"/api/v1/ai-chat/sessions/{session_id}/messages/", {"content": MESSAGE},
                    format="json")
        logging.getLogger("chat.test").warning("clinician typed %s", MESSAGE)
    finally:
        root.removeHandler(capture)
    output = "\n".join(handler_output)
    assert "clinician typed" in output
    for value in SECRETS:
        assert value not in output
    for line in handler_output:
        json.loads(line)
