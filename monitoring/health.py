"""Live health of NeonPro AI Chat: the figures behind the health endpoints.

Every figure is measured when asked, never configured or remembered:

- database: round trip of ``SELECT 1`` and, on PostgreSQL, the client
  connections of the current database in ``pg_stat_activity`` (active, idle,
  total); ``null`` connection counts on SQLite, which has no such view;
- AI providers: status and response time from live traffic plus the cached
  light probe (``GET models``, ~30 s across processes, never a paid
  completion); quota remaining from the rate-limit headers the provider sent
  last (``chat.providers.router``);
- cache: a set/get round trip; on Redis also the hit rate (``keyspace_hits`` /
  ``keyspace_misses``) and ``used_memory_human`` from ``INFO``; ``null`` for
  both on the local-memory cache;
- activity (window: the last 5 minutes): active sessions, user messages stored
  in the last minute, average answer time and first-token latency of the
  completed answers, failed answers / all finished answers.

Checks run concurrently, each in a worker thread, and the caller waits
for at most ``HEALTH_CHECK_TIMEOUT`` seconds (default 2): a hanging dependency
is reported as failed ("timeout") instead of hanging the endpoint. A check
still running from an earlier call is joined, not started again, so a hanging
dependency never piles up threads.

Status rules
------------
``/api/health`` (HTTP 503 when unhealthy):

- unhealthy: the database is unreachable or its check timed out; or the cache
  is unreachable while ``REDIS_URL`` is configured (the channel layer, rate
  limits, circuit breakers and Celery all need Redis).
- degraded: a configured AI provider is not healthy (down, circuit open or
  half-open, rate limited, or no evidence either way) — even both providers
  down is "degraded" here, because everything else still works and clinicians
  get a clean ``provider_unavailable``; the database is slow (``SELECT 1`` over
  500 ms); the cache is slow (a get over 100 ms) or the local cache fails;
  more than 5 % of the answers in the window failed; the activity figures
  could not be read in time.
- healthy otherwise.

``/api/v1/ai-chat/health`` (HTTP 503 when unavailable), in the vocabulary of
`docs/contract/deployment.md`:

- unavailable: the database is down; Redis is down while configured; no
  provider is configured, or every configured provider is unhealthy (open
  circuit, failed probe); PII redaction is enabled but its self-test fails
  (the chat fails closed, so nothing could be sent).
- degraded: a provider is not healthy (no failover spare) or none could be
  confirmed in time; more than 5 % of the answers failed; session utilisation
  is at 90 % or more; the database or the cache is slow.
- operational otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import functools
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import Avg, Count, Q
from django.utils import timezone

from chat.models import ChatMessage
from chat.providers.config import provider_config
from chat.selectors import active_session_count
from compliance import redaction
from monitoring.metrics import DB_CONNECTION_FAILURES
from neonpro.blocking import submit_isolated
from neonpro.cache import redis_client

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 2.0
ACTIVITY_WINDOW = dt.timedelta(minutes=5)
ERROR_RATE_DEGRADED = 0.05
DB_SLOW_MS = 500.0
CACHE_SLOW_MS = 100.0
UTILIZATION_DEGRADED_PERCENT = 90.0
# A synthetic CPF with valid check digits: the redaction self-test must replace it.
_REDACTION_PROBE_CPF = "529.982.247-25"
_REDACTION_PROBE = f"Paciente com CPF {_REDACTION_PROBE_CPF} retorna amanhã."

HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN = "healthy", "degraded", "unhealthy", "unknown"
OPERATIONAL, UNAVAILABLE = "operational", "unavailable"


# --- The providers' reporting, loaded on first use -------------------------------------------
# This module is imported at start-up in every process (the metrics collector is
# installed from MonitoringConfig.ready()). The providers' reporting loads both SDKs
# (~1.1 s): a worker, beat or a management command that never reports on the
# providers starts without them.


def provider_reporting():
    """chat.providers.reporting, imported on first use (see above)."""
    from chat.providers import reporting

    return reporting


# --- Running checks with a bound ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckFailed:
    """A check that raised or did not finish in time (``reason``: "timeout" or "error")."""

    reason: str
    error: str | None = None


# Each dependency has at most one check in flight per process (see `_submit`), on
# threads of their own (neonpro.blocking.submit_isolated), so a hanging dependency
# holds one thread per kind of check and none the chat needs.
_inflight: dict[tuple[str, str], concurrent.futures.Future] = {}
_inflight_lock = threading.Lock()


def check_timeout() -> float:
    """Seconds a caller waits for the checks (setting HEALTH_CHECK_TIMEOUT, default 2)."""
    return float(getattr(settings, "HEALTH_CHECK_TIMEOUT", DEFAULT_TIMEOUT_S))


def _submit(name: str, function: Callable[[], Any], *, fingerprint: str = "") -> (
        concurrent.futures.Future):
    """Start `function` in a worker thread, or join the same check still running.

    `fingerprint` names the configuration the check depends on: a check started
    against another database or cache is never joined.
    """
    key = (name, fingerprint)
    with _inflight_lock:
        future = _inflight.get(key)
        if future is None or future.done():
            for stale in [k for k, f in _inflight.items() if f.done()]:
                del _inflight[stale]
            future = submit_isolated(function)
            _inflight[key] = future
        return future


def _outcome(future: concurrent.futures.Future | asyncio.Future) -> Any:
    if future.cancelled():
        return CheckFailed("timeout")
    error = future.exception()
    if error is not None:
        return CheckFailed("error", type(error).__name__)
    return future.result()


Job = Callable[[], Any]


async def gather_bounded(jobs: dict[str, tuple[Job, str]], timeout: float) -> dict[str, Any]:
    """Run jobs concurrently in worker threads; each result, or `CheckFailed`, within `timeout` s.

    `jobs` maps a name to (function, fingerprint). Nothing runs on the event
    loop or its default executor, so a hanging dependency can hold neither.
    """
    futures = {
        name: asyncio.wrap_future(_submit(name, function, fingerprint=fingerprint))
        for name, (function, fingerprint) in jobs.items()
    }
    if futures:
        await asyncio.wait(futures.values(), timeout=timeout)
    results = {}
    for name, future in futures.items():
        if not future.done():
            # Only our wrapper is cancelled: a thread keeps running to its end (and
            # is joined by the next call); a queued one is dropped.
            future.cancel()
            results[name] = CheckFailed("timeout")
        else:
            results[name] = _outcome(future)
    _log_failures(results)
    return results


def run_bounded(jobs: dict[str, tuple[Callable[[], Any], str]], timeout: float) -> dict[str, Any]:
    """`gather_bounded` for synchronous callers (plain functions only)."""
    futures = {name: _submit(name, function, fingerprint=fingerprint)
               for name, (function, fingerprint) in jobs.items()}
    concurrent.futures.wait(futures.values(), timeout=timeout)
    results = {}
    for name, future in futures.items():
        results[name] = _outcome(future) if future.done() else CheckFailed("timeout")
    _log_failures(results)
    return results


def _log_failures(results: dict[str, Any]) -> None:
    for name, result in results.items():
        if isinstance(result, CheckFailed):
            # The exception's type only: messages of database drivers can quote values.
            logger.warning("health check failed", extra={
                "event": "health_check_failed",
                "metadata": {"check": name, "reason": result.reason, "error": result.error},
            })


def db_fingerprint() -> str:
    """What the database checks depend on (see `_submit`)."""
    db = connections["default"].settings_dict
    return f"{db.get('ENGINE')}|{db.get('HOST')}|{db.get('PORT')}|{db.get('NAME')}"


def cache_fingerprint() -> str:
    """What the cache checks depend on (see `_submit`)."""
    return repr(settings.CACHES.get("default"))


# --- Database ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    response_time_ms: float
    active: int | None
    idle: int | None
    total: int | None


_PG_CONNECTIONS = """
    SELECT count(*) FILTER (WHERE state = 'active'),
           count(*) FILTER (WHERE state = 'idle'),
           count(*)
      FROM pg_stat_activity
     WHERE datname = current_database() AND backend_type = 'client backend'
