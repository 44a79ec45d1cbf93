"""End-to-end chat benchmark: the whole pipeline against the provider called directly.

Starts the simulated AI provider, prepares a dedicated PostgreSQL database and
Redis db, creates clinicians (clinic membership, consent, one chat session
each, a JWT), starts the app as one or two daphne processes with production
settings, and drives it with real WebSocket clients, one connection per
session. In the same run it drives the same simulator with the plain
`openai.AsyncOpenAI` streaming loop under the same load shape: that is the
baseline, and overhead = app - baseline (time to first token and total answer
time, p50 and p95).

    python benchmarks/chat_bench.py --preset light
    python benchmarks/chat_bench.py --preset capacity
    python benchmarks/chat_bench.py --sessions 50 --mode open --rate 20 --duration 30
    python benchmarks/chat_bench.py --preset light --purge-messages 1000000
    python benchmarks/chat_bench.py --preset light --peer litellm

With `--purge-messages N`, N messages past retention are added to the database
first, and after the app phase a second app phase runs, with the same load
shape, for exactly as long as `manage.py purge_expired_data` takes to delete
them: the purge's rate and the chat's overhead during it against its idle value.

With `--peer litellm`, LiteLLM's proxy (benchmarks/peer_gateway.py: pinned
version, its own virtualenv under var/, no database, a master key, two workers)
is started in front of the same simulator after the baseline and driven by the
same naive SDK loop with the same load shape: its overhead over the baseline and
its CPU per answer (its whole process tree) are reported beside the app's.

Presets: light, capacity, capacity-5000, saturation, smoke (see PRESETS); any flag given
overrides the preset's value. Closed loop: every session sends, waits for
`done`, sends again. Open loop: messages arrive at `--rate` per second in
total (Poisson or uniform) on sessions picked at random (Poisson) or in turn
(uniform); an arrival for a session still waiting for its answer is skipped
and counted. Every loop is bounded (message count or duration, per-message
timeout); subprocesses are stopped on exit and on Ctrl-C. Only loopback
addresses are used.

Results: a table on stdout and JSON (`--output`, default
benchmarks/results/<UTC time>-<preset>.json). Exit status 0 when every
accepted message got its answer stored and no error was seen, 1 otherwise,
2 when the run could not be set up. A peer that cannot be installed or started,
or that fails messages, does not stop the run (the baseline and the app are
still measured and reported, the reason is in the report's `peer.error`), but
when everything else passed the exit status is 3: the comparison asked for is
missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

from benchmarks import peer_gateway  # noqa: E402 - needs ROOT on the path

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/neonpro_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
DEFAULT_CONTENT = (
    "Paciente com melasma na região malar: qual o intervalo recomendado entre sessões de "
    "peeling químico e quais cuidados orientar no pós-procedimento?"
)
# The model name both sides ask the simulator for.
BASELINE_MODEL = "gpt-4o-mini"
_ENROL_THREADS = 4

PRESETS: dict[str, dict[str, Any]] = {
    # A few clinicians chatting: what one person feels.
    "light": {"sessions": 10, "token_delay_ms": 20.0, "mode": "closed", "messages": 200,
              "web_processes": 1},
    # AI_SESSION_CAPACITY connected, each sending about one message a minute.
    "capacity": {"sessions": 2500, "token_delay_ms": 20.0, "mode": "open", "rate": 42.0,
                 "duration": 60.0, "web_processes": 2},
    # Twice that: 5,000 connected, one message per session about every 60 s. Three web
    # processes: two carried 2,500 sessions in 544 MiB, each process is about 200 MiB
    # before its first connection, so a fourth would not fit in the 1 GiB target.
    "capacity-5000": {"sessions": 5000, "token_delay_ms": 20.0, "mode": "open", "rate": 84.0,
                      "duration": 60.0, "web_processes": 3},
    # As many answers as the machine can produce: pipeline vs the naive SDK loop.
    "saturation": {"sessions": 100, "token_delay_ms": 0.0, "mode": "closed", "duration": 30.0,
                   "web_processes": 2},
    # The harness itself works (used by the test suite).
    "smoke": {"sessions": 3, "token_delay_ms": 2.0, "answer_tokens": 20, "mode": "closed",
              "messages": 9, "web_processes": 1, "warmup": 1},
}
DEFAULTS: dict[str, Any] = {
    "sessions": 10, "token_delay_ms": 20.0, "answer_tokens": 50, "mode": "closed",
    "messages": None, "duration": None, "rate": None, "schedule": "poisson",
    "web_processes": 1, "warmup": 3, "message_timeout": 60.0,
}

# Project settings that must not leak from the caller's environment into the run.
_PROJECT_ENV_PREFIXES = (
    "AI_", "ALLOWED_HOSTS", "ANTHROPIC_", "AUDIT_", "AUTH_", "CELERY_", "CONSENT_", "CORS_",
    "DATABASE_", "DATA_RETENTION", "DEBUG", "DEMO_", "DJANGO_SETTINGS_MODULE", "ENCRYPTION_KEY",
    "ENVIRONMENT", "JWT_", "LOG_LEVEL", "MONITORING_", "NEONPRO_", "OPENAI_", "PII_",
    "PROMETHEUS_", "RATE_LIMIT_", "REDIS_URL", "SECRET_KEY", "SECURE_", "SESSION_COOKIE",
    "SIMULATED_PROVIDER", "TEST_DATABASE", "WS_",
)


class SetupError(RuntimeError):
    """The benchmark could not be set up (a service is missing, a process did not start)."""


# --- arguments --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; a preset fills in what is not given explicitly."""
    parser = argparse.ArgumentParser(
        prog="chat_bench.py", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", choices=sorted(PRESETS))
    parser.add_argument("--sessions", type=int, help="WebSocket sessions (one user each)")
    parser.add_argument("--mode", choices=("closed", "open"))
    parser.add_argument("--messages", type=int, help="messages to send in total (per phase)")
    parser.add_argument("--duration", type=float, help="seconds of sending (per phase)")
    parser.add_argument("--rate", type=float, help="open loop: messages per second in total")
    parser.add_argument("--schedule", choices=("poisson", "uniform"),
                        help="open loop arrivals (default poisson)")
    parser.add_argument("--token-delay-ms", type=float, help="simulator delay between tokens")
    parser.add_argument("--answer-tokens", type=int, help="filler words per answer (default 50)")
    parser.add_argument("--web-processes", type=int, choices=(1, 2, 3, 4), help="daphne processes")
    parser.add_argument("--warmup", type=int, help="unmeasured messages before each phase")
    parser.add_argument("--message-timeout", type=float, help="seconds before a message is "
                        "counted as timed out (default 60)")
    parser.add_argument("--content", default=DEFAULT_CONTENT, help="the message text")
    parser.add_argument("--database-url",
                        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
                        help="dedicated PostgreSQL database (created if missing)")
    parser.add_argument("--redis-url",
                        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL),
                        help="dedicated Redis db: FLUSHED at start")
    parser.add_argument("--db-pooler", choices=("pgbouncer", "none"),
                        help="put PgBouncer (transaction pooling, as deployed) between the app "
                        "and PostgreSQL; default: pgbouncer when installed")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="only measure the app (no overhead figures)")
    parser.add_argument("--peer", choices=("litellm",),
                        help="also measure a peer gateway in front of the same simulator, "
                        "driven by the baseline's naive SDK loop (installed on first use "
                        "into its own virtualenv)")
    parser.add_argument("--peer-venv", default=str(peer_gateway.DEFAULT_VENV), metavar="DIR",
                        help="the peer's virtualenv (default var/peer-litellm; created "
                        "on first use, reused after)")
    parser.add_argument("--peer-workers", type=int, default=peer_gateway.LITELLM_WORKERS,
                        choices=(1, 2, 3, 4), help="the peer's worker processes (default 2)")
    parser.add_argument("--profile", metavar="DIR",
                        help="record the daphne processes with py-spy during the app phase")
    parser.add_argument("--profile-gil", action="store_true",
                        help="with --profile: only samples holding the GIL (Python CPU time)")
    parser.add_argument("--purge-messages", type=int, default=0, metavar="N",
                        help="add N messages past retention, then measure the app again "
                        "while the retention purge deletes them")
    parser.add_argument("--app-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the web processes (repeatable), e.g. "
                             "AI_DB_THREADS=4")
    parser.add_argument("--seed", type=int, default=20260101, help="load schedule seed")
    parser.add_argument("--output", help="JSON results file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the subprocess logs")
    args = parser.parse_args(argv)
    preset = PRESETS.get(args.preset or "", {})
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, preset.get(name, default))
    if args.db_pooler is None:
        args.db_pooler = "pgbouncer" if _pgbouncer_binary() else "none"
    if args.mode == "open" and not args.rate:
        parser.error("--mode open needs --rate")
    if args.messages is None and args.duration is None:
        parser.error("give --messages or --duration (or a --preset)")
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    if args.peer and args.skip_baseline:
        parser.error("--peer needs the baseline (its overhead is measured against it)")
    try:
        args.app_settings = app_settings(args.app_setting)
    except SetupError as exc:
        parser.error(str(exc))
    return args


# --- subprocesses -----------------------------------------------------------------------


