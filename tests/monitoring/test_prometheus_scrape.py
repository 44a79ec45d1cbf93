"""A real Prometheus scrapes a live daphne server of the app (multiprocess metrics mode) with the
project's alert and recording rules loaded; the server's own log lines are checked too."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from tests.chat.helpers import bearer
from tests.support import free_port, subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "ai-chat-rules.yml"
TOKEN = "prometheus-scrape-token-0123456789abcdef"
TRACE_ID = "5c0f6a7e2d9b4e1f8a3b7c6d5e4f3a2b"
CPF = "529.982.247-25"
EMAIL = "joana.souza@example.com"
DAPHNE_ACCESS_LOG = re.compile(r'^\S+ - - \[[^\]]+\] "[A-Z]+ \S+" \d{3} \d+$')

pytestmark = pytest.mark.django_db(transaction=True)




def _poll(what, deadline_s: float, interval_s: float = 0.2):
    deadline = time.monotonic() + deadline_s
    result = what()
    while not result and time.monotonic() < deadline:
        time.sleep(interval_s)
        result = what()
    return result


def _get(url: str, **kwargs) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3, **kwargs)
    except httpx.TransportError:
        return None


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def app_server(tmp_path, simulator):
    port = free_port()
    multiproc = tmp_path / "prometheus-multiproc"
    multiproc.mkdir()
    log_path = tmp_path / "daphne.log"
    env = {**os.environ, "DATABASE_URL": subprocess_database_url(), "DEBUG": "true",
           "MONITORING_TOKEN": TOKEN, "MONITORING_ENABLED": "true",
           "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "SECURE_SSL_REDIRECT": "false",
           "LOG_LEVEL": "info", "OPENAI_API_KEY": "test-openai-key",
           "ANTHROPIC_API_KEY": "test-anthropic-key", "OPENAI_BASE_URL": f"{simulator.url}/v1",
           "ANTHROPIC_BASE_URL": simulator.url, "RATE_LIMIT_MAX": "1000"}
    env.pop("TEST_DATABASE_NAME", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "neonpro.asgi:application"], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        def live() -> bool:
            response = _get(f"{base_url}/api/health/live")
            return process.poll() is None and response is not None and response.status_code == 200

        assert _poll(live, deadline_s=60), log_path.read_text()[-3000:]
        yield {"url": base_url, "port": port, "log": log_path}
    finally:
        _stop(process)


@pytest.fixture
def prometheus(tmp_path, app_server):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the prometheus binary is missing (Debian package `prometheus`)")
    assert RULES.exists(), "monitoring/prometheus/ai-chat-rules.yml is missing"
    token_file = tmp_path / "monitoring_token"
    token_file.write_text(TOKEN)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{
            "job_name": "ai-chat",
            "metrics_path": "/api/metrics",
            "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
            "static_configs": [{"targets": [f"127.0.0.1:{app_server['port']}"]}],
        }],
    }
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            response = _get(f"{base_url}/-/ready")
            return process.poll() is None and response is not None and response.status_code == 200

        assert _poll(ready, deadline_s=60), log_path.read_text()[-3000:]
        yield base_url
    finally:
        _stop(process)


def _query(prometheus_url: str, expr: str) -> list[dict]:
    response = _get(f"{prometheus_url}/api/v1/query", params={"query": expr})
    if response is None or response.status_code != 200:
        return []
    return response.json()["data"]["result"]


def _value(prometheus_url: str, expr: str) -> float | None:
    result = _query(prometheus_url, expr)
    return float(result[0]["value"][1]) if result else None


def _chat(app_url: str, user) -> None:
    auth = {"Authorization": bearer(user), "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"}
    with httpx.Client(base_url=app_url, timeout=30, headers=auth) as http:
        session = http.post("/api/v1/ai-chat/sessions/", json={})
        assert session.status_code == 201, session.text
        answer = http.post(f"/api/v1/ai-chat/sessions/{session.json()['id']}/messages/",
                           json={"content": f"Paciente CPF {CPF}, e-mail {EMAIL}: retorno?"})
        assert answer.status_code == 201, answer.text


def test_a_real_prometheus_scrapes_the_app_with_the_rules_loaded(app_server, prometheus,
                                                                  make_user):
    _chat(app_server["url"], make_user())

    assert _poll(lambda: _value(prometheus, 'up{job="ai-chat"}') == 1, deadline_s=30), (
        _query(prometheus, 'up{job="ai-chat"}'))
    assert _poll(lambda: _value(prometheus, 'ai_chat_messages_total{role="user"}') == 1,
                 deadline_s=30)
    assert _value(prometheus, 'ai_chat_messages_total{role="assistant"}') == 1
    assert _value(prometheus, "ai_chat_db_up") == 1
    assert _value(prometheus, 'ai_chat_sessions_total{status="active"}') == 1
    assert _value(prometheus, 'ai_chat_circuit_state{provider="openai"}') == 0
    assert _value(prometheus, "ai_chat_process_memory_usage_percent") > 0

    rules = _get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
    names = {group["name"] for group in rules}
    assert {"ai-chat.recording", "ai-chat.critical", "ai-chat.lgpd"} <= names
    assert all(rule.get("health") != "err" for group in rules for rule in group["rules"])
    # The recording rule over a scrape-time family evaluates against live data.
    assert _poll(lambda: _value(prometheus, "ai_chat:session_utilization:max") is not None,
                 deadline_s=30)

    def service_down_state() -> str | None:
        groups = _get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
        states = [rule["state"] for group in groups for rule in group["rules"]
                  if rule.get("name") == "AIChatServiceDown"]
        return states[0] if states else None

    # Pending only until the first evaluation that sees the target up.
    assert _poll(lambda: service_down_state() == "inactive", deadline_s=30), (
        service_down_state())


def test_the_live_server_logs_json_lines_with_the_trace_and_no_personal_data(app_server,
                                                                              make_user):
    _chat(app_server["url"], make_user())

    def processed():
        lines = [orjson.loads(raw) for raw in app_server["log"].read_bytes().splitlines()
                 if raw.startswith(b"{")]
        return [line for line in lines if line.get("event") == "message_processed"]

    lines = _poll(processed, deadline_s=10)
    assert lines and lines[0]["traceId"] == TRACE_ID
    text = app_server["log"].read_text()
    for raw in text.splitlines():
        # Every line the application logged is one JSON object; daphne's own access
        # log (plain text, written without `logging`) is the only other output.
        if raw.strip() and not DAPHNE_ACCESS_LOG.match(raw):
            orjson.loads(raw)
    for fragment in (CPF, "52998224725", EMAIL):
        assert fragment not in text