"""


def _connect():
    connection = connections["default"]
    try:
        connection.ensure_connection()
    except (OperationalError, InterfaceError):
        DB_CONNECTION_FAILURES.inc()
        raise
    return connection


def ping_database() -> bool:
    """SELECT 1 on the default database; raises when it cannot be reached."""
    with _connect().cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return True


def database_check() -> DatabaseHealth:
    """Round trip of SELECT 1 and, on PostgreSQL, the database's client connections."""
    from django.db import DatabaseError

    connection = _connect()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("SELECT 1")
        cursor.fetchone()
        response_time_ms = (time.perf_counter() - started) * 1000
    if connection.vendor != "postgresql":
        return DatabaseHealth(round(response_time_ms, 2), None, None, None)
    try:
        # SET LOCAL: behind PgBouncer (transaction pooling) a session-level SET
        # would leak into another client's transaction.
        with transaction.atomic(using="default"), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 2000")
            cursor.execute(_PG_CONNECTIONS)
            active, idle, total = cursor.fetchone()
    except DatabaseError:
        # The database answers; only the statistics view is unavailable (permissions).
        return DatabaseHealth(round(response_time_ms, 2), None, None, None)
    return DatabaseHealth(round(response_time_ms, 2), active, idle, total)


def _database_json(result: Any) -> dict[str, Any]:
    if isinstance(result, CheckFailed):
        return {"status": UNHEALTHY, "responseTime": None,
                "connections": {"active": None, "idle": None, "total": None}}
    return {
        "status": DEGRADED if result.response_time_ms > DB_SLOW_MS else HEALTHY,
        "responseTime": result.response_time_ms,
        "connections": {"active": result.active, "idle": result.idle, "total": result.total},
    }