def _die_with_parent() -> None:
    # Linux: children get SIGTERM if the harness is killed outright (SIGKILL, OOM).
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Subprocesses:
    """The processes this run started; all stopped by `stop_all`, newest first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[tuple[str, subprocess.Popen]] = []
        self.temp_dirs: list[Path] = []

    def start(self, name: str, argv: list[str], env: dict[str, str],
              stdout: int | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            argv, cwd=ROOT, env=env, stdout=stdout if stdout is not None else log,
            stderr=log, preexec_fn=_die_with_parent,  # noqa: PLW1509
        )
        log.close()
        self.running.append((name, process))
        return process

    def stop(self, process: subprocess.Popen, sig: int = signal.SIGTERM,
             timeout: float = 15.0) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if process.stdout is not None:
            process.stdout.close()
        self.running = [(n, p) for n, p in self.running if p is not process]

    def stop_all(self) -> None:
        for _name, process in reversed(list(self.running)):
            self.stop(process)
        for path in self.temp_dirs:
            shutil.rmtree(path, ignore_errors=True)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(procs: Subprocesses, args: argparse.Namespace) -> str:
    """Start the simulated provider on a free loopback port; returns its URL."""
    process = procs.start(
        "simulator",
        [sys.executable, "-m", "simulated_provider", "--host", "127.0.0.1", "--port", "0",
         "--token-delay-ms", str(args.token_delay_ms), "--answer-tokens", str(args.answer_tokens),
         # Bodies are kept in memory; the benchmark only reads the counts.
         "--record-limit", "200"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    buffer = b""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(f"simulator exited: {procs.log_tail('simulator')}")
        chunk = process.stdout.read() or b""
        buffer += chunk
        match = re.search(rb"listening on (http://127\.0\.0\.1:\d+)", buffer)
        if match:
            return match.group(1).decode()
        time.sleep(0.05)
    raise SetupError("simulator did not start in 30 s")


# --- environment, database, redis -------------------------------------------------------


def _require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SetupError(f"{what} must be on a loopback address, not {host!r}")


def app_env(args: argparse.Namespace, sim_url: str, var_dir: Path) -> dict[str, str]:
    """Production settings for the app (and for the harness's own Django setup)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PROJECT_ENV_PREFIXES)}
    env.update(
        DJANGO_SETTINGS_MODULE="neonpro.settings",
        # A developer's .env must not change what is measured.
        NEONPRO_ENV_FILE=os.devnull,
        NEONPRO_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
        DEBUG="false",
        ENVIRONMENT="benchmark",
        SECRET_KEY=secrets.token_urlsafe(64),
        JWT_SECRET=secrets.token_urlsafe(48),
        ENCRYPTION_KEY=secrets.token_urlsafe(48),
        MONITORING_TOKEN=secrets.token_urlsafe(32),
        AUDIT_ANCHOR_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="warning",
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        RATE_LIMIT_MAX="100000000",
        # Every benchmark socket comes from 127.0.0.1: no per-address connection limit.
        WS_CONNECT_RATE_PER_IP="0",
        AI_SESSION_CAPACITY=str(max(2500, args.sessions + 100)),
        OPENAI_API_KEY="bench-openai-key",
        ANTHROPIC_API_KEY="bench-anthropic-key",
        OPENAI_BASE_URL=f"{sim_url}/v1",
        ANTHROPIC_BASE_URL=sim_url,
        OPENAI_MODEL=BASELINE_MODEL,
        # Tokens must outlive the run; the default 15 minutes would not.
        JWT_ACCESS_MINUTES="720",
    )
    return env


def app_settings(pairs: list[str]) -> dict[str, str]:
    """`--app-setting NAME=VALUE` pairs as environment variables for the web processes."""
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise SetupError(f"--app-setting needs NAME=VALUE, got {pair!r}")
        settings[name] = value
    return settings


def _maintenance_conninfo(database_url: str) -> tuple[str, str]:
    """(conninfo of the server's `postgres` database, name of the bench database)."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9_]{1,63}", name):
        raise SetupError("the bench database name must be letters, digits and underscores")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    return maintenance, name


def prepare_database(database_url: str, env: dict[str, str]) -> float:
    """Create the bench database if missing and migrate it; returns the seconds it took."""
    import psycopg
    from psycopg import sql

    started = time.monotonic()
    conninfo, name = _maintenance_conninfo(database_url)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  [name]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        raise SetupError(f"PostgreSQL is not reachable: {exc}") from None
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0:
        raise SetupError(f"migrate failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.monotonic() - started


def flush_redis(redis_url: str) -> None:
    """Empty the bench's Redis db: rate limits, breakers and channel groups of old runs."""
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_timeout=5).flushdb()
    except redis.RedisError as exc:
        raise SetupError(f"Redis is not reachable: {exc}") from None


# --- limits for thousands of connections -----------------------------------------------

# PgBouncer's server pool for the bench database (start_pgbouncer): pool plus reserve.
_PGBOUNCER_SERVER_CONNECTIONS = 25
_PGBOUNCER_MAX_CLIENTS = 1000
# The harness's own: population, stored-answer check, statistics, the purge command.
_HARNESS_DB_CONNECTIONS = 4
# A web process's connections besides its database threads (startup checks, health).
_EXTRA_DB_CONNECTIONS_PER_PROCESS = 2


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _port_range() -> int | None:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range")
                     .read_text().split())
    except (OSError, ValueError):
        return None
    return high - low + 1


def _postgres_room(database_url: str) -> dict[str, int]:
    import psycopg

    conninfo = urlunsplit(urlsplit(database_url)._replace(scheme="postgresql"))
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT current_setting('max_connections')::int, "
                "current_setting('superuser_reserved_connections')::int, "
                "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            ).fetchone()
    except psycopg.Error as exc:
        raise SetupError(f"PostgreSQL is not reachable: {exc}") from None
    assert row is not None
    max_connections, reserved, in_use = row
    return {"max_connections": max_connections, "in_use": in_use,
            "free": max_connections - reserved - in_use}


def _redis_room(redis_url: str) -> dict[str, int]:
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        maxclients = int(client.config_get("maxclients")["maxclients"])
        in_use = int(client.info("clients")["connected_clients"])
    except redis.RedisError as exc:
        raise SetupError(f"Redis is not reachable: {exc}") from None
    return {"maxclients": maxclients, "in_use": in_use, "free": maxclients - in_use}


def check_connection_limits(args: argparse.Namespace, *, open_files: int, db_threads: int,
                            postgres: dict[str, int], redis_clients: dict[str, int],
                            port_range: int | None) -> dict[str, Any]:
    """What `args.sessions` WebSockets and the run's processes need from this machine,
    against what it has; raises SetupError naming the first limit that is too low.

    The WebSockets themselves cost no database connection (the web processes reach
    PostgreSQL from a fixed pool of threads each), so the descriptors and ports of
    the harness, which holds every client socket, are what grows with the sessions.
    """
    sessions, web = args.sessions, args.web_processes
    # The harness: one socket per session, up to one per session again in the naive
    # loop phases (one HTTP connection per busy worker), plus files and pipes.
    harness_files = 2 * sessions + 256
    # A web process (the limit is inherited): its share of the sessions, its database
    # and Redis connections, its files.
    web_files = -(-sessions // web) + db_threads + 256
    web_db = web * (db_threads + _EXTRA_DB_CONNECTIONS_PER_PROCESS)
    db_needed = (_PGBOUNCER_SERVER_CONNECTIONS if args.db_pooler == "pgbouncer" else web_db)
    db_needed += _HARNESS_DB_CONNECTIONS
    # Per web process: the channel layer's pool and the cache's (a few each).
    redis_needed = 16 * web + 4
    limits = {
        "open_files": {"limit": open_files, "harness_needs": harness_files,
                       "web_process_needs": web_files},
        "postgres_connections": {**postgres, "needed": db_needed,
                                 "db_threads_per_process": db_threads},
        "redis_clients": {**redis_clients, "needed": redis_needed},
        "ephemeral_ports": {"range": port_range, "needed": 2 * sessions},
        "listen_backlog_max": _read_int("/proc/sys/net/core/somaxconn"),
    }
    if open_files < max(harness_files, web_files):
        raise SetupError(f"open-files limit {open_files} is too low for {sessions} sessions: "
                         f"the harness needs {harness_files} (raise `ulimit -n`)")
    if postgres["free"] < db_needed:
        raise SetupError(
            f"PostgreSQL has {postgres['free']} connections free (max_connections "
            f"{postgres['max_connections']}, {postgres['in_use']} in use) and the run needs "
            f"{db_needed} ({web} web processes x {db_threads} database threads"
            f"{', through PgBouncer' if args.db_pooler == 'pgbouncer' else ''}): raise "
            "max_connections, lower AI_DB_THREADS or use --db-pooler pgbouncer")
    if args.db_pooler == "pgbouncer" and web_db > _PGBOUNCER_MAX_CLIENTS:
        raise SetupError(f"{web_db} database clients exceed PgBouncer's max_client_conn "
                         f"{_PGBOUNCER_MAX_CLIENTS}: lower AI_DB_THREADS or --web-processes")
    if redis_clients["free"] < redis_needed:
        raise SetupError(f"Redis has {redis_clients['free']} clients free (maxclients "
                         f"{redis_clients['maxclients']}) and the run needs about "
                         f"{redis_needed}: raise maxclients")
    if port_range is not None and port_range < 2 * sessions:
        raise SetupError(f"the ephemeral port range holds {port_range} ports and "
                         f"{sessions} sessions need up to {2 * sessions}: widen "
                         "net.ipv4.ip_local_port_range")
    return limits


def _pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None)


