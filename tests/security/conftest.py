"""Real processes for the security and fault-tolerance tests.

The app runs in daphne subprocesses against the test PostgreSQL database
(through a TCP proxy the test can cut) and a Redis server of its own (which the
test can kill and restart): the machine's shared PostgreSQL and Redis are
never stopped. Test data is committed (transactional tests) so the server sees
it; each server is stopped before the database is flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60


def poll(condition: Callable[[], object], *, timeout: float, interval: float = 0.1,
         message: str = "condition") -> object:
    """Evaluate `condition` until it is truthy or `timeout` passes (bounded wait)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the condition may fail while the service recovers
            last_error = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last error: "
                                 f"{last_error!r})")
        time.sleep(interval)  # polling a real process, not synchronising test code




# --- Redis of our own -----------------------------------------------------------------------


class RedisServer:
    """A throwaway redis-server on a free port, which a test may kill and restart."""

    def __init__(self, work_dir: Path) -> None:
        self.port = free_port()
        self.work_dir = work_dir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.work_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        poll(client.ping, timeout=20, message="redis-server answering")
        client.close()
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


# --- A TCP proxy we can cut ---------------------------------------------------------------


class CuttableProxy:
    """127.0.0.1:<port> → upstream; `cut()` drops every connection and refuses new ones."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="cuttable-proxy")

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def start(self) -> CuttableProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def cut(self) -> None:
        """The database becomes unreachable: open connections die, new ones are refused."""
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._listen())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                  reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._writers |= pair
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= pair
            for each in pair:
                each.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()


# --- The app under daphne -------------------------------------------------------------------


@dataclass
class DaphneServer:
    """One daphne process serving the whole app (HTTP and WebSocket)."""

    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen | None = None
    monitoring_token: str = field(default="")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def start(self) -> DaphneServer:
        # Bind here and hand the socket over: no window for another process to take the port.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "--fd", str(listener.fileno()),
                 "neonpro.asgi:application"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=[listener.fileno()],
            )
        listener.close()

        def live() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"daphne exited:\n{self.log_tail()}")
            return httpx.get(f"{self.url}/api/health/live", timeout=2).status_code == 200

        try:
            poll(live, timeout=START_TIMEOUT_S, message="daphne serving")
        except AssertionError:
            self.stop()
            raise AssertionError(f"daphne did not start:\n{self.log_tail()}") from None
        return self

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator stopping the process would send."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)




def server_env(*, database: str, redis: str, simulator_url: str, **overrides: str) -> dict:
    """Production settings (DEBUG off) on loopback, sharing the test process's keys."""
    from django.conf import settings

    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "OPENAI_", "ANTHROPIC_", "AI_", "RATE_LIMIT",
                                  "TEST_DATABASE", "JWT_", "SECRET_KEY", "ENCRYPTION_KEY",
                                  "MONITORING_", "REDIS_URL", "DATABASE_URL", "AUDIT_ANCHOR"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "neonpro.settings",
        "NEONPRO_ENV_FILE": os.devnull,
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "false",
        "ENVIRONMENT": "test",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        # Tokens minted and messages decrypted by the test process must work there too.
        "JWT_SECRET": settings.SIMPLE_JWT["SIGNING_KEY"],
        "ENCRYPTION_KEY": ",".join(settings.ENCRYPTION_KEYS),
        "MONITORING_TOKEN": "monitoring-token-" + uuid.uuid4().hex,
        "AUDIT_ANCHOR_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": database,
        "DATABASE_CONNECT_TIMEOUT": "3",
        "REDIS_URL": redis,
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "OPENAI_API_KEY": "test-openai-key",
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "OPENAI_BASE_URL": f"{simulator_url}/v1",
        "ANTHROPIC_BASE_URL": simulator_url,
        "AI_PROVIDER_TIMEOUT": "5000",
        "RATE_LIMIT_MAX": "100000",
        "HEALTH_CHECK_TIMEOUT": "2",
        "LOG_LEVEL": "warning",
    })
    env.update(overrides)
    return env


@pytest.fixture
def start_server(tmp_path) -> Iterator[Callable[..., DaphneServer]]:
    """Factory: start daphne with an environment; every server is stopped at the end."""
    started: list[DaphneServer] = []

    def start(env: dict[str, str]) -> DaphneServer:
        server = DaphneServer(env=env, log_path=tmp_path / f"daphne-{len(started)}.log",
                              monitoring_token=env.get("MONITORING_TOKEN", ""))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def postgres_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("these tests run the app against PostgreSQL")


# --- People -----------------------------------------------------------------------------


def make_clinician(*, clinic, username: str, consent: bool = True,
                   password: str = "correct-horse-battery-staple"):
    """A clinician of `clinic`, with consent for the AI chat unless told otherwise."""
    from django.contrib.auth import get_user_model

    from clinics.models import ClinicMembership
    from compliance.services import consent_grant

    user = get_user_model().objects.create_user(username=username, password=password)
    ClinicMembership.objects.create(user=user, clinic=clinic)
    if consent:
        consent_grant(user=user, purpose="ai_chat", ip_address="127.0.0.1",
                      user_agent="pytest")
    return user


def bearer(user) -> dict[str, str]:
    from rest_framework_simplejwt.tokens import AccessToken

    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}
