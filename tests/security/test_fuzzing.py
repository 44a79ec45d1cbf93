"""Fuzzing the live app: the REST API from its OpenAPI schema (schemathesis) and the
chat WebSocket with random, huge, binary and flooding frames.

The bar: no 5xx, no response that breaks the schema, and a server that stays
responsive for everyone else while one client misbehaves.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.security.conftest import (
    DaphneServer,
    RedisServer,
    bearer,
    make_clinician,
    server_env,
)
from tests.support import subprocess_database_url as database_url

# The known codes of `error` frames (SPEC §5 and the service's own).
ERROR_CODES = {"invalid", "message_too_long", "in_progress", "rate_limited", "session_expired",
               "consent_required", "provider_unavailable", "provider_error",
               "content_filtered", "pii_redaction_failed", "capacity_exceeded",
               "service_unavailable", "not_found"}
FRAME_TYPES = {"ack", "token", "reset", "done", "error", "pong"}

# The server's data is committed once for the module (below); tests touch no rows.
pytestmark = pytest.mark.django_db


@dataclass
class World:
    server: DaphneServer
    alice: object  # clinician of clinic A, with consent (the WebSocket fuzzing identity)
    bob: object  # clinician of clinic B, with consent (the bystander)
    carol: object  # clinician of clinic A whose token the API fuzzer uses (it may revoke
    # her consent or close her sessions: nobody else's data is at stake)
    alice_session: str
    bob_session: str


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, simulator, tmp_path_factory):
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("fuzzing runs the app against PostgreSQL")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    from chat.pipeline import sessions
    from clinics.models import Clinic

    with django_db_blocker.unblock():
        alice = make_clinician(clinic=Clinic.objects.create(name="Clínica Fuzz A"),
                               username="fuzz-alice")
        bob = make_clinician(clinic=Clinic.objects.create(name="Clínica Fuzz B"),
                             username="fuzz-bob")
        carol = make_clinician(clinic=alice.clinic_membership.clinic, username="fuzz-carol")
        alice_session = str(sessions.session_create(user=alice, title="fuzz").id)
        bob_session = str(sessions.session_create(user=bob, title="bystander").id)
        url = database_url()
    work = tmp_path_factory.mktemp("fuzz")
    redis = RedisServer(work).start()
    server = DaphneServer(
        env=server_env(database=url, redis=redis.url, simulator_url=simulator.url,
                       # The fuzzer is one address: the lock-out must not stop it from
                       # reaching the token endpoints' other answers.
                       LOGIN_FAILURE_LIMIT_PER_IP="100000", AUTH_RATE_LIMIT_PER_IP="100000",
                       WS_CONNECT_RATE_PER_USER="1000"),
        log_path=work / "daphne.log",
    ).start()
    try:
        yield World(server, alice, bob, carol, alice_session, bob_session)
    finally:
        server.stop()
        redis.kill()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


# --- REST API: schemathesis against /api/schema/ ---------------------------------------------


def test_it_survives_schema_driven_fuzzing_without_5xx_or_schema_violations(world, simulator,
                                                                           tmp_path):
    simulator.configure(token_delay_ms=0, answer_tokens=8)
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{world.server.url}/api/schema/",
        "--header", f"Authorization: {bearer(world.carol)['Authorization']}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_headers_conformance,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "25", "--seed", "20260101", "--workers", "1",
        "--request-timeout", "10", "--max-response-time", "10",
        "--suppress-health-check", "all", "--no-shrink", "--warnings", "off",
    ]
    started = time.monotonic()
    # Run from a scratch directory: schemathesis keeps its state in the working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=150, cwd=tmp_path)
    output = result.stdout[-12000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    assert time.monotonic() - started < 120, "the fuzzing run must stay within its budget"
    # The run did exercise every operation of the schema.
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output
    assert int(tested.group(1)) == int(selected.group(2)) >= 14, output


# --- WebSocket ------------------------------------------------------------------------------


def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 2**63, -(2**70), rng.randint(-10**9, 10**9)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e-308, rng.random()])
    if kind == 4:
        alphabet = "aáçã😀\u202e\u0000<>'\"{}[]\\/ \t\nCPF 123.456.789-09"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
    if kind == 5:
        return rng.choice(["message", "stop", "ping", "MESSAGE", "", "__proto__"])
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {rng.choice(["type", "content", "client_id", "x", ""]): _random_json(rng, depth + 1)
            for _ in range(rng.randrange(0, 5))}


def _random_frame(rng: random.Random) -> str:
    choice = rng.randrange(6)
    if choice == 0:
        return json.dumps({"type": "message", "content": _random_json(rng),
                           "client_id": rng.choice([None, "x", str(uuid.uuid4()), 7])})
    if choice == 1:
        return json.dumps({"type": rng.choice(["stop", "ping", "bogus", None, 3])})
    if choice == 2:
        return json.dumps(_random_json(rng))
    if choice == 3:  # broken JSON
        text = json.dumps(_random_json(rng))
        return text[: rng.randrange(0, max(1, len(text)))] + rng.choice(["{", "]", "\"", ""])
    if choice == 4:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(1, 200)))
    return json.dumps({"type": "message", "content": "a" * rng.randrange(7990, 8100)})


async def _drain_frames(ws, *, quiet_for: float) -> list[dict]:
    """Every frame the server sends until it has been quiet for `quiet_for` seconds."""
    frames = []
    while True:
        try:
            raw = await asyncio.wait_for(ws.recv(), quiet_for)
        except TimeoutError:
            return frames
        frames.append(json.loads(raw))


async def _ask(ws, content: str, timeout: float = 20) -> list[dict]:
    await ws.send(json.dumps({"type": "message", "content": content,
                              "client_id": str(uuid.uuid4())}))
    frames = []
    while not frames or frames[-1]["type"] not in ("done", "error"):
        frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return frames


def _check_frames(frames: list[dict]) -> None:
    for index, frame in enumerate(frames):
        context = frames[max(0, index - 5):index + 2]
        assert isinstance(frame, dict) and frame.get("type") in FRAME_TYPES, context
        if frame["type"] == "error":
            assert frame.get("code") in ERROR_CODES, frame
            assert isinstance(frame.get("detail"), str) and "Traceback" not in frame["detail"]


def test_it_stays_responsive_under_random_huge_binary_and_flooding_frames(world, simulator):
    simulator.configure(token_delay_ms=5, answer_tokens=20)
    server = world.server
    origin = {"Origin": server.url}
    rng = random.Random(20260101)

    async def scenario() -> None:
        alice_headers = {**bearer(world.alice), **origin}
        bob_headers = {**bearer(world.bob), **origin}
        url_a = server.ws_url(f"/ws/ai-chat/{world.alice_session}/")
        url_b = server.ws_url(f"/ws/ai-chat/{world.bob_session}/")
        async with connect(url_b, additional_headers=bob_headers) as bob_ws:
            async with connect(url_a, additional_headers=alice_headers,
                               max_size=None) as ws:
                # 1. Random frames, one at a time: every answer is a known frame.
                for _ in range(150):
                    await ws.send(_random_frame(rng))
                _check_frames(await _drain_frames(ws, quiet_for=1.5))
                # 2. Binary frames.
                for size in (0, 1, 4096):
                    await ws.send(rng.randbytes(size) if size else b"")
                binary = await _drain_frames(ws, quiet_for=1.0)
                assert [f["code"] for f in binary] == ["invalid"] * 3
                # 3. A flood, without waiting for answers; the bystander asks meanwhile.
                flood = [_random_frame(rng) for _ in range(600)]
                bob_task = asyncio.create_task(_ask(bob_ws, "Protocolo pós-peeling?"))
                for frame in flood:
                    await ws.send(frame)
                bob_frames = await bob_task
                assert bob_frames[-1]["type"] == "done", bob_frames[-1]
                _check_frames(await _drain_frames(ws, quiet_for=2.0))
                # The fuzzed socket itself still answers.
                await ws.send(json.dumps({"type": "ping"}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
                # 4. A frame over the transport limit closes only this socket (1009).
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.send("x" * (2 * 1024 * 1024))
                    await asyncio.wait_for(ws.recv(), 10)
                # The server fails the connection (1009); a client still writing may
                # see the TCP close before the close frame.
                assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
            # Bob's socket was never disturbed, and Alice can come back.
            assert (await _ask(bob_ws, "E a hidratação?"))[-1]["type"] == "done"
        async with connect(url_a, additional_headers=alice_headers) as ws:
            assert (await _ask(ws, "Voltei."))[-1]["type"] == "done"

    asyncio.run(scenario())
    assert httpx.get(f"{server.url}/api/health/live", timeout=5).status_code == 200
    assert server.process.poll() is None


def test_it_refuses_frames_over_the_frame_limit_with_message_too_long(world):
    server = world.server

    async def scenario() -> dict:
        async with connect(server.ws_url(f"/ws/ai-chat/{world.alice_session}/"),
                           additional_headers={**bearer(world.alice), "Origin": server.url},
                           max_size=None) as ws:
            await ws.send(json.dumps({"type": "message", "content": "a" * 70_000}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    frame = asyncio.run(scenario())
    assert frame["type"] == "error" and frame["code"] == "message_too_long"


def test_it_rejects_request_bodies_over_the_upload_limit(world):
    response = httpx.post(
        f"{world.server.url}/api/v1/ai-chat/sessions/{world.alice_session}/messages/",
        content=json.dumps({"content": "a" * (400 * 1024)}),
        headers={**bearer(world.alice), "Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 413, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:500]
    body = response.json()
    assert body["code"] in ("invalid", "payload_too_large", "message_too_long"), body
