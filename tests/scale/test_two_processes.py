"""Scaling out: two daphne processes share PostgreSQL and Redis and behave as one service.

The processes run the real ASGI app against pytest-django's test database and
the Redis db of this test run; the simulated provider runs in the test process
and records what each process sent it. Rate limits, session capacity and the
circuit breaker must hold across processes, and a client that reconnects to
the other process mid-answer must get its stored answer without a second
provider call.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect

from chat.models import ChatMessage, ProviderAttempt
from chat.providers import circuit
from tests.chat.helpers import bearer
from tests.support import subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90
RATE_LIMIT_MAX = 5
CAPACITY = 2
CIRCUIT_THRESHOLD = 2

pytestmark = pytest.mark.django_db(transaction=True)



def _env(simulator) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("TEST_DATABASE_NAME", "DJANGO_SETTINGS_MODULE")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "neonpro.settings",
        "NEONPRO_ENV_FILE": os.devnull,
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",
        # The same secrets as this process: it mints the JWTs and reads what they store.
        "SECRET_KEY": settings.SECRET_KEY,
        "JWT_SECRET": settings.SIMPLE_JWT["SIGNING_KEY"],
        "ENCRYPTION_KEY": ",".join(settings.ENCRYPTION_KEYS),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "warning",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "OPENAI_API_KEY": "test-openai-key",
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "OPENAI_BASE_URL": f"{simulator.url}/v1",
        "ANTHROPIC_BASE_URL": simulator.url,
        "AI_PRIMARY_PROVIDER": "openai",
        "AI_SECONDARY_PROVIDER": "anthropic",
        "AI_PROVIDER_TIMEOUT": "5000",
        "RATE_LIMIT_MAX": str(RATE_LIMIT_MAX),
        # Ten years: windows are fixed, aligned on the epoch, and a boundary falling
        # inside a test would restart the count; with this one it cannot.
        "RATE_LIMIT_WINDOW": str(10 * 365 * 24 * 3600 * 1000),
        "AI_SESSION_CAPACITY": str(CAPACITY),
        "AI_CIRCUIT_FAILURE_THRESHOLD": str(CIRCUIT_THRESHOLD),
        "AI_CIRCUIT_WINDOW": "600",
        "AI_CIRCUIT_COOLDOWN": "600",
    })
    return env


def _start(env: dict[str, str], log_path: Path) -> tuple[str, subprocess.Popen]:
    # Bound here and handed over: no window in which another process takes the port.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(listener.fileno()),
             "neonpro.asgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
        )
    listener.close()
    return f"http://127.0.0.1:{port}", process


def _wait_until_serving(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"daphne exited with {process.returncode}:\n"
                        f"{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/api/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # readiness poll of a starting process, not test synchronisation
    pytest.fail(f"daphne did not serve within {START_TIMEOUT_S}s:\n"
                f"{log_path.read_text(errors='replace')[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def web_pair(transactional_db, simulator, tmp_path) -> Iterator[tuple[str, str]]:
    """Two daphne processes (A, B) on the test database and this run's Redis db.

    Started for each test: the database is flushed between tests, and a process
    that outlived a flush would keep ids it cached (content types) that no
    longer exist.
    """
    if not settings.REDIS_URL:
        pytest.skip("scale-out tests need REDIS_URL: the processes share state through Redis")
    if connection.vendor != "postgresql":
        pytest.skip("scale-out tests need PostgreSQL")
    env = _env(simulator)
    started = [_start(env, tmp_path / f"daphne-{name}.log") for name in ("a", "b")]
    try:
        for (url, process), name in zip(started, ("a", "b"), strict=True):
            _wait_until_serving(url, process, tmp_path / f"daphne-{name}.log")
        yield started[0][0], started[1][0]
    finally:
        for _url, process in started:
            _stop(process)


def _auth(user) -> dict[str, str]:
    return {"Authorization": bearer(user)}


def _create_session(base: str, user) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/ai-chat/sessions/", json={}, headers=_auth(user),
                      timeout=30)


def _send(base: str, user, session_id: str, content: str) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/ai-chat/sessions/{session_id}/messages/",
                      json={"content": content}, headers=_auth(user), timeout=30)


def test_it_counts_rate_limit_hits_from_both_processes_together(web_pair, make_user):
    a, b = web_pair
    user = make_user()
    created = _create_session(a, user)  # hit 1, on A
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    # Hits 2..6 alternate B, A, B, A, B: each process alone sees at most 3 of the 6
    # hits, so only a count shared by both can refuse the sixth.
    responses = [_send(b if i % 2 == 0 else a, user, session_id, f"Pergunta {i}")
                 for i in range(RATE_LIMIT_MAX)]
    assert [r.status_code for r in responses] == [201] * (RATE_LIMIT_MAX - 1) + [429]
    refused = responses[-1]
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    again = _send(a, user, session_id, "Mais uma")
    assert again.status_code == 429 and again.json()["code"] == "rate_limited"
    # Refused messages were never stored: only the four accepted questions are.
    assert ChatMessage.objects.filter(session_id=session_id, role="user").count() == 4


def test_it_enforces_session_capacity_across_processes(web_pair, make_user):
    a, b = web_pair
    first, second, third = make_user(), make_user(), make_user()
    assert _create_session(a, first).status_code == 201
    kept = _create_session(a, second)
    assert kept.status_code == 201
    refused = _create_session(b, third)
    assert refused.status_code == 503
    assert refused.json()["code"] == "capacity_exceeded"
    # A session closed through A frees a place that B sees at once.
    closed = httpx.post(f"{a}/api/v1/ai-chat/sessions/{kept.json()['id']}/close/",
                        headers=_auth(second), timeout=30)
    assert closed.status_code == 200, closed.text
    assert _create_session(b, third).status_code == 201


def test_it_skips_a_provider_whose_circuit_another_process_opened(web_pair, make_user,
                                                                   simulator):
    a, b = web_pair
    user = make_user()
    session_id = _create_session(a, user).json()["id"]
    simulator.set_fault("openai", status=500, times=CIRCUIT_THRESHOLD)
    for i in range(CIRCUIT_THRESHOLD):
        answered = _send(a, user, session_id, f"Pergunta {i}")
        assert answered.status_code == 201, answered.text
        assert answered.json()["assistant_message"]["provider"] == "anthropic"
    assert circuit.circuit_state("openai")["state"] == circuit.OPEN
    # OpenAI is healthy again, but the circuit A opened is shared: B must not try it.
    simulator.clear_faults()
    simulator.clear_requests()
    answered = _send(b, user, session_id, "Pergunta pelo processo B")
    assert answered.status_code == 201, answered.text
    assert answered.json()["assistant_message"]["provider"] == "anthropic"
    assert simulator.requests(provider="openai", path="/v1/chat/completions") == []
    assert len(simulator.requests(provider="anthropic", path="/v1/messages")) == 1
    attempts = ProviderAttempt.objects.filter(
        message_id=answered.json()["assistant_message"]["id"]
    ).order_by("started_at")
    assert [(x.provider, x.outcome) for x in attempts] == [
        ("openai", "skipped_open_circuit"), ("anthropic", "success")]


async def _frames_until_end(ws, limit_s: float = 30) -> list[dict]:
    frames: list[dict] = []
    async with asyncio.timeout(limit_s):
        while not frames or frames[-1]["type"] not in ("done", "error"):
            frames.append(json.loads(await ws.recv()))
    return frames


def test_it_resumes_a_session_on_the_other_process_after_a_reconnect(web_pair, make_user,
                                                                      simulator):
    a, b = web_pair
    user = make_user()
    session_id = _create_session(a, user).json()["id"]
    # Slow tokens: the client leaves A while the answer is still being generated.
    simulator.configure(token_delay_ms=40)
    simulator.clear_requests()
    client_id = str(uuid.uuid4())
    question = "Qual o intervalo entre sessões de microagulhamento?"
    message = {"type": "message", "content": question, "client_id": client_id}
    headers = {**_auth(user)}

    async def chat() -> tuple[dict, list[dict]]:
        ws_a = await connect(f"{a.replace('http', 'ws')}/ws/ai-chat/{session_id}/",
                             additional_headers={**headers, "Origin": a})
        await ws_a.send(json.dumps(message))
        ack = json.loads(await asyncio.wait_for(ws_a.recv(), 30))
        token = json.loads(await asyncio.wait_for(ws_a.recv(), 30))
        assert token["type"] == "token", token
        await ws_a.close()  # gone mid-answer
        async with connect(f"{b.replace('http', 'ws')}/ws/ai-chat/{session_id}/",
                           additional_headers={**headers, "Origin": b}) as ws_b:
            await ws_b.send(json.dumps(message))
            return ack, await _frames_until_end(ws_b)

    ack, frames = asyncio.run(chat())
    assert ack["type"] == "ack"
    assert frames[0] == {**ack, "type": "ack"}  # the same stored message, not a new one
    assert frames[-1]["type"] == "done", frames[-1]
    answer = "".join(f["delta"] for f in frames if f["type"] == "token")
    assert question in answer  # the simulator echoes the question it received
    # One provider call in total: B replayed what A generated and stored.
    assert len(simulator.requests(path="/v1/chat/completions")) == 1
    assert simulator.requests(path="/v1/messages") == []
    history = httpx.get(f"{b}/api/v1/ai-chat/sessions/{session_id}/messages/",
                        headers=_auth(user), timeout=30)
    assert history.status_code == 200, history.text
    assert [(m["role"], m["content"], m["status"]) for m in history.json()] == [
        ("user", question, "complete"), ("assistant", answer, "complete")]
    assert history.json()[0]["client_id"] == client_id
