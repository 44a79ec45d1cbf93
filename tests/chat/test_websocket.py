"""The chat WebSocket through the whole ASGI app (auth, origin check, routing, consumer)."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat import selectors
from chat.models import ChatMessage
from chat.pipeline import sessions
from neonpro.asgi import application
from tests.chat.helpers import ws_headers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _open(user, session_id, **kwargs) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(
        application, f"/ws/ai-chat/{session_id}/", headers=ws_headers(user, **kwargs)
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def _session_for(user):
    return await database_sync_to_async(sessions.session_create)(user=user, title="")


async def _frames_until_final(communicator, timeout=10) -> list[dict]:
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] in ("done", "error"):
            return frames


async def test_it_streams_ack_tokens_and_done(clinician, ai_settings):
    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    client_id = str(uuid.uuid4())
    await ws.send_json_to({"type": "message", "content": "Cuidados pós-botox?",
                           "client_id": client_id})
    frames = await _frames_until_final(ws)
    ack, *tokens, done = frames
    assert ack["type"] == "ack" and ack["client_id"] == client_id and ack["pii"] == {}
    assert tokens and all(f["type"] == "token" for f in tokens)
    text = "".join(f["delta"] for f in tokens)
    assert "Cuidados pós-botox?" in text
    assert done["type"] == "done" and done["provider"] == "openai"
    assert set(done) >= {"message_id", "model", "usage", "latency_ms", "first_token_ms"}
    assert done["usage"]["output_tokens"] > 0
    stored = await ChatMessage.objects.aget(id=done["message_id"])
    assert stored.content == text and stored.status == "complete"
    await ws.disconnect()


async def test_it_closes_unauthenticated_sockets_with_4401(clinician, ai_settings):
    session = await _session_for(clinician)
    ws = WebsocketCommunicator(application, f"/ws/ai-chat/{session.id}/",
                               headers=ws_headers(None))
    await ws.connect(timeout=5)
    closed = await ws.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_it_closes_a_foreign_session_with_4404(make_user, clinician, ai_settings):
    other = await database_sync_to_async(make_user)(username="other")
    foreign = await _session_for(other)
    for session_id in (foreign.id, uuid.uuid4(), "not-a-uuid"):
        ws = WebsocketCommunicator(application, f"/ws/ai-chat/{session_id}/",
                                   headers=ws_headers(clinician))
        await ws.connect(timeout=5)
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4404}


async def test_it_refuses_a_nul_character_like_rest_and_stores_nothing(clinician, ai_settings):
    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    await ws.send_json_to({"type": "message", "content": "dose\x00 alta"})
    frame = await ws.receive_json_from(timeout=5)
    assert frame == {"type": "error", "code": "invalid",
                     "detail": "content must not contain NUL characters."}
    assert not await ChatMessage.objects.filter(session_id=session.id).aexists()
    # The socket stays usable.
    await ws.send_json_to({"type": "ping"})
    assert await ws.receive_json_from(timeout=5) == {"type": "pong"}
    await ws.disconnect()


async def test_it_rejects_a_foreign_origin(clinician, ai_settings):
    session = await _session_for(clinician)
    ws = WebsocketCommunicator(application, f"/ws/ai-chat/{session.id}/",
                               headers=ws_headers(clinician, origin="https://evil.example"))
    connected, _ = await ws.connect(timeout=5)
    assert not connected


@pytest.mark.parametrize("frame", [
    "not json", "[1, 2]", '{"type": "bogus"}', '{"type": "message"}',
    '{"type": "message", "content": "oi", "client_id": "nope"}',
])
async def test_it_answers_malformed_frames_with_invalid_and_stays_usable(
    clinician, ai_settings, frame
):
    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    await ws.send_to(text_data=frame)
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == "invalid"
    await ws.send_json_to({"type": "message", "content": "E agora?"})
    frames = await _frames_until_final(ws)
    assert frames[-1]["type"] == "done"
    await ws.disconnect()


async def test_it_refuses_binary_and_oversized_frames(clinician, ai_settings):
    ai_settings.AI_MAX_FRAME_BYTES = 1000
    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from(timeout=5))["code"] == "invalid"
    await ws.send_json_to({"type": "message", "content": "a" * 2000})
    assert (await ws.receive_json_from(timeout=5))["code"] == "message_too_long"
    assert await ChatMessage.objects.filter(session_id=session.id).acount() == 0
    await ws.disconnect()


async def test_it_stops_an_answer_and_keeps_the_partial_text(clinician, ai_settings, simulator):
    simulator.configure(token_delay_ms=30, answer_tokens=400)
    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    await ws.send_json_to({"type": "message", "content": "Explique o protocolo completo."})
    assert (await ws.receive_json_from(timeout=5))["type"] == "ack"
    first = await ws.receive_json_from(timeout=5)
    assert first["type"] == "token"
    await ws.send_json_to({"type": "stop"})
    frames = [first] + await _frames_until_final(ws)
    done = frames[-1]
    assert done["type"] == "done" and done["stopped"] is True
    stored = await ChatMessage.objects.aget(id=done["message_id"])
    assert stored.status == "stopped"
    shown = "".join(f["delta"] for f in frames if f["type"] == "token")
    assert stored.content.startswith(shown[: len(stored.content)]) and stored.content
    await ws.disconnect()


async def test_it_replays_a_resent_client_id_without_a_second_call(
    clinician, ai_settings, simulator
):
    session = await _session_for(clinician)
    client_id = str(uuid.uuid4())
    ws = await _open(clinician, session.id)
    await ws.send_json_to({"type": "message", "content": "Primeira pergunta",
                           "client_id": client_id})
    first = await _frames_until_final(ws)
    await ws.disconnect()
    ws = await _open(clinician, session.id)  # a reconnect resends the same message
    await ws.send_json_to({"type": "message", "content": "Primeira pergunta",
                           "client_id": client_id})
    second = await _frames_until_final(ws)
    assert second[0]["message_id"] == first[0]["message_id"]
    assert second[-1]["message_id"] == first[-1]["message_id"]
    assert "".join(f.get("delta", "") for f in second) == "".join(
        f.get("delta", "") for f in first)
    assert await ChatMessage.objects.filter(session_id=session.id, role="user").acount() == 1
    completions = [r for r in simulator.requests() if r["path"].endswith("/chat/completions")]
    assert len(completions) == 1
    await ws.disconnect()


async def test_it_reports_provider_unavailable_and_keeps_the_message(
    clinician, ai_settings, simulator
):
    simulator.set_fault(provider="openai", status=500)
    simulator.set_fault(provider="anthropic", status=500)
    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    await ws.send_json_to({"type": "message", "content": "Tem alguém aí?"})
    frames = await _frames_until_final(ws)
    assert frames[0]["type"] == "ack"
    assert frames[-1]["code"] == "provider_unavailable"
    kept = await ChatMessage.objects.aget(id=frames[0]["message_id"])
    assert kept.content == "Tem alguém aí?"
    await ws.disconnect()


async def test_it_sends_rate_limited_frames_with_retry_after(clinician, ai_settings):
    ai_settings.RATE_LIMIT_MAX = 1
    # Fixed windows: with the default minute, one run in a few hundred would see a new
    # window begin between the creation and the message. An hour makes that negligible.
    ai_settings.RATE_LIMIT_WINDOW = 3_600_000
    session = await _session_for(clinician)  # the creation used the only slot
    ws = await _open(clinician, session.id)
    await ws.send_json_to({"type": "message", "content": "oi"})
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "rate_limited" and error["retry_after"] >= 1
    await ws.disconnect()


async def test_it_closes_the_socket_when_the_session_is_closed_elsewhere(
    clinician, ai_settings
):
    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    await database_sync_to_async(sessions.session_close)(user=clinician, session_id=session.id)
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "session_expired"
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4409}


@pytest.mark.parametrize("reason, code, close_code", [
    ("closed_by_user", "session_expired", 4409),
    ("consent_revoked", "consent_required", 4403),
])
async def test_it_announces_a_session_closed_before_the_socket_opened(
    clinician, ai_settings, reason, code, close_code
):
    # The page still shows the session open (another tab closed it, or consent was
    # revoked, while this one was loading): the socket says so at once.
    session = await _session_for(clinician)
    await database_sync_to_async(sessions.session_close)(user=clinician, session_id=session.id,
                                                         reason=reason)
    ws = await _open(clinician, str(session.id).upper())
    error = await ws.receive_json_from(timeout=5)
    assert error["type"] == "error" and error["code"] == code
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": close_code}


async def test_a_close_between_reading_the_session_and_opening_the_socket_is_announced(
    clinician, ai_settings, monkeypatch
):
    # The close lands right after the consumer has read the session as open: its
    # announcement must still reach this socket, not go to a group it had not joined.
    session = await _session_for(clinician)
    read_session = selectors.session_get_for_user

    def read_then_close_elsewhere(**kwargs):
        seen = read_session(**kwargs)
        # session_close reads the session through this same function: undo the patch.
        monkeypatch.setattr(selectors, "session_get_for_user", read_session)
        sessions.session_close(user=clinician, session_id=session.id)
        return seen

    monkeypatch.setattr(selectors, "session_get_for_user", read_then_close_elsewhere)
    ws = await _open(clinician, session.id)
    error = await ws.receive_json_from(timeout=5)
    assert error["code"] == "session_expired"
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4409}


async def test_it_ends_an_answer_stopped_before_it_started(clinician, ai_settings, simulator):
    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    # The stop arrives while the message is still being stored: the answer must still
    # end with a final frame and nothing may be left half-written.
    await ws.send_json_to({"type": "message", "content": "Pare já."})
    await ws.send_json_to({"type": "stop"})
    frames = await _frames_until_final(ws)
    assert frames[-1]["type"] == "done"
    answer = await ChatMessage.objects.aget(id=frames[-1]["message_id"])
    assert answer.status in ("stopped", "complete")
    assert await ChatMessage.objects.filter(session_id=session.id,
                                            status="streaming").acount() == 0
    await ws.disconnect()


async def test_a_browser_signed_in_with_its_session_cookie_chats(clinician, ai_settings):
    """The page's own sign-in (the session cookie, no token) opens the socket and the
    answer streams through it; the socket leaves the session as it found it."""
    from django.conf import settings as django_settings
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client

    browser = Client()
    await database_sync_to_async(browser.force_login)(clinician)
    cookie_name = django_settings.SESSION_COOKIE_NAME
    session_key = browser.cookies[cookie_name].value
    before = await database_sync_to_async(lambda: dict(SessionStore(session_key).load()))()
    session = await _session_for(clinician)
    ws = WebsocketCommunicator(
        application, f"/ws/ai-chat/{session.id}/",
        headers=[*ws_headers(), (b"cookie", f"{cookie_name}={session_key}".encode())])
    connected, _ = await ws.connect(timeout=5)
    assert connected
    await ws.send_json_to({"type": "message", "content": "Cuidados pós-botox?"})
    frames = await _frames_until_final(ws)
    assert frames[0]["type"] == "ack" and frames[-1]["type"] == "done"
    assert "Cuidados pós-botox?" in "".join(f["delta"] for f in frames if f["type"] == "token")
    await ws.disconnect()
    after = await database_sync_to_async(lambda: dict(SessionStore(session_key).load()))()
    assert after == before


async def test_an_answer_leaves_its_providers_live_figures(clinician, ai_settings):
    from chat.models import ProviderAttempt
    from chat.providers import reporting

    session = await _session_for(clinician)
    ws = await _open(clinician, session.id)
    await ws.send_json_to({"type": "message", "content": "Cuidados pós-botox?"})
    done = (await _frames_until_final(ws))[-1]
    await ws.disconnect()

    assert done["type"] == "done"
    attempt = await ProviderAttempt.objects.aget(message_id=done["message_id"])
    live = await database_sync_to_async(reporting.provider_status)("openai")
    assert (live["status"], live["last_outcome"]) == ("healthy", "success")
    assert live["response_time_ms"] == attempt.latency_ms
