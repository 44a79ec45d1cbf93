"""One rule for a client that goes away mid-answer, on both streaming doors (real daphne):
the answer is not stopped; it is generated to its end and stored, and the client that
comes back and resends the same client_id gets it replayed, with no second provider call.
Only an explicit stop (a `stop` frame) stops an answer."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.security.conftest import bearer, make_clinician, poll, server_env
from tests.support import subprocess_database_url as database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]

QUESTION = "Explique o protocolo de hidratação."
COMPLETIONS = "/v1/chat/completions"


@pytest.fixture
def server(own_redis, start_server, simulator):
    simulator.configure(token_delay_ms=40, answer_tokens=60)  # ~2.4 s of streaming
    return start_server(server_env(database=database_url(), redis=own_redis.url,
                                   simulator_url=simulator.url))


@pytest.fixture
def chat_user(clinic):
    from chat.pipeline import sessions

    user = make_clinician(clinic=clinic, username=f"away-{uuid.uuid4().hex[:6]}")
    return user, str(sessions.session_create(user=user).id)


def _answer_of(session_id: str):
    from chat.models import ChatMessage

    return ChatMessage.objects.filter(session_id=session_id, role="assistant").first()


def _finished_answer(session_id: str):
    """The stored answer once it left "streaming" (polling the real server's writes)."""
    return poll(lambda: (a := _answer_of(session_id)) is not None
                and a.status != "streaming" and a, timeout=30, message="answer stored")


def test_an_sse_client_that_goes_away_does_not_stop_the_answer(server, chat_user, simulator):
    user, session_id = chat_user
    client_id = str(uuid.uuid4())
    url = f"{server.url}/api/v1/ai-chat/sessions/{session_id}/messages/"
    headers = {**bearer(user), "Accept": "text/event-stream"}
    with httpx.Client(timeout=15) as http, http.stream(
            "POST", url, json={"content": QUESTION, "client_id": client_id},
            headers=headers) as stream:
        seen = []
        for line in stream.iter_lines():
            if line.startswith("event: "):
                seen.append(line[7:])
            if seen.count("token") >= 2:
                break  # the client goes away mid-answer (the connection is closed)
    assert "done" not in seen

    answer = _finished_answer(session_id)
    assert answer.status == "complete", answer.status
    assert answer.output_tokens > 0 and QUESTION in answer.content
    # Coming back: the same client_id replays the stored answer, no second provider call.
    calls = len(simulator.requests(path=COMPLETIONS))
    resent = httpx.post(url, json={"content": QUESTION, "client_id": client_id},
                        headers=bearer(user), timeout=15)
    assert resent.status_code == 201, resent.text
    assert resent.json()["assistant_message"]["id"] == str(answer.id)
    assert resent.json()["assistant_message"]["content"] == answer.content
    assert len(simulator.requests(path=COMPLETIONS)) == calls


def test_a_websocket_client_that_goes_away_does_not_stop_the_answer(server, chat_user,
                                                                    simulator):
    user, session_id = chat_user
    client_id = str(uuid.uuid4())
    ws_url = server.ws_url(f"/ws/ai-chat/{session_id}/")
    headers = {**bearer(user), "Origin": server.url}

    async def leave_mid_answer() -> list[str]:
        async with connect(ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "message", "content": QUESTION,
                                      "client_id": client_id}))
            kinds: list[str] = []
            while kinds.count("token") < 2:
                kinds.append(json.loads(await asyncio.wait_for(ws.recv(), 15))["type"])
            return kinds  # leaving the block closes the socket mid-answer

    assert "done" not in asyncio.run(leave_mid_answer())
    answer = _finished_answer(session_id)
    assert answer.status == "complete", answer.status
    assert QUESTION in answer.content

    async def come_back() -> list[dict]:
        async with connect(ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "message", "content": QUESTION,
                                      "client_id": client_id}))
            frames: list[dict] = []
            while not frames or frames[-1]["type"] not in ("done", "error"):
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 15)))
            return frames

    calls = len(simulator.requests(path=COMPLETIONS))
    frames = asyncio.run(come_back())
    assert [f["type"] for f in frames] == ["ack", "token", "done"]
    assert frames[1]["delta"] == answer.content and "stopped" not in frames[-1]
    assert len(simulator.requests(path=COMPLETIONS)) == calls


def test_an_explicit_stop_still_stops_the_answer(server, chat_user):
    user, session_id = chat_user

    async def stop_mid_answer() -> dict:
        async with connect(server.ws_url(f"/ws/ai-chat/{session_id}/"),
                           additional_headers={**bearer(user), "Origin": server.url}) as ws:
            await ws.send(json.dumps({"type": "message", "content": QUESTION,
                                      "client_id": str(uuid.uuid4())}))
            frame = {"type": ""}
            while frame["type"] != "token":
                frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
            await ws.send(json.dumps({"type": "stop"}))
            while frame["type"] not in ("done", "error"):
                frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
            return frame

    assert asyncio.run(stop_mid_answer()).get("stopped") is True
    assert _finished_answer(session_id).status == "stopped"
