"""Redis and PostgreSQL outages against the live app (daphne, real services).

Redis is a server of the test's own, killed and restarted on the same port;
PostgreSQL is reached through a TCP proxy the test cuts and restores. During
the outage every door answers cleanly and quickly (503 `service_unavailable`
with Retry-After, `error` frames, health reports it); afterwards the app
recovers by itself and what was accepted before is intact.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.security.conftest import (
    CuttableProxy,
    bearer,
    make_clinician,
    server_env,
)
from tests.support import subprocess_database_url as database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]

# The longest any answer may take while a dependency is down: the connect timeouts
# (database 3 s, cache 2 s) plus the Redis client's retries, with a margin.
OUTAGE_ANSWER_BOUND_S = 10.0


async def _recv(ws, timeout: float = 15) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def _ask(ws, content: str) -> list[dict]:
    await ws.send(json.dumps({"type": "message", "content": content,
                              "client_id": str(uuid.uuid4())}))
    frames = []
    while not frames or frames[-1]["type"] not in ("done", "error"):
        frames.append(await _recv(ws))
    return frames


async def _refused_socket(url: str, headers: dict) -> tuple[dict, int | None]:
    """Open a socket the server must end at once: (its error frame, its close code)."""
    async with connect(url, additional_headers=headers) as ws:
        frame = await _recv(ws, OUTAGE_ANSWER_BOUND_S)
        with pytest.raises(ConnectionClosed) as closed:
            await _recv(ws, OUTAGE_ANSWER_BOUND_S)
    return frame, closed.value.rcvd.code if closed.value.rcvd else None


async def _timed(call):
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


def _assert_service_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text[:500]
    assert response.json()["code"] == "service_unavailable", response.text[:500]
    assert int(response.headers["Retry-After"]) > 0
    assert "Traceback" not in response.text
    assert elapsed < OUTAGE_ANSWER_BOUND_S


async def _poll(check, *, timeout: float, message: str):
    """Await `check()` until truthy within `timeout` (the app must recover by itself)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except (httpx.HTTPError, OSError, ConnectionClosed, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: not within {timeout}s")
        await asyncio.sleep(0.25)  # polling a recovering service, not test synchronisation


async def _before_outage(http: httpx.AsyncClient, ws_url, headers) -> tuple[str, list[dict]]:
    created = await http.post("/api/v1/ai-chat/sessions/", json={"title": "Antes"})
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    async with connect(ws_url(session_id), additional_headers=headers) as ws:
        frames = await _ask(ws, "Cuidados após laser, paciente CPF 529.982.247-25?")
    assert frames[-1]["type"] == "done", frames[-1]
    stored = (await http.get(f"/api/v1/ai-chat/sessions/{session_id}/messages/")).json()
    assert [m["status"] for m in stored] == ["complete", "complete"]
    return session_id, stored


def test_it_survives_a_redis_outage_and_recovers_by_itself(
        own_redis, start_server, simulator, clinic):
    simulator.configure(token_delay_ms=0, answer_tokens=12)
    user = make_clinician(clinic=clinic, username="outage-redis")
    server = start_server(server_env(database=database_url(), redis=own_redis.url,
                                     simulator_url=simulator.url))
    headers = {**bearer(user), "Origin": server.url}
    monitoring = {"Authorization": f"Bearer {server.monitoring_token}"}

    def ws_url(session_id: str) -> str:
        return server.ws_url(f"/ws/ai-chat/{session_id}/")

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=bearer(user),
                                     timeout=30) as http:
            session_id, stored = await _before_outage(http, ws_url, headers)
            async with connect(ws_url(session_id), additional_headers=headers) as open_ws:
                await open_ws.send(json.dumps({"type": "ping"}))
                assert await _recv(open_ws) == {"type": "pong"}

                await asyncio.to_thread(own_redis.kill)

                # Writes need Redis (rate limits): a clean 503, quickly.
                response, elapsed = await _timed(
                    http.post("/api/v1/ai-chat/sessions/", json={"title": "Durante"}))
                _assert_service_unavailable(response, elapsed)
                # Reads need only the database: still served.
                during = await http.get(f"/api/v1/ai-chat/sessions/{session_id}/messages/")
                assert during.status_code == 200 and during.json() == stored
                # Health says so, within its bound.
                health, elapsed = await _timed(http.get("/api/health", headers=monitoring))
                assert health.status_code == 503 and elapsed < OUTAGE_ANSWER_BOUND_S
                body = health.json()
                assert body["status"] == "unhealthy"
                assert body["services"]["cache"]["status"] == "unhealthy"
                ready = await http.get("/api/health/ready")
                assert ready.status_code == 503 and ready.json()["checks"]["cache"] == "failed"
                # The open socket is told, with an error frame, never a bare drop.
                with pytest.raises(ConnectionClosed):
                    await open_ws.send(json.dumps({"type": "message", "content": "E agora?"}))
                    while True:
                        frame = await _recv(open_ws, OUTAGE_ANSWER_BOUND_S)
                        if frame["type"] == "error":
                            assert frame["code"] == "service_unavailable", frame
                            break
                    raise ConnectionClosed(None, None)  # the frame came: done here
            # A new socket is refused the same way.
            frame, code = await _refused_socket(ws_url(session_id), headers)
            assert frame["type"] == "error" and frame["code"] == "service_unavailable"
            assert code == 4503

            await asyncio.to_thread(own_redis.start)  # same port: the app must find it

            async def writes_work() -> bool:
                reply = await http.post("/api/v1/ai-chat/sessions/", json={"title": "Depois"})
                return reply.status_code == 201

            await _poll(writes_work, timeout=30, message="REST writes after Redis returned")

            async def ready_again() -> bool:
                return (await http.get("/api/health/ready")).status_code == 200

            await _poll(ready_again, timeout=30, message="readiness after Redis returned")
            attempts = []

            async def chat_works() -> bool:
                async with connect(ws_url(session_id), additional_headers=headers) as ws:
                    frames = await _ask(ws, "Voltamos?")
                    attempts.append(frames[-1])
                    return frames[-1]["type"] == "done"

            # A pooled connection from before the restart may fail one socket (cleanly,
            # 4503) before the pool has replaced it; the next one works.
            await _poll(chat_works, timeout=30, message="chat after Redis returned")
            assert len(attempts) <= 3, attempts
            after = (await http.get(f"/api/v1/ai-chat/sessions/{session_id}/messages/")).json()
            assert after[:2] == stored  # accepted before the outage: intact

    asyncio.run(scenario())


