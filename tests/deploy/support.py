"""Helpers for the deployment tests: scratch PostgreSQL databases, PgBouncer, daphne.

Everything runs on loopback against the PostgreSQL server of DATABASE_URL.
Each test database gets a unique name (prefixed with TEST_DATABASE_NAME when
set, so parallel runs never collide) and is dropped afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"

# Secrets of the processes under test: long enough for production settings (DEBUG off).
SECRET_KEY = "deploy-tests-secret-key-" + "k" * 40
JWT_SECRET = "deploy-tests-jwt-secret-" + "j" * 40
ENCRYPTION_KEY = "deploy-tests-encryption-key-A-" + "e" * 30
OTHER_ENCRYPTION_KEY = "deploy-tests-encryption-key-B-" + "x" * 30
MONITORING_TOKEN = "deploy-tests-monitoring-token"
AUDIT_ANCHOR_KEY = "deploy-tests-audit-anchor-key-" + "a" * 30
SMOKE_USERNAME = "smoke-test"
SMOKE_PASSWORD = "smoke-test-password-for-deploy-tests"

# Subprocesses must not inherit what belongs to this test process or a developer's .env.
_PRIVATE_ENV = (
    "TEST_DATABASE_NAME", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL", "OPENAI_API_KEY_FILE", "ANTHROPIC_API_KEY_FILE", "MONITORING_TOKEN",
    "MONITORING_TOKEN_FILE", "SMOKE_TEST_USERNAME", "SMOKE_TEST_PASSWORD",
    "SMOKE_TEST_PASSWORD_FILE", "ENCRYPTION_KEY", "ENCRYPTION_KEY_FILE", "SECRET_KEY",
    "SECRET_KEY_FILE", "JWT_SECRET", "JWT_SECRET_FILE", "PYTEST_ADDOPTS",
)


def base_database_url() -> str:
    """The PostgreSQL server the suite runs against (DATABASE_URL)."""
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        pytest.fail("the deployment tests need DATABASE_URL pointing at PostgreSQL")
    return url


def database_url(name: str, *, host: str | None = None, port: int | None = None) -> str:
    """DATABASE_URL with another database name (and optionally another host/port)."""
    parts = urlsplit(base_database_url())
    netloc = parts.netloc
    if host is not None or port is not None:
        userinfo = netloc.rpartition("@")[0]
        address = f"{host or parts.hostname}:{port or parts.port or 5432}"
        netloc = f"{userinfo}@{address}" if userinfo else address
    return urlunsplit(("postgres", netloc, f"/{name}", parts.query, ""))


def server_address() -> tuple[str, int]:
    parts = urlsplit(base_database_url())
    return parts.hostname or "127.0.0.1", parts.port or 5432


def unique_database_name(label: str) -> str:
    prefix = os.environ.get("TEST_DATABASE_NAME") or "test_neonpro"
    return f"{prefix}_{label}_{uuid.uuid4().hex[:8]}"[:63]


def admin_connection() -> psycopg.Connection:
    """Autocommit connection to the server's maintenance database."""
    return psycopg.connect(database_url("postgres"), autocommit=True)


def create_database(name: str, *, template: str | None = None) -> None:
    with admin_connection() as conn:
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            # Cloning needs the template to be idle: PgBouncer may still pool
            # server connections to it.
            terminate_connections(template)
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))


def terminate_connections(name: str) -> None:
    with admin_connection() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", [name])


def drop_database(name: str) -> None:
    with admin_connection() as conn:
        # FORCE: PgBouncer keeps pooled server connections open to it.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def query(name: str, statement: str, params: list | None = None) -> list[tuple]:
    """Rows of one statement on database `name`, straight to PostgreSQL."""
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        return conn.execute(statement, params or []).fetchall()




def tool(name: str, package: str) -> str:
    # pgbouncer lives in /usr/sbin, which is not on an unprivileged user's PATH.
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} is not installed. It is part of the test toolchain: install "
                    f"Debian's '{package}' package.")
    return path


