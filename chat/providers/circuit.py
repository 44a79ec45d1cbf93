"""Per-provider circuit breaker, its state in the shared cache (Redis in production).

Closed: requests flow and failures are counted; AI_CIRCUIT_FAILURE_THRESHOLD
failures within AI_CIRCUIT_WINDOW seconds open it. A key problem (401/403) or a
429 that says when to come back opens it at once. Open: the provider is
skipped without a request until the cool-down (AI_CIRCUIT_COOLDOWN, or the
provider's retry-after) has passed. Half-open: exactly one request, in all web
processes together, is let through as the probe (`cache.add` is the atomic
lock); its success closes the circuit, its failure opens it again.

The functions here are blocking cache calls; the router runs them in worker
threads. If the cache itself fails, the breaker steps aside (everything is
allowed) rather than taking the chat down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache

from monitoring.metrics import PROVIDER_CIRCUIT_STATE

from .base import ERROR_CODES

logger = logging.getLogger(__name__)

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
_GAUGE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
# Failures that say something about the provider's health. A 400 we caused, or a
# prompt too long for this model, does not.
COUNTED_CODES = ERROR_CODES - {"bad_request", "context_length"}
# How long an open record outlives its cool-down when no probe comes to close it.
_OPEN_RECORD_GRACE_S = 3600
_CACHE_BACKOFF_S = 5.0

# Wall-clock seconds; replaceable (tests move time instead of sleeping). Every
# process must read the same clock because open-until times are shared.
clock: Callable[[], float] = time.time

_T = TypeVar("_T")
_cache_down_until = 0.0


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a request may go to a provider now, and whether it is the half-open probe."""

    allowed: bool
    probe: bool = False
    retry_in: float | None = None  # seconds until the provider may be tried again


def _key(name: str, part: str) -> str:
    return f"ai:circuit:{name}:{part}"


def guarded(default: _T, operation: Callable[[], _T]) -> _T:
    """Run a cache operation; on a cache outage return `default` and back off for a while."""
    global _cache_down_until
    if time.monotonic() < _cache_down_until:
        return default
    try:
        return operation()
    except Exception:
        _cache_down_until = time.monotonic() + _CACHE_BACKOFF_S
        logger.warning("provider state cache unavailable; circuit breaker bypassed", exc_info=True)
        return default


def _set_gauge(name: str, state: str) -> None:
    PROVIDER_CIRCUIT_STATE.labels(provider=name).set(_GAUGE_VALUE[state])


def admit(name: str, *, lock_ttl_s: float) -> Admission:
    """Decide whether a request may go to provider `name` now (blocking cache calls)."""

    def operation() -> Admission:
        record = cache.get(_key(name, "open"))
        if record is None:
            return Admission(allowed=True)
        now = clock()
        until = float(record.get("until", 0))
        if now < until:
            _set_gauge(name, OPEN)
            return Admission(allowed=False, retry_in=until - now)
        if cache.add(_key(name, "probe"), now, timeout=max(1, math.ceil(lock_ttl_s))):
            _set_gauge(name, HALF_OPEN)
            return Admission(allowed=True, probe=True)
        # Another request, maybe in another process, is probing right now.
        return Admission(allowed=False)

    return guarded(Admission(allowed=True), operation)


def record_success(name: str, *, probe: bool) -> None:
    """A request to `name` succeeded: a successful probe closes the circuit."""
    if not probe:
        return

    def operation() -> None:
        cache.delete_many(
            [
                _key(name, "open"),
                _key(name, "failures"),
                _key(name, "failures_since"),
                _key(name, "probe"),
            ]
        )
        _set_gauge(name, CLOSED)
        logger.info(
            "circuit closed", extra={"event": "circuit_closed", "metadata": {"provider": name}}
        )

    guarded(None, operation)