def start_pgbouncer(procs: Subprocesses, database_url: str) -> str:
    """PgBouncer in transaction pooling, configured like the deployment; returns the app's URL.

    The app keeps CONN_MAX_AGE=0 for this mode, so without a pooler every database
    step would pay for a new PostgreSQL backend, which production never does.
    """
    binary = _pgbouncer_binary()
    if binary is None:
        raise SetupError("--db-pooler pgbouncer: pgbouncer is not installed")
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    user = parts.username or "postgres"
    port = _free_port()
    # Its own directory: PgBouncer (another OS user when we are root) must read it.
    conf_dir = Path(tempfile.mkdtemp(prefix="neonpro-bench-pgbouncer-"))
    procs.temp_dirs.append(conf_dir)
    (conf_dir / "userlist.txt").write_text(f'"{user}" ""\n')
    (conf_dir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"{name} = host={parts.hostname} port={parts.port or 5432} dbname={name}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {conf_dir / 'userlist.txt'}\n"
        # The deployment's pool (docker-compose.yml).
        "pool_mode = transaction\ndefault_pool_size = 20\nreserve_pool_size = 5\n"
        f"reserve_pool_timeout = 3\nmax_client_conn = {_PGBOUNCER_MAX_CLIENTS}\n"
        "ignore_startup_parameters = extra_float_digits,options\n"
    )
    argv = [binary, str(conf_dir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; it switches to the database's OS user.
        # Only the pooler's configuration is in there (no password: trust on loopback).
        os.chmod(conf_dir, 0o755)  # noqa: S103
        argv[1:1] = ["-u", "postgres"]
    process = procs.start("pgbouncer", argv, env=dict(os.environ))
    deadline = time.monotonic() + 15
    import socket

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(f"pgbouncer exited: {procs.log_tail('pgbouncer')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}"))
        time.sleep(0.1)
    raise SetupError("pgbouncer did not start in 15 s")


@dataclass
class Seat:
    """One clinician with one open chat session, served by one daphne process."""

    index: int
    session_id: str
    token: str
    server: int = 0


def create_population(count: int, tag: str) -> list[Seat]:
    """Clinicians with membership, consent and a session each, through the project's services.

    Users and memberships are bulk-inserted (nothing in the pipeline depends on
    how they were made, and hashing thousands of passwords would take minutes);
    consent and sessions go through the services, audit trail included.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from chat.models import ChatSession
    from chat.pipeline import sessions
    from clinics.models import Clinic, ClinicMembership
    from compliance import services as compliance_services

    # Sessions of earlier runs in this dedicated database would count against
    # AI_SESSION_CAPACITY; nobody is connected to them, so close them in bulk.
    ChatSession.objects.filter(status=ChatSession.Status.ACTIVE).update(
        status=ChatSession.Status.CLOSED, closed_at=timezone.now(),
        close_reason="benchmark_reset",
    )
    user_model = get_user_model()
    clinic, _ = Clinic.objects.get_or_create(name="Clínica Benchmark")
    users = user_model.objects.bulk_create(
        [user_model(username=f"bench-{tag}-{i:05d}", password=make_password(None))
         for i in range(count)],
        batch_size=1000,
    )
    ClinicMembership.objects.bulk_create(
        [ClinicMembership(user=user, clinic=clinic) for user in users], batch_size=1000
    )

    def enrol(chunk: list[tuple[int, Any]]) -> list[Seat]:
        try:
            made = []
            for index, user in chunk:
                compliance_services.consent_grant(user=user, purpose="ai_chat",
                                                  ip_address="127.0.0.1",
                                                  user_agent="neonpro-chat-bench")
                session = sessions.session_create(user=user, title="Benchmark")
                made.append(Seat(index=index, session_id=str(session.id),
                                 token=str(AccessToken.for_user(user))))
            return made
        finally:
            connection.close()  # each worker thread has its own connection

    # A few threads: most of the time is database round trips (the audit chain
    # serialises its appends with a lock, everything else runs side by side).
    numbered = list(enumerate(users))
    chunks = [numbered[i::_ENROL_THREADS] for i in range(_ENROL_THREADS)]
    with ThreadPoolExecutor(_ENROL_THREADS) as pool:
        seats = [seat for made in pool.map(enrol, chunks) for seat in made]
    return sorted(seats, key=lambda seat: seat.index)


def stored_answers(session_ids: list[str], accepted_ids: set[str],
                   wait_s: float = 30.0) -> dict[str, Any]:
    """What the database holds for the bench sessions, once no answer is still streaming."""
    from django.db.models import Count

    from chat.models import ChatMessage

    assistant = ChatMessage.objects.filter(session_id__in=session_ids,
                                           role=ChatMessage.Role.ASSISTANT)
    deadline = time.monotonic() + wait_s
    # An answer whose client timed out may still be streaming; give it its bounded time.
    while (assistant.filter(status=ChatMessage.Status.STREAMING).exists()
           and time.monotonic() < deadline):
        time.sleep(0.5)
    by_status = {row["status"]: row["n"] for row in
                 assistant.values("status").annotate(n=Count("id")).order_by()}
    users_found = ChatMessage.objects.filter(
        session_id__in=session_ids, role=ChatMessage.Role.USER, id__in=list(accepted_ids)
    ).count()
    complete_for_accepted = assistant.filter(
        status=ChatMessage.Status.COMPLETE, reply_to_id__in=list(accepted_ids)
    ).count()
    return {
        "by_status": by_status,
        "complete_for_accepted": complete_for_accepted,
        "accepted_user_messages_in_db": users_found,
    }


_PG_COUNTERS = ("xact_commit", "xact_rollback", "sessions", "tup_inserted", "tup_updated",
                "tup_deleted", "tup_returned", "tup_fetched")


def pg_activity(database_url: str) -> dict[str, int]:
    """PostgreSQL's cumulative counters for the bench database (flushed by backends
    at most once a second, so differences over a phase are approximate)."""
    import psycopg

    conninfo = urlunsplit(urlsplit(database_url)._replace(scheme="postgresql"))
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            f"SELECT {', '.join(_PG_COUNTERS)} FROM pg_stat_database "  # noqa: S608 - constants
            "WHERE datname = %s", [name]).fetchone()
    return dict(zip(_PG_COUNTERS, row or [0] * len(_PG_COUNTERS), strict=True))


# --- daphne -----------------------------------------------------------------------------


def start_web(procs: Subprocesses, env: dict[str, str], count: int) -> list[tuple[str, Any]]:
    """Start `count` daphne processes, each on a free port; returns (base_url, process)."""
    import httpx

    servers = []
    for index in range(count):
        port = _free_port()
        # The production command (Dockerfile), bound to loopback; the clients connect
        # directly, so no proxy is trusted (TRUSTED_PROXIES unset).
        process = procs.start(
            f"daphne-{index}",
            [sys.executable, "-m", "neonpro.server", "-b", "127.0.0.1",
             "-p", str(port), "neonpro.asgi:application"],
            env=env,
        )
        servers.append((f"http://127.0.0.1:{port}", process))
    deadline = time.monotonic() + 90
    for index, (base_url, process) in enumerate(servers):
        while True:
            if process.poll() is not None:
                raise SetupError(f"daphne-{index} exited:\n{procs.log_tail(f'daphne-{index}')}")
            try:
                if httpx.get(f"{base_url}/api/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SetupError(f"daphne-{index} did not serve within 90 s")
            time.sleep(0.2)
    return servers


# --- measuring --------------------------------------------------------------------------


@dataclass
class PhaseStats:
    """What one phase (baseline or app) measured."""

    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)
    sent: int = 0
    completed: int = 0
    skipped_busy: int = 0
    resets: int = 0
    started: float = 0.0
    finished: float = 0.0
    harness_cpu_s: float = 0.0
    context: dict[str, Any] = field(default_factory=dict)
    # From the app's `done` frames: where the time before the first token went.
    ack_ms: list[float] = field(default_factory=list)  # send -> ack: the message is stored
    server_first_token_ms: list[float] = field(default_factory=list)
    before_generation_ms: list[float] = field(default_factory=list)
    measuring: bool = True

    def record(self, t0: float, first: float | None, end: float) -> None:
        if not self.measuring:
            return
        self.completed += 1
        self.total_ms.append((end - t0) * 1000)
        if first is not None:
            self.ttft_ms.append((first - t0) * 1000)

    def split(self, t0: float, first: float, server_first_token_ms: Any) -> None:
        """Split the client's time to first token at the server's own first-token figure.

        The server counts from the start of generation (after the message was
        accepted and stored), so the rest is acceptance plus transport.
        """
        if not self.measuring or not isinstance(server_first_token_ms, int | float):
            return
        self.server_first_token_ms.append(float(server_first_token_ms))
        self.before_generation_ms.append((first - t0) * 1000 - server_first_token_ms)

    def error(self, code: str) -> None:
        self.errors[code] += 1


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/mean/max in ms, rounded."""
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "p50": rounded(percentile(values, 0.50)),
        "p95": rounded(percentile(values, 0.95)),
        "p99": rounded(percentile(values, 0.99)),
        "mean": rounded(sum(values) / len(values)) if values else None,
        "max": rounded(max(values)) if values else None,
        "n": len(values),
    }


Exchange = Callable[[int, PhaseStats], Awaitable[None]]


async def closed_loop(exchange: Exchange, stats: PhaseStats, *, workers: int,
                      messages: int | None, duration: float | None, spread: float,
                      seed: int, stop: asyncio.Event | None = None) -> None:
    """Each worker sends, waits for the end of the answer, and sends again.

    Workers start at random moments within `spread` seconds (about one answer's
    length): started together, sessions whose answers all take as long would stay
    in lock-step and every message would arrive in a burst with all the others.
    """
    budget = [messages if messages is not None else float("inf")]
    deadline = (time.perf_counter() + duration) if duration else float("inf")
    rng = random.Random(seed)
    offsets = [rng.uniform(0, spread) for _ in range(workers)]

    async def worker(seat: int) -> None:
        await asyncio.sleep(offsets[seat])
        while budget[0] > 0 and time.perf_counter() < deadline and not _stopped(stop):
            budget[0] -= 1
            await exchange(seat, stats)

    await asyncio.gather(*(worker(seat) for seat in range(workers)))


def _stopped(stop: asyncio.Event | None) -> bool:
    return stop is not None and stop.is_set()


async def open_loop(exchange: Exchange, stats: PhaseStats, *, workers: int, rate: float,
                    messages: int | None, duration: float | None, schedule: str,
                    seed: int, stop: asyncio.Event | None = None) -> None:
    """Arrivals at `rate`/s in total; an arrival for a busy session is skipped and counted."""
    rng = random.Random(seed)  # the same seed gives both phases the same arrivals
    loop = asyncio.get_running_loop()
    start = loop.time()
    busy = [False] * workers
    tasks: set[asyncio.Task] = set()
    due = start
    arrivals = 0

    async def run(seat: int) -> None:
        try:
            await exchange(seat, stats)
        finally:
            busy[seat] = False

    while True:
        due += rng.expovariate(rate) if schedule == "poisson" else 1 / rate
        if duration is not None and due - start >= duration:
            break
        if messages is not None and arrivals >= messages:
            break
        if _stopped(stop):
            break
        seat = rng.randrange(workers) if schedule == "poisson" else arrivals % workers
        arrivals += 1
        await asyncio.sleep(max(0.0, due - loop.time()))
        if busy[seat]:
            stats.skipped_busy += 1
            continue
        busy[seat] = True
        task = asyncio.create_task(run(seat))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*list(tasks))