# --- Cache ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheHealth:
    round_trip_ms: float
    hit_rate: float | None
    memory_usage: str | None


def cache_check() -> CacheHealth:
    """A set/get round trip, and on Redis the hit rate and memory from INFO."""
    key = f"monitoring:health:{uuid.uuid4().hex}"
    nonce = uuid.uuid4().hex
    cache.set(key, nonce, timeout=10)  # also opens the connection, which is not timed
    started = time.perf_counter()
    echoed = cache.get(key)
    round_trip_ms = (time.perf_counter() - started) * 1000
    cache.delete(key)
    if echoed != nonce:
        raise RuntimeError("cache did not return the value just stored")
    client = redis_client()
    if client is None:
        return CacheHealth(round(round_trip_ms, 2), None, None)
    stats = client.info("stats")
    memory = client.info("memory")
    hits, misses = int(stats.get("keyspace_hits", 0)), int(stats.get("keyspace_misses", 0))
    hit_rate = round(hits / (hits + misses), 4) if hits + misses else None
    used = memory.get("used_memory_human")
    # Redis writes "156.00M"; `docs/contract/deployment.md` shows "156MB".
    memory_usage = f"{used}B" if used and used[-1] in "KMGTP" else used
    return CacheHealth(round(round_trip_ms, 2), hit_rate, memory_usage)


def _redis_required() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def _cache_json(result: Any) -> dict[str, Any]:
    if isinstance(result, CheckFailed):
        return {"status": UNHEALTHY, "hitRate": None, "memoryUsage": None}
    return {
        "status": DEGRADED if result.round_trip_ms > CACHE_SLOW_MS else HEALTHY,
        "hitRate": result.hit_rate,
        "memoryUsage": result.memory_usage,
    }


# --- Chat activity ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Activity:
    active_sessions: int
    requests_per_minute: int
    average_response_time_ms: float | None
    streaming_latency_ms: float | None
    answers: int
    failed: int

    @property
    def error_rate(self) -> float | None:
        """Failed answers / finished answers in the window; None without answers."""
        return round(self.failed / self.answers, 4) if self.answers else None

    @property
    def success_rate_percent(self) -> float | None:
        rate = self.error_rate
        return None if rate is None else round((1 - rate) * 100, 2)


