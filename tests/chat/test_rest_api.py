"""The chat REST API against real PostgreSQL and the simulated provider (real SDKs)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from chat.models import ChatMessage, ChatSession, ProviderAttempt
from tests.chat.helpers import api_client

# Transactional: the answer is stored from the async pipeline, which manages its own
# database connections (as it does under daphne).
pytestmark = pytest.mark.django_db(transaction=True)

SESSIONS = "/api/v1/ai-chat/sessions/"


def _create_session(client) -> dict:
    response = client.post(SESSIONS, {"title": "Avaliação"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _send(client, session_id, content, **extra):
    return client.post(f"{SESSIONS}{session_id}/messages/",
                       {"content": content, **extra}, format="json")


def test_it_issues_and_refreshes_jwt_tokens(make_user):
    make_user(username="ana", password="s3nha-forte-para-teste")
    client = api_client()
    response = client.post("/api/v1/auth/token/",
                           {"username": "ana", "password": "s3nha-forte-para-teste"},
                           format="json")
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) >= {"access", "refresh"}
    refreshed = client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]},
                            format="json")
    assert refreshed.status_code == 200 and "access" in refreshed.json()
    bad = client.post("/api/v1/auth/token/", {"username": "ana", "password": "errada"},
                      format="json")
    assert bad.status_code == 401
    assert bad.json()["code"] == "not_authenticated"


def test_it_refuses_anonymous_requests_with_401():
    response = api_client().get(SESSIONS)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_it_creates_a_session_with_the_spec_shape(clinician, ai_settings):
    body = _create_session(api_client(clinician))
    assert set(body) >= {"id", "status", "created_at", "expires_at", "websocket_url"}
    assert body["status"] == "active"
    assert body["websocket_url"].endswith(f"/ws/ai-chat/{body['id']}/")


def test_it_lists_only_the_users_own_sessions(make_user, clinician, ai_settings):
    other = make_user(username="other")
    mine = _create_session(api_client(clinician))
    _create_session(api_client(other))
    listed = api_client(clinician).get(SESSIONS).json()
    assert [s["id"] for s in listed] == [mine["id"]]


def test_it_answers_404_for_another_users_session(make_user, clinician, ai_settings):
    other = make_user(username="other")
    foreign = _create_session(api_client(other))["id"]
    client = api_client(clinician)
    for response in (
        client.get(f"{SESSIONS}{foreign}/"),
        client.get(f"{SESSIONS}{foreign}/messages/"),
        client.post(f"{SESSIONS}{foreign}/close/"),
        _send(client, foreign, "olá"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert not ChatMessage.objects.filter(session_id=foreign).exists()


def test_it_requires_consent_before_a_session(make_user, ai_settings):
    user = make_user(consent=False)
    response = api_client(user).post(SESSIONS, {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "consent_required"


def test_it_answers_a_message_and_stores_both_sides(clinician, ai_settings, simulator):
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = _send(client, session_id, "Quais cuidados após peeling químico?")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user_message"]["content"] == "Quais cuidados após peeling químico?"
    answer = body["assistant_message"]
    assert answer["status"] == "complete" and answer["provider"] == "openai"
    assert "peeling químico" in answer["content"]
    assert answer["output_tokens"] > 0 and answer["input_tokens"] > 0
    assert ProviderAttempt.objects.filter(message_id=answer["id"], outcome="success").count() == 1
    listed = client.get(f"{SESSIONS}{session_id}/messages/").json()
    assert [m["role"] for m in listed] == ["user", "assistant"]
    assert [r for r in simulator.requests() if r["path"].endswith("/chat/completions")]


def test_it_answers_through_anthropic_when_it_is_primary(clinician, ai_settings, simulator):
    ai_settings.AI_PRIMARY_PROVIDER = "anthropic"
    ai_settings.AI_SECONDARY_PROVIDER = "openai"
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = _send(client, session_id, "Intervalo entre sessões de laser?")
    assert response.status_code == 201, response.content
    answer = response.json()["assistant_message"]
    assert answer["provider"] == "anthropic"
    assert "laser" in answer["content"]
    assert [r for r in simulator.requests() if r["path"] == "/v1/messages"]


def test_it_keeps_the_same_client_id_idempotent(clinician, ai_settings, simulator):
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    client_id = str(uuid.uuid4())
    first = _send(client, session_id, "Dose de toxina para glabela?", client_id=client_id)
    second = _send(client, session_id, "Dose de toxina para glabela?", client_id=client_id)
    assert first.status_code == second.status_code == 201
    assert first.json()["assistant_message"]["id"] == second.json()["assistant_message"]["id"]
    assert ChatMessage.objects.filter(session_id=session_id, role="user").count() == 1
    completions = [r for r in simulator.requests() if r["path"].endswith("/chat/completions")]
    assert len(completions) == 1


def test_it_rejects_a_message_that_is_too_long(clinician, ai_settings):
    ai_settings.AI_MAX_INPUT_CHARS = 50
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = _send(client, session_id, "x" * 51)
    assert response.status_code == 413
    assert response.json()["code"] == "message_too_long"
    assert not ChatMessage.objects.filter(session_id=session_id).exists()


@pytest.mark.parametrize("payload", [{}, {"content": ""}, {"content": 12},
                                     {"content": "oi", "client_id": "not-a-uuid"}])
def test_it_rejects_invalid_messages_with_400(clinician, ai_settings, payload):
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = client.post(f"{SESSIONS}{session_id}/messages/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_it_refuses_a_nul_character_with_the_pipelines_one_rule(clinician, ai_settings, accept):
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = client.post(f"{SESSIONS}{session_id}/messages/", {"content": "dose\x00 alta"},
                           format="json", HTTP_ACCEPT=accept)
    assert response.status_code == 400
    # The same refusal as the WebSocket's (tests/chat/test_websocket.py); an SSE request
    # refused before its stream starts gets the JSON error body.
    assert json.loads(response.content) == {"code": "invalid",
                               "detail": "content must not contain NUL characters."}
    assert not ChatMessage.objects.filter(session_id=session_id).exists()


def test_it_rejects_malformed_json_with_400(clinician, ai_settings):
    client = api_client(clinician)
    response = client.post(SESSIONS, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_it_rate_limits_per_user_with_retry_after(clinician, ai_settings):
    ai_settings.RATE_LIMIT_MAX = 2
    client = api_client(clinician)
    _create_session(client)
    _create_session(client)
    response = client.post(SESSIONS, {}, format="json")
    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_it_refuses_sessions_beyond_capacity(make_user, clinician, ai_settings):
    ai_settings.AI_SESSION_CAPACITY = 1
    _create_session(api_client(make_user()))
    response = api_client(clinician).post(SESSIONS, {}, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "capacity_exceeded"


def test_it_rejects_messages_to_an_expired_session(clinician, ai_settings):
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    ChatSession.objects.filter(id=session_id).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    response = _send(client, session_id, "ainda aí?")
    assert response.status_code == 409
    assert response.json()["code"] == "session_expired"
    assert ChatSession.objects.get(id=session_id).status == "expired"


def test_it_closes_a_session_and_then_refuses_messages(clinician, ai_settings):
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    closed = client.post(f"{SESSIONS}{session_id}/close/")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert _send(client, session_id, "oi").status_code == 409


def test_it_keeps_the_user_message_when_both_providers_fail(clinician, ai_settings, simulator):
    simulator.set_fault(provider="openai", status=503)
    simulator.set_fault(provider="anthropic", status=529)
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = _send(client, session_id, "Contraindicações do ácido hialurônico?")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "provider_unavailable"
    kept = ChatMessage.objects.get(session_id=session_id, role="user")
    assert kept.content == "Contraindicações do ácido hialurônico?"
    assert str(kept.id) == body["message_id"]
    failed = ChatMessage.objects.get(session_id=session_id, role="assistant")
    assert failed.status == "failed" and failed.error_code == "provider_unavailable"


def test_it_names_the_provider_whose_partial_text_it_kept(clinician, ai_settings, simulator):
    # The primary drops the connection mid-answer; the secondary never answers.
    simulator.set_fault(provider="openai", drop_after_chunks=4, times=1)
    simulator.set_fault(provider="anthropic", status=529, times=1)
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = _send(client, session_id, "Intervalo entre sessões de laser?")
    assert response.status_code == 503
    failed = ChatMessage.objects.get(session_id=session_id, role="assistant")
    assert failed.status == "failed" and failed.content  # the primary's partial text
    assert (failed.provider, failed.model) == ("openai", ai_settings.OPENAI_MODEL)
    attempts = ProviderAttempt.objects.filter(message=failed).order_by("started_at")
    assert [(a.provider, a.outcome) for a in attempts] == [("openai", "error"),
                                                           ("anthropic", "error")]


def test_it_retries_a_failed_answer_with_the_same_client_id(clinician, ai_settings, simulator):
    simulator.set_fault(provider="openai", status=503, times=1)
    simulator.set_fault(provider="anthropic", status=503, times=1)
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    client_id = str(uuid.uuid4())
    assert _send(client, session_id, "Pode repetir?", client_id=client_id).status_code == 503
    retried = _send(client, session_id, "Pode repetir?", client_id=client_id)
    assert retried.status_code == 201, retried.content
    assert retried.json()["assistant_message"]["status"] == "complete"
    assert ChatMessage.objects.filter(session_id=session_id, role="user").count() == 1


def test_it_stores_message_text_encrypted(clinician, ai_settings):
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    secret_phrase = "Paciente relata alergia a lidocaína"
    assert _send(client, session_id, secret_phrase).status_code == 201
    with connection.cursor() as cursor:
        cursor.execute("SELECT content, redacted_content FROM chat_chatmessage")
        rows = cursor.fetchall()
    assert rows
    for content, redacted in rows:
        assert "lidocaína" not in content and "lidocaína" not in (redacted or "")
        assert content.startswith("gAAAAA")  # a Fernet token
    assert ChatMessage.objects.filter(role="user").get().content == secret_phrase


def test_it_serves_the_openapi_schema(clinician):
    response = api_client(clinician).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/v1/ai-chat/sessions/{session_id}/messages/" in response.content.decode()


def test_it_refuses_the_openapi_schema_to_anonymous_clients():
    response = api_client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert "/api/v1/" not in response.content.decode()


def test_it_carries_the_incoming_trace_to_the_provider(clinician, ai_settings, simulator):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = client.post(f"{SESSIONS}{session_id}/messages/", {"content": "Rastreio?"},
                           format="json", HTTP_TRACEPARENT=f"00-{trace_id}-00f067aa0ba902b7-01")
    assert response.status_code == 201
    assert trace_id in response["traceparent"]
    sent = simulator.requests(path="/v1/chat/completions")[-1]["headers"]
    assert {k.lower(): v for k, v in sent.items()}["traceparent"].split("-")[1] == trace_id


def test_a_message_breaking_a_local_rule_is_refused_and_nothing_is_sent(
        clinician, ai_settings, simulator):
    ai_settings.AI_CONTENT_FILTER_RULES = [r"receita_controlada=receita\s+azul"]
    client = api_client(clinician)
    session_id = _create_session(client)["id"]
    response = _send(client, session_id, "Preciso de uma receita azul para Ana Lúcia")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "content_filtered"
    assert not ChatMessage.objects.filter(session_id=session_id).exists()
    assert not simulator.requests()


def test_moderation_sees_only_redacted_text_before_anything_is_stored(
        clinician, ai_settings, simulator):
    ai_settings.AI_CONTENT_FILTER_RULES = []
    ai_settings.AI_CONTENT_FILTER_MODERATION = True
    client = api_client(clinician)
    session_id = _create_session(client)["id"]

    refused = _send(client, session_id, "CPF 529.982.247-25 com FLAGGED_TEST_TERM")
    assert refused.status_code == 400, refused.content
    assert refused.json()["code"] == "content_filtered"
    assert not ChatMessage.objects.filter(session_id=session_id).exists()

    accepted = _send(client, session_id, "Retorno do CPF 529.982.247-25 em 15 dias?")
    assert accepted.status_code == 201, accepted.content
    stored = ChatMessage.objects.get(session_id=session_id, role="user")
    moderated = [r["body"]["input"] for r in simulator.requests(path="/v1/moderations")]
    completions = simulator.requests(path="/v1/chat/completions")
    assert len(moderated) == 2 and len(completions) == 1
    # The text checked is the text sent: same placeholders, no identifier.
    assert moderated[1] == stored.redacted_content
    assert all("529.982.247-25" not in text for text in moderated)