async def run_load(exchange: Exchange, stats: PhaseStats, args: argparse.Namespace,
                   stop: asyncio.Event | None = None) -> None:
    """Drive `exchange` with the load shape of the arguments; fills stats' timings.

    With `stop`, the load runs until it is set instead of for a count or duration.
    """
    messages, duration = (None, None) if stop is not None else (args.messages, args.duration)
    stats.started = time.perf_counter()
    if args.mode == "closed":
        # About one answer: the echo of the question plus the filler, paced by the simulator.
        spread = min(5.0, (args.answer_tokens + 25) * args.token_delay_ms / 1000)
        await closed_loop(exchange, stats, workers=args.sessions, messages=messages,
                          duration=duration, spread=spread, seed=args.seed, stop=stop)
    else:
        await open_loop(exchange, stats, workers=args.sessions, rate=args.rate,
                        messages=messages, duration=duration,
                        schedule=args.schedule, seed=args.seed, stop=stop)
    stats.finished = time.perf_counter()


async def warm_up(exchange: Exchange, count: int, seats: list[int]) -> PhaseStats:
    """Unmeasured messages: SDK clients, connection pools and imports get ready."""
    stats = PhaseStats(measuring=False)
    for i in range(count):
        await exchange(seats[i % len(seats)], stats)
    return stats


# --- baseline: the naive SDK loop -------------------------------------------------------


def baseline_exchange(client: Any, *, content: str, system_prompt: str,
                      timeout: float) -> Exchange:
    """One request with `openai.AsyncOpenAI`, streamed the plain way: one object per chunk."""
    import openai

    messages = [{"role": "system", "content": system_prompt},
                {"role": "user", "content": content}]

    async def exchange(seat: int, stats: PhaseStats) -> None:
        stats.sent += 1
        t0 = time.perf_counter()
        first = None
        try:
            async with asyncio.timeout(timeout):
                stream = await client.chat.completions.create(
                    model=BASELINE_MODEL, messages=messages, stream=True,
                    stream_options={"include_usage": True}, max_tokens=4000,
                )
                async for chunk in stream:
                    if first is None and chunk.choices and chunk.choices[0].delta.content:
                        first = time.perf_counter()
        except TimeoutError:
            stats.error("timeout")
            return
        except openai.APIStatusError as exc:
            stats.error(f"http_{exc.status_code}")
            return
        except openai.APIError as exc:
            stats.error(type(exc).__name__)
            return
        if first is None:
            stats.error("empty_answer")
            return
        stats.record(t0, first, time.perf_counter())

    return exchange


async def naive_loop_phase(args: argparse.Namespace, *, base_url: str, api_key: str,
                           system_prompt: str, harness: Any,
                           watch: ResourceWatch) -> tuple[PhaseStats, dict[str, Any]]:
    """The naive SDK loop against `base_url` with the run's load shape; returns its
    timings and what `watch` saw (the baseline and the peer go through here alike)."""
    import openai

    client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url,
                                max_retries=0, timeout=args.message_timeout)
    try:
        exchange = baseline_exchange(client, content=args.content, system_prompt=system_prompt,
                                     timeout=args.message_timeout)
        await warm_up(exchange, args.warmup, list(range(args.sessions)))
        stats = PhaseStats()
        cpu = harness.cpu_times()
        watch.start()
        await run_load(exchange, stats, args)
        stats.harness_cpu_s = _cpu_delta(harness, cpu)
        resources = await watch.stop()
        stats.context = {"machine_busy_cores": resources["machine_busy_cores"],
                         "other_cpu_cores": resources["other_cpu_cores"]}
        return stats, resources
    finally:
        await client.close()


async def run_baseline(args: argparse.Namespace, sim_url: str, system_prompt: str,
                       harness: Any, procs: Subprocesses) -> PhaseStats:
    """The same load shape straight against the simulator with the SDK."""
    watch = ResourceWatch([], others={
        "simulator": [p.pid for n, p in procs.running if n == "simulator"],
        "load_generator": [os.getpid()]})
    stats, _resources = await naive_loop_phase(
        args, base_url=f"{sim_url}/v1", api_key="bench-openai-key",
        system_prompt=system_prompt, harness=harness, watch=watch)
    return stats


# --- the peer: a gateway in front of the same simulator ---------------------------------


def start_peer(procs: Subprocesses, args: argparse.Namespace,
               sim_url: str) -> tuple[str, str, subprocess.Popen, float]:
    """Start the peer's proxy on a free loopback port and wait until all its workers
    serve; returns its URL, master key, process and start-up seconds."""
    master_key = "sk-bench-" + secrets.token_hex(16)
    config_dir = procs.log_dir / "peer-litellm"
    config_dir.mkdir(exist_ok=True)
    config, log_config = peer_gateway.write_config(config_dir, peer_gateway.litellm_config(
        provider_url=sim_url, model=BASELINE_MODEL, api_key="bench-openai-key",
        master_key=master_key))
    port = _free_port()
    process = procs.start(
        "peer-litellm",
        peer_gateway.litellm_argv(executable=args.peer_executable, config=config,
                                  log_config=log_config, port=port, workers=args.peer_workers),
        env=peer_gateway.litellm_env(dict(os.environ)),
    )
    url = f"http://127.0.0.1:{port}"
    started_s = peer_gateway.wait_ready(url=url, process=process, workers=args.peer_workers,
                                        log=procs.log_dir / "peer-litellm.log")
    return url, master_key, process, started_s


async def warm_up_workers(args: argparse.Namespace, *, base_url: str, api_key: str,
                          system_prompt: str, workers: int, rounds: int = 3) -> PhaseStats:
    """Unmeasured messages that reach every worker of a multi-process server.

    The workers share one listening socket, and an idle server's accepts tend to go to
    the same worker: sequential warm-up messages could leave the others cold (their
    first requests import and build what the first one did, seconds on a busy
    machine). Concurrent requests on fresh connections reach the ones not busy.
    """
    import openai

    stats = PhaseStats(measuring=False)
    for _ in range(rounds):
        client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0,
                                    timeout=args.message_timeout)
        try:
            exchange = baseline_exchange(client, content=args.content,
                                         system_prompt=system_prompt,
                                         timeout=args.message_timeout)
            await asyncio.gather(*(exchange(i, stats) for i in range(4 * workers)))
        finally:
            await client.close()
    return stats


async def run_peer(args: argparse.Namespace, sim_url: str, system_prompt: str,
                   harness: Any, procs: Subprocesses) -> dict[str, Any]:
    """The peer phase: start the proxy, drive it like the baseline, stop it.

    Its CPU is that of its whole process tree (the uvicorn supervisor and its
    workers). Whatever goes wrong is reported in the result, not raised: the
    baseline and the app are measured either way.
    """
    info: dict[str, Any] = {"name": args.peer, "version": peer_gateway.LITELLM_VERSION,
                            "workers": args.peer_workers, "database": None, "error": None}
    if args.peer_error:
        info["error"] = args.peer_error
        return info
    tree: list[Any] = []
    process = None
    try:
        # Blocking, but nothing else runs on the loop between the phases.
        url, master_key, process, start_s = start_peer(procs, args, sim_url)
        info["start_s"] = round(start_s, 1)
        warm = await warm_up_workers(args, base_url=f"{url}/v1", api_key=master_key,
                                     system_prompt=system_prompt, workers=args.peer_workers)
        info["warmup_errors"] = dict(warm.errors)
        tree = peer_gateway.process_tree(process.pid)
        watch = ResourceWatch([p.pid for p in tree], others={
            "simulator": [p.pid for n, p in procs.running if n == "simulator"],
            "load_generator": [os.getpid()]})
        stats, resources = await naive_loop_phase(
            args, base_url=f"{url}/v1", api_key=master_key, system_prompt=system_prompt,
            harness=harness, watch=watch)
    except peer_gateway.PeerError as exc:
        info["error"] = str(exc)
        return info
    finally:
        if process is not None:
            procs.stop(process)
        peer_gateway.stop_tree(tree)
    info["stats"] = stats
    info["resources"] = resources
    return info


# --- the app over WebSockets ------------------------------------------------------------


class AppClient:
    """One WebSocket per session, as a browser or API client holds it."""

    def __init__(self, seats: list[Seat], servers: list[str], *, content: str,
                 timeout: float) -> None:
        self.seats = seats
        self.servers = servers
        self.content = content
        self.timeout = timeout
        self.sockets: list[Any] = [None] * len(seats)

    def _url(self, seat: Seat) -> tuple[str, dict[str, str]]:
        base = self.servers[seat.server]
        url = base.replace("http://", "ws://") + f"/ws/ai-chat/{seat.session_id}/"
        # Every clinician has an address of their own, as the load balancer reports it
        # (a header only: every connection goes to 127.0.0.1). Per-address limits on
        # connection attempts then apply as in production, not to the harness's one address.
        i = seat.index
        address = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        return url, {"Authorization": f"Bearer {seat.token}", "Origin": base,
                     "X-Forwarded-For": address}

    async def open(self, index: int) -> None:
        from websockets.asyncio.client import connect

        url, headers = self._url(self.seats[index])
        # No client pings: daphne pings every connection itself.
        self.sockets[index] = await connect(url, additional_headers=headers, open_timeout=60,
                                            ping_interval=None, close_timeout=5,
                                            max_queue=None)

    async def open_all(self, concurrency: int = 64) -> dict[str, Any]:
        """Connect every session (a bounded number at a time); returns failures by kind."""
        gate = asyncio.Semaphore(concurrency)
        failures: Counter = Counter()

        async def one(index: int) -> None:
            async with gate:
                try:
                    await self.open(index)
                except Exception as exc:  # counted and reported; the run goes on without it
                    failures[type(exc).__name__] += 1

        await asyncio.gather(*(one(i) for i in range(len(self.seats))))
        return dict(failures)

    async def close_all(self) -> None:
        async def close(ws: Any) -> None:
            with contextlib.suppress(Exception):
                await ws.close()

        await asyncio.gather(*(close(ws) for ws in self.sockets if ws is not None))

    async def _reopen(self, index: int, stats: PhaseStats) -> None:
        with contextlib.suppress(Exception):
            await self.sockets[index].close()
        self.sockets[index] = None
        try:
            await self.open(index)
        except Exception:
            stats.error("reconnect_failed")

    async def exchange(self, index: int, stats: PhaseStats) -> None:
        """Send one message and read its frames until `done` or `error`."""
        from websockets.exceptions import ConnectionClosed

        ws = self.sockets[index]
        if ws is None:
            stats.error("not_connected")
            return
        stats.sent += 1
        frame = json.dumps({"type": "message", "content": self.content,
                            "client_id": str(uuid.uuid4())})
        t0 = time.perf_counter()
        first = None
        try:
            async with asyncio.timeout(self.timeout):
                await ws.send(frame)
                while True:
                    raw = await ws.recv()
                    # Token frames are most of the traffic: recognise them without parsing
                    # (orjson writes "type" first) so the load generator stays light.
                    if raw.startswith('{"type":"token"'):
                        if first is None:
                            first = time.perf_counter()
                        continue
                    message = json.loads(raw)
                    kind = message.get("type")
                    if kind == "token":
                        if first is None:
                            first = time.perf_counter()
                    elif kind == "ack":
                        stats.accepted.add(message["message_id"])
                        if stats.measuring:
                            stats.ack_ms.append((time.perf_counter() - t0) * 1000)
                    elif kind == "reset":
                        stats.resets += 1
                        first = None
                    elif kind == "done":
                        end = time.perf_counter()
                        if first is None:
                            stats.error("empty_answer")
                        else:
                            stats.record(t0, first, end)
                            stats.split(t0, first, message.get("first_token_ms"))
                        return
                    elif kind == "error":
                        stats.error(f"error:{message.get('code')}")
                        return
        except TimeoutError:
            stats.error("timeout")
        except ConnectionClosed as exc:
            # Who closed, with which code: 1006 is a connection lost without a close frame.
            closer = "server" if exc.rcvd is not None else "lost"
            code = exc.rcvd.code if exc.rcvd is not None else (exc.sent.code if exc.sent else 1006)
            stats.error(f"disconnect:{closer}:{code}")
        # The socket may still carry the rest of that answer: start over on a fresh one.
        await self._reopen(index, stats)