def subprocess_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    # A developer's .env must not leak into the processes under test.
    env["NEONPRO_ENV_FILE"] = str(ROOT / "does-not-exist.env")
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 240,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python manage.py ARGS` as an operator would run it."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )
    if check:
        assert result.returncode == 0, f"manage.py {' '.join(args)}:\n" + result.stdout \
            + result.stderr
    return result


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)  # polling a condition with a deadline, not synchronising


# --- PgBouncer ----------------------------------------------------------------------------


@dataclass
class PgBouncer:
    """A PgBouncer in transaction pooling mode in front of the test PostgreSQL server."""

    port: int
    process: subprocess.Popen
    workdir: Path

    def url(self, name: str) -> str:
        return database_url(name, host="127.0.0.1", port=self.port)

    def admin(self, command: str) -> list[dict[str, str]]:
        """Rows of a SHOW command on PgBouncer's admin console (simple query protocol,
        hence psql), as dicts by column name."""
        result = subprocess.run(  # noqa: S603
            [tool("psql", "postgresql-client"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", "pgbouncer", "--no-psqlrc", "-A", "-F", "\t",
             "-P", "footer=off", "-c", command],
            capture_output=True, text=True, timeout=30, check=True,
        )
        header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
        return [dict(zip(header, row, strict=True)) for row in rows]

    def log(self) -> str:
        path = self.workdir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


# The deployment plan's pool sizes.
POOL_SETTINGS = {"pool_mode": "transaction", "default_pool_size": "20",
                 "max_client_conn": "1000", "reserve_pool_size": "5"}


def start_pgbouncer() -> PgBouncer:
    binary = tool("pgbouncer", "pgbouncer")
    host, port = server_address()
    user = urlsplit(base_database_url()).username or "postgres"
    # PgBouncer refuses to run as root: drop to an unprivileged user, who must be
    # able to read its configuration (pytest's tmp_path is private to root).
    workdir = Path(tempfile.mkdtemp(prefix="neonpro-pgbouncer-"))
    workdir.chmod(0o755)
    listen = free_port()
    settings = "\n".join(f"{k} = {v}" for k, v in POOL_SETTINGS.items())
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        # Every database name goes to the same server, under the same name.
        f"* = host={host} port={port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'userlist.txt'}\n"
        f"admin_users = {user}\n{settings}\n"
        # Quiet: the chat suite opens thousands of short connections.
        "log_connections = 0\nlog_disconnections = 0\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
    )
    (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.log").touch()
    command = [binary]
    if os.geteuid() == 0:
        runas = "postgres" if _user_exists("postgres") else "nobody"
        shutil.chown(workdir / "pgbouncer.log", user=runas)
        command += ["-u", runas]
    for path in workdir.iterdir():
        path.chmod(0o644 if path.name != "pgbouncer.log" else 0o664)
    # Its log goes to the logfile; a pipe nobody reads could fill up and stall it.
    process = subprocess.Popen(  # noqa: S603
        [*command, str(workdir / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    bouncer = PgBouncer(port=listen, process=process, workdir=workdir)

    def accepting() -> bool:
        if process.poll() is not None:
            raise AssertionError("pgbouncer exited:\n" + bouncer.log())
        try:
            with psycopg.connect(bouncer.url("postgres"), connect_timeout=2) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    wait_until(accepting, timeout=30, what="pgbouncer to accept connections")
    return bouncer


def stop_pgbouncer(bouncer: PgBouncer) -> None:
    bouncer.process.terminate()
    try:
        bouncer.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        bouncer.process.kill()
        bouncer.process.wait(timeout=10)
    shutil.rmtree(bouncer.workdir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# --- daphne -------------------------------------------------------------------------------


@dataclass
class Daphne:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# The web process as production starts it (Dockerfile, docker-compose.yml).
WEB_COMMAND = (sys.executable, "-m", "neonpro.server")


def start_daphne(env: dict[str, str], log_path: Path, *,
                 command: tuple[str, ...] = WEB_COMMAND) -> Daphne:
    """The ASGI app served by the web process on a free loopback port, once
    /api/health/live answers; stdout and stderr go to `log_path`."""
    port = free_port()
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603
        [*command, "-b", "127.0.0.1", "-p", str(port), "neonpro.asgi:application"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    server = Daphne(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)

    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"daphne exited with {process.returncode}:\n{server.log()}")
        try:
            return httpx.get(f"{server.url}/api/health/live", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(serving, timeout=90, what="daphne to serve")
    return server


def stop_daphne(server: Daphne) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


def production_env(*, database_url: str, simulator_url: str, **overrides: str) -> dict[str, str]:
    """Environment of a production-like process (DEBUG off) against the simulated provider."""
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        pytest.fail("the deployment tests need REDIS_URL (the app shares its cache with "
                    "the tests, which clear it between tests)")
    settings = dict(
        DEBUG="false", ENVIRONMENT="production", SECRET_KEY=SECRET_KEY, JWT_SECRET=JWT_SECRET,
        ENCRYPTION_KEY=ENCRYPTION_KEY, ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false", MONITORING_TOKEN=MONITORING_TOKEN,
        AUDIT_ANCHOR_KEY=AUDIT_ANCHOR_KEY,
        DATABASE_URL=database_url, REDIS_URL=redis_url, CELERY_TASK_ALWAYS_EAGER="true",
        OPENAI_API_KEY="test-openai-key", ANTHROPIC_API_KEY="test-anthropic-key",
        OPENAI_BASE_URL=f"{simulator_url}/v1", ANTHROPIC_BASE_URL=simulator_url,
        AI_PROVIDER_TIMEOUT="20000", RATE_LIMIT_MAX="100000", LOG_LEVEL="warning",
    )
    return subprocess_env(**{**settings, **overrides})
