"""JSON log lines through the configured handler: the document's fields, the trace id from
`traceparent` over REST and WebSocket, and no personal data during real chats."""

from __future__ import annotations

import io
import json
import logging

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chat.pipeline import sessions
from chat.routing import websocket_urlpatterns
from chat.ws_auth import chat_auth_stack
from monitoring.logging import JsonFormatter
from neonpro import tracing
from neonpro.middleware import TraceContextASGIMiddleware
from tests.chat.helpers import api_client, ws_headers

SPEC_FIELDS = {"timestamp", "level", "service", "environment", "version", "traceId", "userId",
               "clinicId", "sessionId", "event", "message", "metadata", "performance"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
SESSIONS = "/api/v1/ai-chat/sessions/"
# Synthetic personal data: a CPF with valid check digits, an e-mail and a phone number.
CPF = "529.982.247-25"
EMAIL = "maria.silva@example.com"
PII_TEXT = (f"Paciente Maria Silva, CPF {CPF}, e-mail {EMAIL}, telefone (11) 98765-4321, "
            "quer repetir o preenchimento labial.")
PII_FRAGMENTS = (CPF, "52998224725", EMAIL, "98765-4321")


class JsonLog:
    """What the application's configured JSON handler wrote during a test."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, event: str) -> list[dict]:
        return [line for line in self.lines() if line["event"] == event]


@pytest.fixture
def json_log():
    """Redirects the configured console handler (filters and formatter unchanged) to memory."""
    handlers = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
    assert handlers, "the JSON handler of settings.LOGGING is not installed"
    handler = handlers[0]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    try:
        yield JsonLog(stream)
    finally:
        handler.setStream(previous)
        logging.getLogger().setLevel(root_level)


# --- the format -----------------------------------------------------------------------------


def test_it_writes_one_json_object_per_line_with_the_documented_fields(json_log):
    logger = logging.getLogger("neonpro.test")
    with tracing.context(trace_id=TRACE_ID, user_id=7, clinic_id=3, session_id="s-1"):
        logger.info("AI message processed successfully", extra={
            "event": "message_processed",
            "metadata": {"provider": "openai", "responseTime": 1180, "piiDetected": False},
            "performance": {"dbQueryTime": 45, "aiProviderTime": 1120}})
    logger.warning("line\nbreaks stay inside one JSON line")
    first, second = json_log.lines()
    assert len(json_log.text.strip().splitlines()) == 2
    assert SPEC_FIELDS <= set(first)
    assert first["level"] == "info" and second["level"] == "warn"
    assert first["service"] == "ai-chat"
    assert first["timestamp"].endswith("Z")
    assert (first["traceId"], first["userId"], first["clinicId"], first["sessionId"]) == (
        TRACE_ID, "7", "3", "s-1")
    assert first["event"] == "message_processed"
    assert first["metadata"] == {"provider": "openai", "responseTime": 1180,
                                 "piiDetected": False}
    assert first["performance"] == {"dbQueryTime": 45, "aiProviderTime": 1120}
    # Outside the context block the ids are gone again.
    assert second["traceId"] is None and second["userId"] is None


def test_it_redacts_personal_data_in_messages_arguments_metadata_and_exceptions(json_log):
    logger = logging.getLogger("neonpro.test")
    logger.warning("paciente com CPF %s", CPF, extra={"metadata": {"note": f"contato {EMAIL}"}})
    try:
        raise ValueError(f"could not parse {CPF}")
    except ValueError:
        logger.exception("parse failed for %s", EMAIL)
    text = json_log.text
    for fragment in (CPF, EMAIL):
        assert fragment not in text
    warning, error = json_log.lines()
    assert "[CPF]" in warning["message"] and "[EMAIL]" in warning["metadata"]["note"]
    assert "[EMAIL]" in error["message"]
    assert "ValueError" in error["exception"] and "[CPF]" in error["exception"]


def test_it_keeps_hex_digests_in_metadata_whole_but_still_redacts_bare_numbers(json_log):
    # This SHA-256 holds a run of digits the card detector masks (4121001428325).
    digest = "a1239b8396007fbd84872c8f4121001428325f0624ebef1ab6b833c2382cae12"
    card = "4121001428325"
    logging.getLogger("neonpro.test").info("anchored", extra={"metadata": {
        "last_hash": digest, "card": card, "note": f"hash {digest}"}})
    (line,) = json_log.lines()
    assert line["metadata"]["last_hash"] == digest
    assert card not in line["metadata"]["card"]
    assert digest not in line["metadata"]["note"]  # only a whole value is a digest


# --- trace ids ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_carries_the_traceparent_trace_id_through_a_rest_chat(json_log, make_user,
                                                                  ai_settings):
    user = make_user()
    client = api_client(user)
    session = client.post(SESSIONS, {}, format="json", HTTP_TRACEPARENT=TRACEPARENT)
    assert session.status_code == 201
    assert tracing.trace_id_from_traceparent(session["traceparent"]) == TRACE_ID
    answer = client.post(f"{SESSIONS}{session.json()['id']}/messages/",
                         {"content": "Quais cuidados após o peeling?"}, format="json",
                         HTTP_TRACEPARENT=TRACEPARENT)
    assert answer.status_code == 201

    created = json_log.events("session_created")
    processed = json_log.events("message_processed")
    assert created and processed
    for line in created + processed:
        assert line["traceId"] == TRACE_ID
        assert line["userId"] == str(user.pk)
        assert line["sessionId"] == session.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_it_starts_a_new_trace_for_a_missing_or_invalid_traceparent(json_log, make_user,
                                                                      ai_settings):
    client = api_client(make_user())
    ids = set()
    for header in (None, "garbage", f"ff-{TRACE_ID}-00f067aa0ba902b7-01",
                   f"00-{'0' * 32}-00f067aa0ba902b7-01"):
        extra = {"HTTP_TRACEPARENT": header} if header else {}
        response = client.get(SESSIONS, **extra)
        trace_id = tracing.trace_id_from_traceparent(response["traceparent"])
        assert trace_id and trace_id != TRACE_ID
        ids.add(trace_id)
    assert len(ids) == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_it_carries_the_trace_and_ids_through_a_websocket_chat(json_log, make_user,
                                                                      ai_settings):
    user = await database_sync_to_async(make_user)()
    session = await database_sync_to_async(sessions.session_create)(user=user, title="")
    application = TraceContextASGIMiddleware(chat_auth_stack(URLRouter(websocket_urlpatterns)))
    ws = WebsocketCommunicator(application, f"/ws/ai-chat/{session.id}/",
                               headers=[*ws_headers(user), (b"traceparent", TRACEPARENT.encode())])
    connected, _ = await ws.connect(timeout=5)
    assert connected
    await ws.send_json_to({"type": "message", "content": "Intervalo entre sessões de laser?"})
    while (await ws.receive_json_from(timeout=10))["type"] not in ("done", "error"):
        pass
    await ws.disconnect()

    processed = json_log.events("message_processed")
    assert processed
    line = processed[-1]
    assert line["traceId"] == TRACE_ID
    assert line["userId"] == str(user.pk)
    assert line["clinicId"] == str(session.clinic_id)
    assert line["sessionId"] == str(session.id)


# --- no personal data ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_logs_no_personal_data_during_chats_that_succeed_and_fail(json_log, make_user,
                                                                      ai_settings, simulator):
    client = api_client(make_user())
    session_id = client.post(SESSIONS, {"title": f"Retorno {CPF}"}, format="json").json()["id"]
    ok = client.post(f"{SESSIONS}{session_id}/messages/", {"content": PII_TEXT}, format="json")
    assert ok.status_code == 201
    # Failures log more (provider attempts, errors): they must not leak either.
    simulator.set_fault("openai", status=500)
    simulator.set_fault("anthropic", status=401)
    failed = client.post(f"{SESSIONS}{session_id}/messages/", {"content": PII_TEXT},
                         format="json")
    assert failed.status_code == 503
    assert json_log.events("message_processed") and json_log.events("provider_unavailable")
    for fragment in PII_FRAGMENTS:
        assert fragment not in json_log.text, fragment