def chat_activity(*, now: dt.datetime | None = None) -> Activity:
    """Sessions, request rate, answer times and failures, from the stored messages."""
    now = now or timezone.now()
    requests_per_minute = ChatMessage.objects.filter(
        role=ChatMessage.Role.USER, created_at__gte=now - dt.timedelta(minutes=1)
    ).count()
    complete = Q(status=ChatMessage.Status.COMPLETE)
    figures = (
        ChatMessage.objects.filter(role=ChatMessage.Role.ASSISTANT,
                                   created_at__gte=now - ACTIVITY_WINDOW)
        # An answer still streaming has no outcome yet.
        .exclude(status=ChatMessage.Status.STREAMING)
        .aggregate(
            answers=Count("id"),
            failed=Count("id", filter=Q(status=ChatMessage.Status.FAILED)),
            latency=Avg("latency_ms", filter=complete),
            first_token=Avg("first_token_ms", filter=complete),
        )
    )
    return Activity(
        active_sessions=active_session_count(),
        requests_per_minute=requests_per_minute,
        average_response_time_ms=_round(figures["latency"]),
        streaming_latency_ms=_round(figures["first_token"]),
        answers=figures["answers"],
        failed=figures["failed"],
    )


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


# --- Compliance -------------------------------------------------------------------------


def redaction_self_test() -> bool:
    """Whether the redactor the chat uses replaces a synthetic CPF right now."""
    result = redaction.redact(_REDACTION_PROBE, mapping={})
    return _REDACTION_PROBE_CPF not in result.text


def _pii_policy() -> dict[str, str]:
    """Entity type -> tag/surrogate/block as PII_POLICY sets it (validated at start-up)."""
    return dict(redaction.active_policy())


# --- AI providers -----------------------------------------------------------------------


def provider_check(name: str) -> dict[str, Any]:
    """Router status of `name` after making sure its light probe is fresh (blocking).

    The probe runs on an event loop of this worker thread: when the caller
    stops waiting, the probe still finishes and is cached (~30 s) for the next
    check instead of being abandoned and started again.
    """
    try:
        asyncio.run(provider_reporting().probe_provider(name))
    except Exception:  # the status below still reports live traffic and the circuit
        logger.warning("provider probe failed", exc_info=True,
                       extra={"event": "provider_probe_failed", "metadata": {"provider": name}})
    return provider_reporting().provider_status(name)


def _provider_fingerprint(name: str) -> str:
    cfg = provider_config(name)
    if cfg is None:
        return "not_configured"
    key_digest = hashlib.sha256(cfg.api_key.encode()).hexdigest()[:12]
    return f"{cfg.base_url}|{cfg.model}|{key_digest}|{cache_fingerprint()}"


def _provider_response_time(status: dict[str, Any]) -> float | None:
    # Time to first token is the provider's responsiveness; a whole answer's time
    # depends on its length. Without a recent success, the probe's round trip.
    if status.get("last_outcome") == "success" and status.get("first_token_ms") is not None:
        live_at = status.get("last_seen_at") or ""
        probe = status.get("probe") or {}
        if not probe.get("checked_at") or live_at >= probe["checked_at"]:
            return status["first_token_ms"]
    probe = status.get("probe") or {}
    if probe.get("response_time_ms") is not None:
        return probe["response_time_ms"]
    return status.get("response_time_ms")


def _provider_json(result: Any) -> dict[str, Any]:
    if isinstance(result, CheckFailed):
        return {"status": UNKNOWN, "responseTime": None, "quotaRemaining": None}
    quota = result.get("quota") or {}
    return {
        "status": result.get("status") or UNKNOWN,
        "responseTime": _provider_response_time(result),
        "quotaRemaining": quota.get("tokens_remaining"),
    }


def _configured_providers() -> list[str]:
    return list(provider_reporting().configured_providers())


# --- The two reports ----------------------------------------------------------------------


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _summary(status: str) -> dict[str, Any]:
    return {"status": status, "timestamp": _now_iso(), "version": settings.APP_VERSION}


def _common_jobs() -> dict[str, tuple[Job, str]]:
    return {
        "database": (database_check, db_fingerprint()),
        "cache": (cache_check, cache_fingerprint()),
        "activity": (chat_activity, db_fingerprint()),
    }


