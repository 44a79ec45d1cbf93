"""The embedded default a newcomer gets from the run command: fresh SQLite, in-memory
channel layer, no keys, the simulated provider — a chat completes end to end over a
real WebSocket against a real daphne server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "demo-password-for-the-quickstart-test"



def _wait_until_serving(base_url: str, process: subprocess.Popen, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"daphne exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/login/", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("daphne did not start serving in time")


@pytest.fixture
def embedded_server(tmp_path, simulator):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME", "OPENAI_API_KEY",
                        "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")}
    env.update(DEBUG="true", NEONPRO_VAR_DIR=str(tmp_path), SIMULATED_PROVIDER_URL=simulator.url,
               DEMO_PASSWORD=PASSWORD, SECURE_SSL_REDIRECT="false", LOG_LEVEL="warning")
    for command in (["migrate", "--noinput"], ["seed_demo"]):
        result = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "neonpro.sqlite3").exists()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
         "neonpro.asgi:application"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base_url, process, deadline_s=60)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_it_completes_a_chat_on_a_fresh_sqlite_database(embedded_server, simulator):
    base = embedded_server
    with httpx.Client(base_url=base, timeout=30) as http:
        tokens = http.post("/api/v1/auth/token/",
                           json={"username": "clinician", "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
        auth = {"Authorization": f"Bearer {tokens.json()['access']}"}
        refused = http.post("/api/v1/ai-chat/sessions/", json={}, headers=auth)
        assert refused.status_code == 403 and refused.json()["code"] == "consent_required"
        consent = http.post("/api/v1/compliance/consents/",
                            json={"purpose": "ai_chat", "accepted": True}, headers=auth)
        assert consent.status_code == 201, consent.text
        session = http.post("/api/v1/ai-chat/sessions/", json={"title": "Primeiro uso"},
                            headers=auth)
        assert session.status_code == 201, session.text
        ws_url = session.json()["websocket_url"]

    async def chat(*contents: str) -> list[list[dict]]:
        exchanges = []
        async with connect(ws_url, additional_headers={**auth, "Origin": base}) as ws:
            for content in contents:
                await ws.send(json.dumps({"type": "message", "content": content}))
                frames = []
                while not frames or frames[-1]["type"] not in ("done", "error"):
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
                exchanges.append(frames)
        return exchanges

    first, second = asyncio.run(chat("Olá, assistente!", "E a segunda pergunta?"))
    for frames in (first, second):
        assert frames[0]["type"] == "ack"
        assert frames[-1]["type"] == "done", frames[-1]
    answer = "".join(f["delta"] for f in first if f["type"] == "token")
    assert "Olá, assistente!" in answer
    # The second request carried the first exchange as history, read back from SQLite.
    requests = simulator.requests(path="/v1/chat/completions")
    turns = [(turn["role"], turn["content"]) for turn in requests[-1]["body"]["messages"]]
    assert turns[-3:] == [("user", "Olá, assistente!"), ("assistant", answer),
                          ("user", "E a segunda pergunta?")]


# --- make run itself: the monitoring endpoints are closed by default ---------------------------


@pytest.fixture
def make_run(tmp_path):
    """scripts/run-local.sh (what `make run` starts) with its own ports and data directory."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_NAME", "OPENAI_API_KEY",
                        "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
                        "SIMULATED_PROVIDER_URL", "MONITORING_TOKEN", "MONITORING_TOKEN_FILE",
                        "DEBUG")}
    port, sim_port = free_port(), free_port()
    env.update(NEONPRO_VAR_DIR=str(tmp_path), PORT=str(port),
               SIMULATED_PROVIDER_PORT=str(sim_port), DEMO_PASSWORD=PASSWORD,
               VENV=str(Path(sys.executable).parent.parent), LOG_LEVEL="warning")
    log = tmp_path / "run.log"
    base_url = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen:
        with log.open("a") as out:
            # Its own process group: the script, the simulator and daphne stop together.
            process = subprocess.Popen(["scripts/run-local.sh"], cwd=ROOT, env=env,
                                       stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        _wait_until_serving(base_url, process, deadline_s=120)
        return process

    def stop(process: subprocess.Popen) -> None:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)

    yield base_url, start, stop, log, tmp_path


def test_make_run_generates_a_monitoring_token_and_keeps_the_details_closed(make_run):
    base, start, stop, log, var_dir = make_run
    process = start()
    try:
        printed = re.search(r"monitoring token: (\S+)  \(", log.read_text())
        assert printed, log.read_text()[-3000:]
        token = printed.group(1)
        assert (var_dir / "monitoring-token").read_text().strip() == token
        assert (var_dir / "monitoring-token").stat().st_mode & 0o077 == 0
        with httpx.Client(base_url=base, timeout=30) as http:
            assert set(http.get("/api/health").json()) == {"status", "timestamp", "version"}
            assert set(http.get("/api/v1/ai-chat/health").json()) == {"status", "timestamp",
                                                                      "version"}
            assert http.get("/api/metrics").status_code == 401
            assert http.get("/api/metrics",
                            headers={"Authorization": "Bearer wrong"}).status_code == 401
            auth = {"Authorization": f"Bearer {token}"}
            assert "services" in http.get("/api/health", headers=auth).json()
            assert "ai_chat_" in http.get("/api/metrics", headers=auth).text
    finally:
        stop(process)
    # A second run reuses the token and does not print it again.
    process = start()
    try:
        assert log.read_text().count(token) == 1
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/api/metrics",
                            headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        stop(process)
