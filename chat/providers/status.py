"""Live provider figures shared through the cache for the health views.

Written once per attempt (never per chunk): the last attempt's outcome and
latency, the quota the provider reported in its rate-limit headers, the last
error, and the cached light probe.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

from .circuit import guarded

_TTL_S = 24 * 3600


def _key(name: str, part: str) -> str:
    return f"ai:provider:{name}:{part}"


def record_attempt(
    name: str,
    *,
    outcome: str,
    error_code: str | None,
    status: int | None,
    latency_ms: int,
    first_token_ms: int | None,
    quota: dict[str, int] | None,
) -> None:
    """Remember what the last attempt against `name` saw (blocking cache call)."""
    now = time.time()
    values: dict[str, Any] = {
        _key(name, "live"): {
            "at": now,
            "outcome": outcome,
            "error_code": error_code,
            "latency_ms": latency_ms,
            "first_token_ms": first_token_ms,
        }
    }
    if quota:
        values[_key(name, "quota")] = {**quota, "updated_at": now}
    if error_code:
        values[_key(name, "last_error")] = {"code": error_code, "status": status, "at": now}
    guarded(None, lambda: cache.set_many(values, timeout=_TTL_S))


def record_quota(name: str, quota: dict[str, int] | None) -> None:
    """Remember quota figures seen outside a chat attempt (the probe)."""
    if quota:
        guarded(
            None,
            lambda: cache.set(
                _key(name, "quota"), {**quota, "updated_at": time.time()}, timeout=_TTL_S
            ),
        )


def store_probe(name: str, result: dict[str, Any], *, ttl_s: int) -> None:
    guarded(None, lambda: cache.set(_key(name, "probe"), result, timeout=ttl_s))


def cached_probe(name: str) -> dict[str, Any] | None:
    return guarded(None, lambda: cache.get(_key(name, "probe")))


def snapshot(name: str) -> dict[str, Any]:
    """Last attempt, quota, last error and probe of `name`, in one cache round trip."""
    keys = [_key(name, part) for part in ("live", "quota", "last_error", "probe")]
    values = guarded({}, lambda: cache.get_many(keys))
    return {
        "live": values.get(keys[0]),
        "quota": values.get(keys[1]),
        "last_error": values.get(keys[2]),
        "probe": values.get(keys[3]),
    }