def test_it_survives_a_database_outage_and_recovers_by_itself(
        own_redis, start_server, simulator, clinic):
    from django.db import connection

    simulator.configure(token_delay_ms=0, answer_tokens=12)
    user = make_clinician(clinic=clinic, username="outage-db")
    upstream = connection.settings_dict
    proxy = CuttableProxy(upstream.get("HOST") or "127.0.0.1",
                          int(upstream.get("PORT") or 5432)).start()
    try:
        server = start_server(server_env(database=database_url(port=proxy.port),
                                         redis=own_redis.url, simulator_url=simulator.url))
        _database_outage_scenario(server, proxy, user)
    finally:
        proxy.close()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def _database_outage_scenario(server, proxy: CuttableProxy, user) -> None:
    headers = {**bearer(user), "Origin": server.url}
    monitoring = {"Authorization": f"Bearer {server.monitoring_token}"}

    def ws_url(session_id: str) -> str:
        return server.ws_url(f"/ws/ai-chat/{session_id}/")

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=server.url, headers=bearer(user),
                                     timeout=30) as http:
            session_id, stored = await _before_outage(http, ws_url, headers)
            failures_before = _metric((await http.get("/api/metrics", headers=monitoring)).text,
                                      "ai_chat_db_connections_failed_total")
            async with connect(ws_url(session_id), additional_headers=headers) as open_ws:
                await open_ws.send(json.dumps({"type": "ping"}))
                assert await _recv(open_ws) == {"type": "pong"}  # fully connected

                await asyncio.to_thread(proxy.cut)

                # The API authenticates against the database: a clean 503, quickly.
                response, elapsed = await _timed(http.get("/api/v1/ai-chat/sessions/"))
                _assert_service_unavailable(response, elapsed)
                response, elapsed = await _timed(http.post(
                    f"/api/v1/ai-chat/sessions/{session_id}/messages/",
                    json={"content": "Durante a queda"}))
                _assert_service_unavailable(response, elapsed)
                # A page (not DRF) whose session must be read: a 503 page, not a traceback.
                page, elapsed = await _timed(http.get(
                    "/chat/", headers={"Cookie": "__Host-sessionid=whatever"}))
                assert page.status_code == 503 and elapsed < OUTAGE_ANSWER_BOUND_S
                assert page.headers["Content-Type"].startswith("text/html")
                assert "Traceback" not in page.text and page.headers["Retry-After"]
                # Health reports it within its bound.
                health, elapsed = await _timed(http.get("/api/health", headers=monitoring))
                assert health.status_code == 503 and elapsed < OUTAGE_ANSWER_BOUND_S
                assert health.json()["services"]["database"]["status"] == "unhealthy"
                ready = await http.get("/api/health/ready")
                assert ready.status_code == 503
                assert ready.json()["checks"]["database"] == "failed"
                # The open socket: the message cannot be stored, and says so.
                await open_ws.send(json.dumps({"type": "message", "content": "Durante?"}))
                frame = await _recv(open_ws, OUTAGE_ANSWER_BOUND_S)
                assert frame["type"] == "error" and frame["code"] == "service_unavailable"
                assert "not stored" in frame["detail"]
            # A new socket cannot be authenticated: refused with a reason.
            frame, code = await _refused_socket(ws_url(session_id), headers)
            assert frame["code"] == "service_unavailable" and code == 4503

            await asyncio.to_thread(proxy.restore)

            async def reads_work() -> bool:
                return (await http.get("/api/v1/ai-chat/sessions/")).status_code == 200

            await _poll(reads_work, timeout=30, message="REST after the database returned")
            assert (await http.get("/api/health/ready")).status_code == 200
            async with connect(ws_url(session_id), additional_headers=headers) as ws:
                frames = await _ask(ws, "Voltamos?")
                assert frames[-1]["type"] == "done", frames[-1]
            after = (await http.get(f"/api/v1/ai-chat/sessions/{session_id}/messages/")).json()
            assert after[:2] == stored  # accepted before the outage: intact
            assert "Durante" not in json.dumps(after)  # refused during it: not half-stored
            failures_after = _metric((await http.get("/api/metrics", headers=monitoring)).text,
                                     "ai_chat_db_connections_failed_total")
            assert failures_after > failures_before

    asyncio.run(scenario())