def record_failure(name: str, *, code: str, retry_after: float | None, probe: bool) -> str:
    """A request to `name` failed with `code`; returns the circuit state it leaves."""

    def operation() -> str:
        if code not in COUNTED_CODES:
            if probe:
                # The probe proved nothing either way; let the next request probe.
                cache.delete(_key(name, "probe"))
            return HALF_OPEN if probe else CLOSED
        if probe or code == "auth" or (code == "rate_limited" and retry_after):
            _open(name, code=code, retry_after=retry_after)
            return OPEN
        failures = _count_failure(name)
        if failures >= int(settings.AI_CIRCUIT_FAILURE_THRESHOLD):
            _open(name, code=code, retry_after=retry_after)
            return OPEN
        return CLOSED

    return guarded(CLOSED, operation)


def _count_failure(name: str) -> int:
    """Count a failure in the current window; the window starts at its first failure."""
    failures_key, since_key = _key(name, "failures"), _key(name, "failures_since")
    window = float(settings.AI_CIRCUIT_WINDOW)
    ttl = max(1, math.ceil(window)) + 1
    now = clock()
    since = cache.get(since_key)
    if since is None or now - since >= window:
        # A new window. Two processes may both start one at the same moment and a
        # failure can go uncounted: a breaker may trip one failure late, never early.
        cache.set_many({since_key: now, failures_key: 0}, timeout=ttl)
    try:
        return cache.incr(failures_key)
    except ValueError:
        # The counter expired between the two calls: this failure opens a new window.
        cache.set_many({since_key: now, failures_key: 1}, timeout=ttl)
        return 1


def _open(name: str, *, code: str, retry_after: float | None) -> None:
    cooldown = float(settings.AI_CIRCUIT_COOLDOWN)
    if retry_after is not None and code == "rate_limited":
        # The provider said when to come back; that beats our own guess.
        cooldown = retry_after
    else:
        cooldown = max(cooldown, retry_after or 0.0)
    now = clock()
    record = {"until": now + cooldown, "opened_at": now, "code": code}
    cache.set(_key(name, "open"), record, timeout=math.ceil(cooldown) + _OPEN_RECORD_GRACE_S)
    cache.delete_many([_key(name, "failures"), _key(name, "failures_since"), _key(name, "probe")])
    _set_gauge(name, OPEN)
    logger.warning(
        "circuit opened",
        extra={
            "event": "circuit_opened",
            "metadata": {"provider": name, "code": code, "cooldown_s": round(cooldown, 3)},
        },
    )


def release_probe(name: str) -> None:
    """Give up the half-open probe without a verdict (the request was cancelled)."""
    guarded(None, lambda: cache.delete(_key(name, "probe")))


def circuit_state(name: str) -> dict[str, Any]:
    """The circuit of `name` as every process sees it (blocking cache call)."""

    def operation() -> dict[str, Any]:
        parts = ("open", "failures", "probe", "failures_since")
        keys = [_key(name, part) for part in parts]
        values = cache.get_many(keys)
        record = values.get(keys[0])
        since = values.get(keys[3])
        window = float(settings.AI_CIRCUIT_WINDOW)
        in_window = since is not None and clock() - since < window
        failures = int(values.get(keys[1]) or 0) if in_window else 0
        if record is None:
            return {
                "state": CLOSED,
                "recent_failures": failures,
                "retry_in_s": None,
                "opened_at": None,
                "reason": None,
                "probing": False,
            }
        now = clock()
        until = float(record.get("until", 0))
        return {
            "state": OPEN if now < until else HALF_OPEN,
            "recent_failures": failures,
            "retry_in_s": round(until - now, 3) if now < until else 0.0,
            "opened_at": record.get("opened_at"),
            "reason": record.get("code"),
            "probing": keys[2] in values,
        }

    unknown = {
        "state": "unknown",
        "recent_failures": 0,
        "retry_in_s": None,
        "opened_at": None,
        "reason": None,
        "probing": False,
    }
    result = guarded(unknown, operation)
    if result["state"] in _GAUGE_VALUE:
        _set_gauge(name, result["state"])
    return result