# --- server resources -------------------------------------------------------------------


def _cpu_delta(process: Any, before: Any) -> float:
    after = process.cpu_times()
    return (after.user - before.user) + (after.system - before.system)


def _machine_busy_s() -> float:
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _cpu_by_pid(processes: list[Any]) -> dict[int, float]:
    found = {}
    for process in processes:
        with contextlib.suppress(Exception):  # a backend that ended meanwhile
            times = process.cpu_times()
            found[process.pid] = times.user + times.system
    return found


def _named(name: str) -> list[Any]:
    import psutil

    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == name]


class ResourceWatch:
    """CPU seconds and peak RSS of the daphne processes while a phase runs, and, for
    context, the CPU of the rest of the stack and of the whole machine."""

    def __init__(self, pids: list[int], others: dict[str, list[int]] | None = None) -> None:
        import psutil

        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak_rss = [0] * len(pids)
        self._cpu_before: list[Any] = []
        self._started = 0.0
        self._task: asyncio.Task | None = None
        self.others = {name: [psutil.Process(pid) for pid in group if psutil.pid_exists(pid)]
                       for name, group in (others or {}).items()}
        # Shared services, found by name when read (backends come and go); other work
        # on the machine shows up here too.
        self.shared = ("postgres", "redis-server")
        self._others_before: dict[str, dict[int, float]] = {}
        self._machine_before = 0.0

    def _group(self, name: str) -> list[Any]:
        return _named(name) if name in self.shared else self.others[name]

    def rss(self) -> list[int]:
        return [p.memory_info().rss for p in self.processes]

    async def _sample(self) -> None:
        while True:
            for i, rss in enumerate(self.rss()):
                self.peak_rss[i] = max(self.peak_rss[i], rss)
            await asyncio.sleep(0.5)

    def start(self) -> None:
        self._cpu_before = [p.cpu_times() for p in self.processes]
        self._others_before = {name: _cpu_by_pid(self._group(name))
                               for name in (*self.others, *self.shared)}
        self._machine_before = _machine_busy_s()
        self._started = time.perf_counter()
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self._started
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        end_rss = self.rss()
        per_process = []
        for i, process in enumerate(self.processes):
            cpu = _cpu_delta(process, self._cpu_before[i])
            self.peak_rss[i] = max(self.peak_rss[i], end_rss[i])
            per_process.append({
                "pid": process.pid,
                "cpu_s": round(cpu, 2),
                "cpu_cores": round(cpu / wall, 3) if wall else None,
                "rss_mib": _mib(end_rss[i]),
                "peak_rss_mib": _mib(self.peak_rss[i]),
            })
        total_cpu = sum(p["cpu_s"] for p in per_process)
        others = {}
        for name, before in self._others_before.items():
            # A process that started during the phase counts whole.
            spent = sum(cpu - before.get(pid, 0.0)
                        for pid, cpu in _cpu_by_pid(self._group(name)).items())
            others[name] = round(spent / wall, 3) if wall else None
        machine = round((_machine_busy_s() - self._machine_before) / wall, 3) if wall else None
        return {
            "other_cpu_cores": others,
            "machine_busy_cores": machine,
            "processes": per_process,
            "wall_s": round(wall, 2),
            "cpu_s": round(total_cpu, 2),
            "cpu_cores": round(total_cpu / wall, 3) if wall else None,
            "rss_mib": round(sum(end_rss) / 2**20, 1),
            "peak_rss_mib": round(sum(self.peak_rss) / 2**20, 1),
        }


def _per_message(before: dict[str, int], after: dict[str, int], sent: int) -> dict[str, Any]:
    delta = {key: after[key] - before[key] for key in before}
    return {
        "totals": delta,
        "per_message": {key: round(value / sent, 2) for key, value in delta.items()}
        if sent else None,
    }


def _mib(value: int) -> float:
    return round(value / 2**20, 1)


# --- profiling --------------------------------------------------------------------------


def _py_spy() -> str:
    candidate = Path(sys.executable).with_name("py-spy")
    found = str(candidate) if candidate.exists() else shutil.which("py-spy")
    if not found:
        raise SetupError("--profile needs py-spy (pip install py-spy)")
    return found