def _provider_jobs(names: list[str]) -> dict[str, tuple[Job, str]]:
    return {
        f"provider:{name}": (functools.partial(provider_check, name), _provider_fingerprint(name))
        for name in names
    }


def _cache_failed(cache_json: dict[str, Any]) -> bool:
    return cache_json["status"] == UNHEALTHY


def _status_level(*, database: dict, cache_json: dict, providers: dict[str, dict],
                  activity: Any, down: bool = False, strained: bool = False) -> str:
    """The one rule set both reports use: HEALTHY, DEGRADED or UNHEALTHY.

    Unhealthy when the database is, or Redis where it is required, or for a
    report's own reason (`down`); degraded when any dependency is less than
    healthy, the activity figures are missing, errors exceed 5 %, or for a
    report's own reason (`strained`).
    """
    if database["status"] == UNHEALTHY or down:
        return UNHEALTHY
    if _cache_failed(cache_json) and _redis_required():
        return UNHEALTHY
    degraded = (
        strained
        or database["status"] != HEALTHY
        or cache_json["status"] != HEALTHY
        or any(p["status"] != HEALTHY for p in providers.values())
        or isinstance(activity, CheckFailed)
        or (activity.error_rate or 0) > ERROR_RATE_DEGRADED
    )
    return DEGRADED if degraded else HEALTHY


def system_status(*, database: dict, cache_json: dict, providers: dict[str, dict],
                  activity: Any) -> str:
    """healthy / degraded / unhealthy from the shaped check results (rules above)."""
    return _status_level(database=database, cache_json=cache_json, providers=providers,
                         activity=activity)


async def system_health(*, details: bool) -> tuple[dict[str, Any], int]:
    """The body and HTTP status of /api/health."""
    names = _configured_providers()
    results = await gather_bounded({**_common_jobs(), **_provider_jobs(names)},
                                   check_timeout())
    database = _database_json(results["database"])
    cache_json = _cache_json(results["cache"])
    providers = {name: _provider_json(results[f"provider:{name}"]) for name in names}
    activity = results["activity"]
    status = system_status(database=database, cache_json=cache_json, providers=providers,
                           activity=activity)
    http_status = 503 if status == UNHEALTHY else 200
    if not details:
        return _summary(status), http_status
    failed = isinstance(activity, CheckFailed)
    body = {
        **_summary(status),
        "environment": settings.ENVIRONMENT,
        "services": {"database": database, "aiProviders": providers, "cache": cache_json},
        "metrics": {
            "activeSessions": None if failed else activity.active_sessions,
            "requestsPerMinute": None if failed else activity.requests_per_minute,
            "averageResponseTime": None if failed else activity.average_response_time_ms,
            "errorRate": None if failed else activity.error_rate,
        },
    }
    return body, http_status


def _failover_ready() -> bool:
    return provider_reporting().failover_ready()


def failover_ready_verdict(*, configured: Any, providers: dict[str, dict]) -> bool:
    """`providerStatus.failoverReady`: could the secondary answer if the primary failed now?

    The router's answer (a distinct secondary is configured and its circuit is not
    open) says nothing about a secondary nobody has called lately, so the live probe of
    this very report must also find it not unhealthy; with both providers down (or
    the secondary alone), failing over would not help, and the answer is false.
    """
    if configured is not True:  # False, or the check failed or timed out
        return False
    secondary = (settings.AI_SECONDARY_PROVIDER or "").strip().lower()
    probe = providers.get(secondary)
    return probe is not None and probe["status"] != UNHEALTHY


# The AI chat report's words for the same three levels (the deployment document's).
_AI_CHAT_STATUS = {HEALTHY: OPERATIONAL, DEGRADED: DEGRADED, UNHEALTHY: UNAVAILABLE}


def ai_chat_status(*, database: dict, cache_json: dict, providers: dict[str, dict],
                   activity: Any, redaction_ok: Any, utilization: float | None) -> str:
    """operational / degraded / unavailable from the shaped check results (rules above).

    The system report's rules, plus: unavailable when no provider can answer or the
    redaction self-test fails; degraded from 90 % of session capacity.
    """
    down = (not providers or all(p["status"] == UNHEALTHY for p in providers.values())
            or (settings.PII_REDACTION_ENABLED and redaction_ok is False))
    strained = (utilization or 0) >= UTILIZATION_DEGRADED_PERCENT
    return _AI_CHAT_STATUS[_status_level(
        database=database, cache_json=cache_json, providers=providers, activity=activity,
        down=down, strained=strained)]


