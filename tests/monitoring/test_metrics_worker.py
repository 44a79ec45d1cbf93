"""A real Celery worker (prefork, multiprocess metrics): its metrics exporter, its JSON logs, and
the trace id carried from the publisher into the task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from django.conf import settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from chat.models import ChatSession
from chat.pipeline import sessions
from chat.tasks import expire_idle_sessions
from neonpro import tracing
from tests.support import free_port, subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"

pytestmark = pytest.mark.django_db(transaction=True)




def _metric(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return sample.value
    return None


def _poll(what, deadline_s: float, interval_s: float = 0.1):
    """The first truthy result of `what()` before the deadline, else the last one."""
    deadline = time.monotonic() + deadline_s
    result = what()
    while not result and time.monotonic() < deadline:
        time.sleep(interval_s)
        result = what()
    return result


@pytest.fixture
def worker(tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("a Celery worker needs the Redis broker (REDIS_URL)")
    queue = f"monitoring-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": subprocess_database_url(),
           "CELERY_METRICS_PORT": str(port),
           "CELERY_METRICS_ADDRESS": "127.0.0.1", "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
           "LOG_LEVEL": "info", "DEBUG": "true"}
    env.pop("TEST_DATABASE_NAME", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "neonpro", "worker", "--pool=prefork",
             "--concurrency=1", "-Q", queue, "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"queue": queue, "metrics_url": f"http://127.0.0.1:{port}/metrics",
               "log": log_path, "process": process}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _scrape(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


def _json_lines(path: Path) -> list[dict]:
    lines = []
    for raw in path.read_bytes().splitlines():
        try:
            lines.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            continue
    return lines


def _idle_session(user) -> ChatSession:
    session = sessions.session_create(user=user, title="")
    ChatSession.objects.filter(id=session.id).update(
        expires_at=timezone.now() - timedelta(minutes=1))
    return session


def test_it_exports_worker_metrics_and_carries_the_trace_into_the_task(worker, make_user):
    text = _poll(lambda: _scrape(worker["metrics_url"]), deadline_s=60)
    assert text, (worker["process"].poll(), worker["log"].read_text()[-3000:])
    assert _metric(text, "ai_chat_db_up") == 1
    assert _metric(text, "ai_chat_sessions_duration_seconds_count") in (None, 0)

    session = _idle_session(make_user())
    with tracing.context(trace_id=TRACE_ID):
        expire_idle_sessions.apply_async(queue=worker["queue"])

    assert _poll(lambda: ChatSession.objects.get(id=session.id).status == "expired",
                 deadline_s=30), worker["log"].read_text()[-3000:]
    # Observed in the prefork child, exported by the main process from the shared files.
    moved = _poll(lambda: _metric(_scrape(worker["metrics_url"]) or "",
                                  "ai_chat_sessions_duration_seconds_count") == 1, deadline_s=30)
    assert moved

    def task_lines():
        return [line for line in _json_lines(worker["log"])
                if "expire_idle_sessions" in line.get("message", "")
                and "succeeded" in line.get("message", "")]

    lines = _poll(task_lines, deadline_s=30)
    assert lines, worker["log"].read_text()[-3000:]
    assert lines[0]["traceId"] == TRACE_ID
    assert lines[0]["service"] == "ai-chat"