def start_profilers(procs: Subprocesses, pids: list[int], out_dir: Path,
                    gil_only: bool = False) -> list[Any]:
    """py-spy on each daphne process (non-blocking sampling, so throughput is not taxed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    recorders = []
    for index, pid in enumerate(pids):
        path = out_dir / f"daphne-{index}.speedscope.json"
        process = procs.start(
            f"py-spy-{index}",
            [_py_spy(), "record", "--pid", str(pid), "--format", "speedscope", "--rate", "100",
             "--nonblocking", "--output", str(path), *(["--gil"] if gil_only else [])],
            env=dict(os.environ),
        )
        recorders.append((process, path))
    return recorders


def stop_profilers(procs: Subprocesses, recorders: list[Any]) -> list[dict[str, Any]]:
    summaries = []
    for process, path in recorders:
        procs.stop(process, sig=signal.SIGINT, timeout=60)  # py-spy writes the file on SIGINT
        if path.exists():
            summaries.append({"file": str(path), **summarise_speedscope(path)})
    return summaries


def _short_file(path: str) -> str:
    marker = "site-packages/"
    if marker in path:
        return path.split(marker, 1)[1]
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(ROOT))
    return Path(path).name if path.startswith("/") else path


def _area(path: str) -> str:
    short = _short_file(path)
    if short.startswith(("chat/", "compliance/", "monitoring/", "neonpro/")):
        return short.rsplit("/", 1)[0] if short.count("/") > 1 else short
    if "/" in short and not short.startswith("/"):
        return short.split("/", 1)[0]
    return "python stdlib" if short.endswith(".py") else short


# Leaf frames of a thread with nothing to do: the event loop waiting in epoll, a pool
# thread waiting for work. py-spy's non-blocking mode cannot always tell them apart.
_IDLE_LEAVES = {"EpollSelector.select", "select", "_worker", "Condition.wait", "Event.wait"}


def summarise_speedscope(path: Path, top: int = 25) -> dict[str, Any]:
    """Function-level costs from a py-spy speedscope file, idle waits left out.

    Two views: the event loop thread (it runs every coroutine: a busy loop delays
    every session) and the worker threads (database and Redis calls made from
    sync code; their time is mostly waiting on sockets). Percentages are of the
    busy samples of that view: self = the function itself, inclusive = with what
    it calls.
    """
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    keys = [f"{f['name']} ({_short_file(f.get('file', ''))})" for f in frames]
    names = [f["name"] for f in frames]
    areas = [_area(f.get("file", "")) for f in frames]
    views: dict[str, dict[str, Any]] = {}
    for profile in data["profiles"]:
        view = "event_loop" if "MainThread" in profile.get("name", "") else "worker_threads"
        acc = views.setdefault(view, {"own": Counter(), "incl": Counter(), "area": Counter(),
                                      "busy": 0.0, "idle": 0.0, "samples": 0})
        for stack, weight in zip(profile["samples"], profile["weights"], strict=False):
            if not stack:
                continue
            if names[stack[-1]] in _IDLE_LEAVES:
                acc["idle"] += weight
                continue
            acc["busy"] += weight
            acc["samples"] += 1
            acc["own"][keys[stack[-1]]] += weight
            acc["area"][areas[stack[-1]]] += weight
            for key in {keys[i] for i in stack}:
                acc["incl"][key] += weight

    def pct(counter: Counter, total: float, label: str) -> list[dict[str, Any]]:
        return [{label: k, "percent": round(100 * v / total, 1)}
                for k, v in counter.most_common(top)] if total else []

    return {
        view: {
            "busy_s": round(acc["busy"], 2),
            "idle_s": round(acc["idle"], 2),
            "samples": acc["samples"],
            "self": pct(acc["own"], acc["busy"], "function"),
            "inclusive": pct(acc["incl"], acc["busy"], "function"),
            "self_by_area": pct(acc["area"], acc["busy"], "area"),
        }
        for view, acc in views.items()
    }


# --- the run ----------------------------------------------------------------------------


def phase_json(stats: PhaseStats) -> dict[str, Any]:
    wall = stats.finished - stats.started
    result = {
        "sent": stats.sent,
        "messages": stats.completed,
        "errors": sum(stats.errors.values()),
        "errors_by_code": dict(stats.errors),
        "skipped_busy": stats.skipped_busy,
        "resets": stats.resets,
        "wall_s": round(wall, 2),
        "throughput_msg_s": round(stats.completed / wall, 2) if wall > 0 else None,
        "ttft_ms": distribution(stats.ttft_ms),
        "total_ms": distribution(stats.total_ms),
    }
    if stats.server_first_token_ms:
        result["ttft_split_ms"] = {
            # send -> ack frame: checks, redaction, user message stored (plus transport).
            "ack": distribution(stats.ack_ms),
            "accept_and_transport": distribution(stats.before_generation_ms),
            # From the start of generation to the first token, as the server measured it.
            "server_first_token": distribution(stats.server_first_token_ms),
        }
    return result


def _difference(app: dict[str, Any], base: dict[str, Any], metric: str, q: str) -> float | None:
    a, b = app[metric][q], base[metric][q]
    return None if a is None or b is None else round(a - b, 2)


def evaluate_targets(preset: str | None, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The quality bars of BENCHMARKS.md for the presets that have one."""
    overhead = result.get("overhead_ms") or {}
    targets: list[dict[str, Any]] = []

    def add(name: str, value: Any, limit: Any, ok: bool | None) -> None:
        targets.append({"target": name, "value": value, "limit": limit, "met": ok})

    def within(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    if preset == "light":
        for metric in ("ttft", "total"):
            for q, limit in (("p50", 10.0), ("p95", 25.0)):
                value = overhead.get(metric, {}).get(q)
                add(f"{metric} overhead {q} <= {limit:g} ms", value, limit, within(value, limit))
    elif preset in ("capacity", "capacity-5000"):
        add("errors == 0", result["errors"], 0, result["errors"] == 0)
        add("lost == 0", result["lost"], 0, result["lost"] == 0)
        # The 5,000-session variant's bar is on the first token only.
        for metric in ("ttft", "total") if preset == "capacity" else ("ttft",):
            value = overhead.get(metric, {}).get("p95")
            add(f"{metric} overhead p95 <= 50 ms", value, 50.0, within(value, 50.0))
        rss = result["app"]["server"]["peak_rss_mib"]
        add("server RSS <= 1024 MiB", rss, 1024, rss <= 1024)
        connections = result["app"]["connections"]
        failed = sum((connections["failed"] or {}).values())
        add(f"all {result['config']['sessions']} connections opened", failed, 0,
            failed == 0 and connections["opened"] == result["config"]["sessions"])
    elif preset == "saturation":
        ratio = result.get("throughput_ratio")
        add("app throughput >= 2x naive SDK loop", ratio, 2.0,
            None if ratio is None else ratio >= 2.0)
    during = result.get("during_purge")
    if during:
        purge = during["purge"]
        add("purge deleted exactly the expired messages", purge["messages"],
            purge["expected_messages"], purge["deleted_as_expected"])
        rate = purge["messages_per_s"]  # None when the purge took under 0.05 s
        add("purge >= 20000 messages/s", rate, 20000, None if rate is None else rate >= 20000)
        ratio = during["ratio_to_idle"]["ttft"]["p95"]
        add(f"chat ttft p95 ({during['ratio_basis']['ttft']['p95']}) during purge <= 2x idle",
            ratio, 2.0,
            None if ratio is None else ratio <= 2.0)
    return targets


_PURGE_OUTPUT = re.compile(r"deleted: (\d+) sessions, (\d+) messages, (\d+) provider attempts"
                           r".* \(([\d.]+) s\)\.$", re.DOTALL)


async def measure_during_purge(exchange: Exchange, args: argparse.Namespace,
                               procs: Subprocesses, env: dict[str, str]) -> dict[str, Any]:
    """The same load while `manage.py purge_expired_data` runs, for as long as it runs."""
    stats = PhaseStats()
    stop = asyncio.Event()
    started = time.perf_counter()
    process = procs.start("purge", [sys.executable, str(ROOT / "manage.py"),
                                    "purge_expired_data"], env=env, stdout=subprocess.PIPE)

    async def wait_for_purge() -> tuple[int, float, bytes]:
        output, _ = await asyncio.to_thread(process.communicate)
        elapsed = time.perf_counter() - started
        stop.set()
        return process.returncode, elapsed, output

    purge = asyncio.create_task(wait_for_purge())
    await run_load(exchange, stats, args, stop=stop)
    stats.finished = time.perf_counter()
    code, elapsed, output = await purge
    found = _PURGE_OUTPUT.search(output.decode(errors="replace").strip())
    if code != 0 or found is None:
        raise SetupError(f"the purge failed (exit {code}): {procs.log_tail('purge')}")
    sessions, messages, attempts = (int(x) for x in found.groups()[:3])
    # The rate is over the purge's own time; the chat phase also covers the command's
    # start-up (loading Django), which competes for the same cores.
    purge_s = float(found.group(4))
    return {"stats": stats, "purge": {
        "seconds": purge_s, "command_wall_s": round(elapsed, 2), "sessions": sessions,
        "messages": messages, "provider_attempts": attempts,
        "messages_per_s": round(messages / purge_s) if purge_s else None,
        "batch_size": int(env.get("RETENTION_PURGE_BATCH_SIZE", 0)) or None,
    }}


async def run_app(args: argparse.Namespace, seats: list[Seat], servers: list[tuple[str, Any]],
                  procs: Subprocesses, harness: Any,
                  purge_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Connect every session, warm up, measure the load, and watch the servers."""
    pids = [process.pid for _url, process in servers]
    others = {name: [p.pid for n, p in procs.running if n == name]
              for name in ("simulator", "pgbouncer")}
    others["load_generator"] = [os.getpid()]
    client = AppClient(seats, [url for url, _p in servers], content=args.content,
                       timeout=args.message_timeout)
    watch = ResourceWatch(pids, others=others)
    rss_before = watch.rss()
    connect_started = time.perf_counter()
    connect_failures = await client.open_all()
    connect_s = time.perf_counter() - connect_started
    await asyncio.sleep(1.0)  # let the servers settle before reading idle memory
    rss_connected = watch.rss()
    connected = sum(ws is not None for ws in client.sockets)
    # Warm-up messages go to distinct sessions, at least two per web process.
    warm = list(range(min(len(seats), max(args.warmup, 2 * len(servers)))))
    warm_stats = await warm_up(client.exchange, args.warmup, warm)
    recorders = (start_profilers(procs, pids, Path(args.profile), gil_only=args.profile_gil)
                 if args.profile else [])
    stats = PhaseStats()
    db_before = pg_activity(args.database_url)
    cpu = harness.cpu_times()
    watch.start()
    try:
        await run_load(client.exchange, stats, args)
    finally:
        server = await watch.stop()
        await asyncio.sleep(2.0)  # backends publish their statistics about once a second
        db_after = pg_activity(args.database_url)
        server["database"] = _per_message(db_before, db_after, stats.sent)
        stats.harness_cpu_s = _cpu_delta(harness, cpu)
        profiles = stop_profilers(procs, recorders) if recorders else []
    during_purge = None
    try:
        if args.purge_messages:
            print("app again, while the retention purge runs", flush=True)
            during_purge = await measure_during_purge(client.exchange, args, procs, purge_env)
    finally:
        await client.close_all()
    per_connection = ((sum(rss_connected) - sum(rss_before)) / connected) if connected else None
    return {
        "stats": stats,
        "warmup": warm_stats,
        "during_purge": during_purge,
        "server": server,
        "profiles": profiles,
        "connections": {
            "opened": connected,
            "failed": connect_failures,
            "connect_s": round(connect_s, 2),
            "rss_before_mib": round(sum(rss_before) / 2**20, 1),
            "rss_connected_mib": round(sum(rss_connected) / 2**20, 1),
            "rss_per_connection_kib": (round(per_connection / 1024, 1)
                                       if per_connection is not None else None),
        },
    }


async def measure(args: argparse.Namespace, seats: list[Seat], servers: list[tuple[str, Any]],
                  procs: Subprocesses, sim_url: str,
                  purge_env: dict[str, str] | None = None) -> dict[str, Any]:
    import psutil
    from django.conf import settings

    harness = psutil.Process()
    load_start = [round(x, 2) for x in os.getloadavg()]
    baseline = None
    peer = None
    if not args.skip_baseline:
        print(f"baseline: naive openai.AsyncOpenAI loop, {args.sessions} workers", flush=True)
        baseline = await run_baseline(args, sim_url, settings.AI_SYSTEM_PROMPT, harness, procs)
    if args.peer:
        print(f"peer: LiteLLM proxy {peer_gateway.LITELLM_VERSION} ({args.peer_workers} "
              f"workers, no database) driven by the same loop", flush=True)
        peer = await run_peer(args, sim_url, settings.AI_SYSTEM_PROMPT, harness, procs)
        if peer["error"]:
            print(f"peer phase skipped: {peer['error']}", file=sys.stderr, flush=True)
    print(f"app: {args.sessions} WebSocket sessions on {len(servers)} daphne process(es)",
          flush=True)
    app = await run_app(args, seats, servers, procs, harness, purge_env)
    return {"baseline": baseline, "peer": peer, "load_start": load_start, **app}


def build_result(args: argparse.Namespace, measured: dict[str, Any], db: dict[str, Any],
                 setup_s: dict[str, float], sim_stats: dict[str, Any] | None) -> dict[str, Any]:
    stats: PhaseStats = measured["stats"]
    warm: PhaseStats = measured["warmup"]
    app = phase_json(stats)
    app["server"] = measured["server"]
    app["connections"] = measured["connections"]
    app["load_generator_cpu_cores"] = round(
        stats.harness_cpu_s / max(1e-9, stats.finished - stats.started), 3)
    # CPU the web processes spent per answered message: what capacity planning needs,
    # and much less sensitive to other work on the machine than latencies are.
    app["server_cpu_ms_per_message"] = (round(1000 * measured["server"]["cpu_s"]
                                              / stats.completed, 1) if stats.completed else None)
    during_purge = measured.get("during_purge")
    purge_accepted = during_purge["stats"].accepted if during_purge else set()
    accepted = len(stats.accepted | warm.accepted | purge_accepted)
    stored = db["complete_for_accepted"]
    baseline = None
    if measured["baseline"] is not None:
        base_stats: PhaseStats = measured["baseline"]
        baseline = phase_json(base_stats)
        baseline["resources"] = base_stats.context
        baseline["load_generator_cpu_cores"] = round(
            base_stats.harness_cpu_s / max(1e-9, base_stats.finished - base_stats.started), 3)
        # The naive loop runs in this process: its CPU per message is the SDK's cost.
        baseline["sdk_cpu_ms_per_message"] = (round(1000 * base_stats.harness_cpu_s
                                                    / base_stats.completed, 1)
                                              if base_stats.completed else None)
    purge_phase = phase_json(during_purge["stats"]) if during_purge else None
    peer = peer_json(measured.get("peer"), baseline, app)
    errors = (app["errors"] + sum(warm.errors.values()) + (baseline["errors"] if baseline else 0)
              + (purge_phase["errors"] if purge_phase else 0))
    result: dict[str, Any] = {
        "benchmark": "chat_bench",
        "version": 1,
        "preset": args.preset,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "config": {
            "sessions": args.sessions, "mode": args.mode, "messages": args.messages,
            "duration_s": args.duration, "rate_msg_s": args.rate, "schedule": args.schedule,
            "token_delay_ms": args.token_delay_ms, "answer_tokens": args.answer_tokens,
            "web_processes": args.web_processes, "db_pooler": args.db_pooler,
            "app_settings": args.app_settings, "warmup": args.warmup,
            "message_timeout_s": args.message_timeout, "seed": args.seed,
            "content_chars": len(args.content),
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    # Other work on the machine distorts every figure: recorded for context.
                    "load_average_start": measured["load_start"],
                    "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "setup_s": {k: round(v, 1) for k, v in setup_s.items()},
        # What the sessions need from the machine (descriptors, database and Redis
        # connections, ports) against what it has, checked before the run.
        "limits": getattr(args, "limits", None),
        # Summary: app messages measured, every error seen (both phases, warm-up too),
        # accepted messages without a stored complete answer.
        "messages": app["messages"],
        "errors": errors,
        "accepted": accepted,
        "stored": stored,
        "lost": accepted - stored,
        "app": app,
        "baseline": baseline,
        "database": db,
        "simulator": sim_stats,
        "overhead_ms": None,
        "throughput_ratio": None,
        "peer": peer,
        "profile": measured["profiles"],
    }
    if baseline is not None:
        result.update(against_baseline(app, baseline))
    if during_purge:
        result["during_purge"] = _purge_comparison(
            app, purge_phase, baseline, {**during_purge["purge"], **measured["purge_data"]})
    result["targets"] = evaluate_targets(args.preset, result)
    return result


def against_baseline(phase: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """A phase's TTFT and total overhead (p50, p95) over the same-run baseline, and its
    throughput as a ratio of the baseline's (None when either delivered nothing)."""
    ratio = None
    if phase["throughput_msg_s"] and baseline["throughput_msg_s"]:
        ratio = round(phase["throughput_msg_s"] / baseline["throughput_msg_s"], 3)
    return {
        "overhead_ms": {
            metric: {q: _difference(phase, baseline, f"{metric}_ms", q) for q in ("p50", "p95")}
            for metric in ("ttft", "total")
        },
        "throughput_ratio": ratio,
    }


def peer_json(peer: dict[str, Any] | None, baseline: dict[str, Any] | None,
              app: dict[str, Any]) -> dict[str, Any] | None:
    """The peer phase beside the baseline and the app: its own timings, its overhead over
    the same-run baseline, and its CPU per answer against the app's web processes'."""
    if peer is None:
        return None
    result = {key: peer[key] for key in ("name", "version", "workers", "database", "error")}
    result["start_s"] = peer.get("start_s")
    result["warmup_errors"] = peer.get("warmup_errors")
    stats: PhaseStats | None = peer.get("stats")
    if stats is None:
        return result
    resources = peer["resources"]
    result.update(phase_json(stats))
    result["server"] = resources
    result["load_generator_cpu_cores"] = round(
        stats.harness_cpu_s / max(1e-9, stats.finished - stats.started), 3)
    # The proxy's whole process tree (supervisor and workers) per answered message.
    result["server_cpu_ms_per_message"] = (round(1000 * resources["cpu_s"] / stats.completed, 1)
                                          if stats.completed else None)
    if baseline is not None:
        result.update(against_baseline(result, baseline))
    app_cpu, peer_cpu = app.get("server_cpu_ms_per_message"), result["server_cpu_ms_per_message"]
    # Below 1: the app's web processes spend less CPU per answer than the peer's proxy.
    result["app_cpu_ratio"] = round(app_cpu / peer_cpu, 3) if app_cpu and peer_cpu else None
    if result["errors"] and not result["error"]:
        result["error"] = f"{result['errors']} of its messages failed: {result['errors_by_code']}"
    return result


def _purge_comparison(idle: dict[str, Any], during: dict[str, Any],
                      baseline: dict[str, Any] | None, purge: dict[str, Any]) -> dict[str, Any]:
    """The chat during the purge against the chat idle (overhead over the SDK when
    there is a baseline, the app's own latencies otherwise), and the purge's figures."""
    purge["deleted_as_expected"] = purge["messages"] == purge["expected_messages"]
    comparison: dict[str, Any] = {"app": during, "purge": purge, "ratio_to_idle": {},
                                  "ratio_basis": {}}
    for metric in ("ttft", "total"):
        for q in ("p50", "p95"):
            now, before = during[f"{metric}_ms"][q], idle[f"{metric}_ms"][q]
            basis = "latency"
            if baseline is not None:
                now_over = _difference(during, baseline, f"{metric}_ms", q)
                before_over = _difference(idle, baseline, f"{metric}_ms", q)
                comparison.setdefault("overhead_ms", {}).setdefault(metric, {})[q] = now_over
                comparison.setdefault("idle_overhead_ms", {}).setdefault(
                    metric, {})[q] = before_over
                # An idle overhead at or below zero is the baseline's noise (a busy
                # machine slowed the direct loop more than the app): a ratio to it means
                # nothing, so the app's own latencies are compared instead.
                if now_over is not None and before_over is not None and before_over > 0:
                    now, before, basis = now_over, before_over, "overhead"
            comparison["ratio_to_idle"].setdefault(metric, {})[q] = (
                round(now / before, 2) if now is not None and before else None)
            comparison["ratio_basis"].setdefault(metric, {})[q] = basis
    return comparison


def _fmt(value: Any, width: int = 9, digits: int = 1) -> str:
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, float):
        return f"{value:>{width}.{digits}f}"
    return f"{value:>{width}}"


def print_report(result: dict[str, Any]) -> None:
    """The human-readable table."""
    c = result["config"]
    load = ("closed loop" if c["mode"] == "closed"
            else f"open loop {c['rate_msg_s']:g} msg/s ({c['schedule']})")
    bound = (f"{c['messages']} messages" if c["messages"] is not None
             else f"{c['duration_s']:g} s")
    print()
    print(f"chat_bench preset={result['preset'] or 'custom'}: {c['sessions']} sessions, {load}, "
          f"{bound}, {c['token_delay_ms']:g} ms/token, {c['answer_tokens']} filler tokens, "
          f"{c['web_processes']} web process(es), db pooler {c['db_pooler']}, "
          f"{result['machine']['cpus']} CPUs")
    header = (f"{'':24}{'msgs':>7}{'errors':>8}{'msg/s':>9}{'TTFT p50':>10}{'TTFT p95':>10}"
              f"{'total p50':>11}{'total p95':>11}{'gen CPU':>9}")
    print(header)
    print("-" * len(header))
    peer = result.get("peer")
    peer_phase = peer if peer and "messages" in peer else None
    peer_label = f"{peer['name']} proxy {peer['version']}" if peer else ""
    rows = [("direct SDK (naive loop)", result["baseline"]), (peer_label[:23], peer_phase),
            ("app over WebSocket", result["app"])]
    for label, phase in rows:
        if phase is None:
            continue
        print(f"{label:24}{phase['messages']:>7}{phase['errors']:>8}"
              f"{_fmt(phase['throughput_msg_s'])}{_fmt(phase['ttft_ms']['p50'], 10)}"
              f"{_fmt(phase['ttft_ms']['p95'], 10)}{_fmt(phase['total_ms']['p50'], 11)}"
              f"{_fmt(phase['total_ms']['p95'], 11)}"
              f"{_fmt(phase['load_generator_cpu_cores'], 9, 2)}")
    overhead = result["overhead_ms"]
    if overhead:
        ratio = result["throughput_ratio"]
        print(f"{'overhead (app - SDK)':24}{'':15}{_fmt(ratio, 9, 2) if ratio else _fmt(None)}"
              f"{_fmt(overhead['ttft']['p50'], 10)}{_fmt(overhead['ttft']['p95'], 10)}"
              f"{_fmt(overhead['total']['p50'], 11)}{_fmt(overhead['total']['p95'], 11)}")
        print(f"{'':24}{'':15}{'(ratio)':>9}")
    if peer_phase and peer_phase.get("overhead_ms"):
        po, ratio = peer_phase["overhead_ms"], peer_phase.get("throughput_ratio")
        print(f"{'overhead (peer - SDK)':24}{'':15}{_fmt(ratio, 9, 2)}"
              f"{_fmt(po['ttft']['p50'], 10)}{_fmt(po['ttft']['p95'], 10)}"
              f"{_fmt(po['total']['p50'], 11)}{_fmt(po['total']['p95'], 11)}")
    if peer and peer.get("error"):
        print(f"peer {peer['name']}: {peer['error']}")
    during = result.get("during_purge")
    if during:
        phase = during["app"]
        print(f"{'app during the purge':24}{phase['messages']:>7}{phase['errors']:>8}"
              f"{_fmt(phase['throughput_msg_s'])}{_fmt(phase['ttft_ms']['p50'], 10)}"
              f"{_fmt(phase['ttft_ms']['p95'], 10)}{_fmt(phase['total_ms']['p50'], 11)}"
              f"{_fmt(phase['total_ms']['p95'], 11)}")
        purge_overhead = during.get("overhead_ms")
        if purge_overhead:
            print(f"{'overhead during purge':24}{'':24}"
                  f"{_fmt(purge_overhead['ttft']['p50'], 10)}"
                  f"{_fmt(purge_overhead['ttft']['p95'], 10)}"
                  f"{_fmt(purge_overhead['total']['p50'], 11)}"
                  f"{_fmt(purge_overhead['total']['p95'], 11)}")
        purge, ratio, basis = during["purge"], during["ratio_to_idle"], during["ratio_basis"]
        print(f"purge: {purge['messages']} messages ({purge['sessions']} sessions, expected "
              f"{purge['expected_messages']} messages) in {purge['seconds']} s "
              f"(command {purge['command_wall_s']} s) = "
              f"{purge['messages_per_s']} messages/s; during it / idle: "
              + "; ".join(f"{metric.upper() if metric == 'ttft' else metric} {q} "
                          f"{ratio[metric][q]}x ({basis[metric][q]})"
                          for metric in ("ttft", "total") for q in ("p50", "p95")))
    app = result["app"]
    server, conn = app["server"], app["connections"]
    print(f"accepted {result['accepted']}  stored {result['stored']}  lost {result['lost']}  "
          f"errors {result['errors']} {app['errors_by_code'] or ''}  "
          f"skipped (busy) {app['skipped_busy']}")
    if result["baseline"] and result["baseline"].get("resources"):
        res = result["baseline"]["resources"]
        print(f"baseline phase: machine busy {res['machine_busy_cores']} cores; "
              + ", ".join(f"{k} {v}" for k, v in res["other_cpu_cores"].items()))
    print(f"app phase: machine busy {server['machine_busy_cores']} cores; other processes (cores): "
          + ", ".join(f"{k} {v}" for k, v in server["other_cpu_cores"].items()))
    if result["baseline"]:
        peer_cpu = (f"{peer_label} ({peer['workers']} workers) "
                    f"{peer_phase['server_cpu_ms_per_message']} ms, " if peer_phase else "")
        print(f"CPU per message: app (web processes) {app['server_cpu_ms_per_message']} ms, "
              f"{peer_cpu}naive SDK loop {result['baseline']['sdk_cpu_ms_per_message']} ms")
    if peer_phase:
        ps = peer_phase["server"]
        print(f"peer phase: machine busy {ps['machine_busy_cores']} cores; proxy CPU "
              f"{ps['cpu_cores']} cores, RSS peak {ps['peak_rss_mib']} MiB "
              f"({len(ps['processes'])} processes); app CPU per answer / peer's: "
              f"{peer_phase['app_cpu_ratio']}")
    print(f"server: CPU {server['cpu_cores']} cores over {server['wall_s']} s, RSS "
          f"{server['rss_mib']} MiB (peak {server['peak_rss_mib']}); connections "
          f"{conn['opened']} opened in {conn['connect_s']} s, "
          f"{conn['rss_per_connection_kib']} KiB each idle, failed {conn['failed'] or 0}")
    limits = result.get("limits")
    if limits:
        files, pg = limits["open_files"], limits["postgres_connections"]
        print(f"limits: open files {files['limit']} (harness needs {files['harness_needs']}); "
              f"PostgreSQL {pg['free']} connections free, {pg['needed']} needed "
              f"({pg['db_threads_per_process']} database threads per web process); Redis "
              f"{limits['redis_clients']['free']} clients free; ephemeral ports "
              f"{limits['ephemeral_ports']['range']}; somaxconn {limits['listen_backlog_max']}")
    split = app.get("ttft_split_ms")
    if split:
        print(f"app TTFT split p50/p95: ack {split['ack']['p50']}/{split['ack']['p95']} ms, "
              f"accept+transport "
              f"{split['accept_and_transport']['p50']}/{split['accept_and_transport']['p95']} ms, "
              f"server first token {split['server_first_token']['p50']}/"
              f"{split['server_first_token']['p95']} ms")
    db_load = server.get("database", {}).get("per_message")
    if db_load:
        print("database per message: " + ", ".join(f"{k} {v}" for k, v in db_load.items()))
    for profile in result["profile"] or []:
        print(f"profile {profile['file']}:")
        for view in ("event_loop", "worker_threads"):
            part = profile.get(view)
            if not part:
                continue
            print(f" {view}: busy {part['busy_s']} s, idle {part['idle_s']} s; top self time:")
            for row in part["self"][:12]:
                print(f"  {row['percent']:5.1f}%  {row['function']}")
            print("  by area: " + ", ".join(f"{r['area']} {r['percent']}%"
                                            for r in part["self_by_area"][:10]))
    for target in result["targets"]:
        verdict = {True: "MET", False: "MISSED", None: "n/a"}[target["met"]]
        print(f"target {target['target']}: {target['value']} -> {verdict}")


def code_version() -> str | None:
    """The commit measured, "+modified" when the app's code differs from it (None without git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
                              cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
        paths = ["chat", "compliance", "monitoring", "neonpro"]
        changed = subprocess.run(["git", "status", "--porcelain", "--", *paths],  # noqa: S603,S607
                                 cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+modified" if changed.stdout.strip() else "")


def default_output(preset: str | None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return RESULTS_DIR / f"{stamp}-{preset or 'custom'}.json"


def raise_open_files_limit() -> int:
    """Thousands of sockets need more than the usual 1,024 descriptors (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def install_peer(args: argparse.Namespace, setup_s: dict[str, float]) -> None:
    """With --peer, install (first time) or find the peer's proxy before anything else:
    a failure is noted in `args.peer_error` and the run goes on without the peer."""
    args.peer_executable, args.peer_error = None, None
    if not args.peer:
        return
    venv = Path(args.peer_venv)
    print(f"peer: litellm[proxy]=={peer_gateway.LITELLM_VERSION} in "
          f"{peer_gateway.venv_label(venv)} (installed on first use)", flush=True)
    mark = time.monotonic()
    try:
        args.peer_executable = peer_gateway.ensure_litellm(venv=venv)
    except peer_gateway.PeerError as exc:
        args.peer_error = str(exc)
        print(f"peer: {exc}\nthe run goes on without the peer", file=sys.stderr, flush=True)
    setup_s["peer_install"] = time.monotonic() - mark


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop subprocesses


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark; see the module docstring."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C stops the run even when started from a shell that ignores it for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for url, what in ((args.database_url, "--database-url"), (args.redis_url, "--redis-url")):
        _require_loopback(url, what)
    limit = raise_open_files_limit()
    work_dir = Path(tempfile.mkdtemp(prefix="neonpro-chat-bench-"))
    procs = Subprocesses(work_dir)
    ok = False
    try:
        setup_s: dict[str, float] = {}
        install_peer(args, setup_s)
        started = time.monotonic()
        sim_url = start_simulator(procs, args)
        env = app_env(args, sim_url, work_dir)
        os.environ.clear()
        os.environ.update(env)
        setup_s["database"] = prepare_database(args.database_url, env)
        flush_redis(args.redis_url)
        import django

        django.setup()
        from django.conf import settings

        try:
            db_threads = int(args.app_settings.get("AI_DB_THREADS", settings.AI_DB_THREADS))
        except ValueError:
            raise SetupError("--app-setting AI_DB_THREADS needs a whole number") from None
        # Before creating thousands of clinicians: a limit that is too low fails now.
        args.limits = check_connection_limits(
            args, open_files=limit, db_threads=db_threads,
            postgres=_postgres_room(args.database_url), redis_clients=_redis_room(args.redis_url),
            port_range=_port_range())
        mark = time.monotonic()
        tag = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
        seats = create_population(args.sessions, tag)
        setup_s["population"] = time.monotonic() - mark
        for seat in seats:
            seat.server = seat.index % args.web_processes
        purge_data: dict[str, Any] = {}
        if args.purge_messages:
            from benchmarks.retention_data import fill_expired_sessions

            mark = time.monotonic()
            expected = fill_expired_sessions(sessions=args.purge_messages // 10, per_session=10,
                                             recent_share=0.0, held=20, progress=False)
            from django.db import connection

            # Rows past retention are a year old: vacuumed and analysed long ago, not
            # freshly loaded with stale planner statistics and unset hint bits.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            setup_s["purge_data"] = time.monotonic() - mark
            purge_data = {"expected_messages": expected["messages"],
                          "expected_sessions": expected["sessions"]}
        web_env = {**env, **args.app_settings}
        if args.db_pooler == "pgbouncer":
            web_env["DATABASE_URL"] = start_pgbouncer(procs, args.database_url)
        mark = time.monotonic()
        servers = start_web(procs, web_env, args.web_processes)
        setup_s["web_start"] = time.monotonic() - mark
        setup_s["total"] = time.monotonic() - started
        print(f"set up in {setup_s['total']:.0f} s (database {setup_s['database']:.0f} s, "
              f"{args.sessions} sessions {setup_s['population']:.0f} s)", flush=True)

        measured = asyncio.run(measure(args, seats, servers, procs, sim_url,
                                       purge_env=web_env))
        measured["purge_data"] = purge_data

        from django.db import connection

        accepted = measured["stats"].accepted | measured["warmup"].accepted
        if measured["during_purge"]:
            accepted |= measured["during_purge"]["stats"].accepted
        db = stored_answers([s.session_id for s in seats], accepted)
        connection.close()
        from simulated_provider.control import SimulatedProviderControl

        sim_stats = SimulatedProviderControl(sim_url).stats()
        result = build_result(args, measured, db, setup_s, sim_stats)
        output = Path(args.output) if args.output else default_output(args.preset)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print_report(result)
        print(f"results: {output}")
        ok = result["errors"] == 0 and result["lost"] == 0 and result["messages"] > 0
        if ok and args.peer and (result["peer"] is None or result["peer"]["error"]):
            ok = False  # keeps the logs: the peer's says why it failed
            return 3
        return 0 if ok else 1
    except SetupError as exc:
        print(f"benchmark set-up failed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if ok and not args.keep_logs:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:
            print(f"subprocess logs: {work_dir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