# The last self-test verdict of this process: a self-test that is merely slow
# (first use loads the detectors) keeps the previous verdict instead of
# declaring the chat unavailable.
_last_redaction_ok: bool | None = None


def _redaction_verdict(result: Any) -> bool:
    global _last_redaction_ok
    if not settings.PII_REDACTION_ENABLED:
        return False
    if isinstance(result, CheckFailed):
        if result.reason == "timeout":
            return _last_redaction_ok if _last_redaction_ok is not None else True
        _last_redaction_ok = False
        return False
    _last_redaction_ok = bool(result)
    return _last_redaction_ok


async def ai_chat_health(*, details: bool) -> tuple[dict[str, Any], int]:
    """The body and HTTP status of /api/v1/ai-chat/health."""
    names = _configured_providers()
    jobs = {
        **_common_jobs(),
        **_provider_jobs(names),
        "failover": (_failover_ready, cache_fingerprint()),
        "redaction": (redaction_self_test, str(settings.PII_REDACTION_ENABLED)),
    }
    results = await gather_bounded(jobs, check_timeout())
    activity = results["activity"]
    maximum = int(settings.AI_SESSION_CAPACITY)
    current = None if isinstance(activity, CheckFailed) else activity.active_sessions
    utilization = round(current / maximum * 100, 2) if current is not None and maximum else None
    providers = {name: _provider_json(results[f"provider:{name}"]) for name in names}
    redaction_ok = _redaction_verdict(results["redaction"])
    status = ai_chat_status(
        database=_database_json(results["database"]), cache_json=_cache_json(results["cache"]),
        providers=providers, activity=activity, redaction_ok=redaction_ok,
        utilization=utilization,
    )
    http_status = 503 if status == UNAVAILABLE else 200
    if not details:
        return _summary(status), http_status
    failed = isinstance(activity, CheckFailed)
    body = {
        "status": status,
        "sessionCapacity": {"current": current, "maximum": maximum,
                            "utilizationPercent": utilization},
        "providerStatus": {
            "primary": settings.AI_PRIMARY_PROVIDER,
            "secondary": settings.AI_SECONDARY_PROVIDER,
            "failoverReady": failover_ready_verdict(configured=results["failover"],
                                                    providers=providers),
        },
        "compliance": {
            "piiRedactionActive": redaction_ok,
            "auditLoggingActive": bool(settings.AUDIT_LOGGING_ENABLED),
            "consentValidationActive": bool(settings.CONSENT_VALIDATION_ENABLED),
            "piiPolicy": _pii_policy(),
        },
        "performance": {
            "averageResponseTime": None if failed else activity.average_response_time_ms,
            "streamingLatency": None if failed else activity.streaming_latency_ms,
            "successRate": None if failed else activity.success_rate_percent,
        },
    }
    return body, http_status


# --- Orchestrator probes ------------------------------------------------------------------


def _ping_cache() -> bool:
    key = f"monitoring:ready:{uuid.uuid4().hex}"
    cache.set(key, 1, timeout=10)
    ok = cache.get(key) == 1
    cache.delete(key)
    if not ok:
        raise RuntimeError("cache did not return the value just stored")
    return True


async def readiness() -> tuple[dict[str, Any], int]:
    """Whether this process can serve: database and cache (Redis) reachable."""
    results = await gather_bounded(
        {"ready:database": (ping_database, db_fingerprint()),
         "ready:cache": (_ping_cache, cache_fingerprint())},
        check_timeout(),
    )
    checks = {name.split(":", 1)[1]: "ok" if result is True else "failed"
              for name, result in results.items()}
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "not_ready", "timestamp": _now_iso(),
            "version": settings.APP_VERSION, "checks": checks}
    return body, 200 if ready else 503
