"""What every process knows about the providers, for the health views and metrics.

`probe_provider` (the light probe, cached across processes), `provider_status`
(circuit, last live attempt, quota, last error, probe, read from the cache),
`failover_ready`, `configured_providers`. Failover itself is `router`'s; the
figures it writes after each attempt are kept by `status`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from monitoring.metrics import PROVIDER_AUTH_FAILURES
from neonpro.blocking import run_blocking

from . import anthropic_provider, circuit, openai_provider, status
from .base import ProbeResult, ProviderError
from .config import provider_config, provider_order
from .streaming import milliseconds

_PROBES = {
    openai_provider.NAME: openai_provider.probe,
    anthropic_provider.NAME: anthropic_provider.probe,
}
PROBE_CACHE_S = 30
_PROBE_TIMEOUT_S = 5.0

async def probe_provider(name: str) -> ProbeResult:
    """The light probe of provider `name` (GET models), cached ~30 s across processes.

    Never a paid completion. Status: healthy (2xx), degraded (429/529), unhealthy
    (anything else), not_configured.
    """
    cached = await run_blocking(status.cached_probe, name)
    if cached is not None:
        return _probe_result(cached, cached=True)
    cfg = provider_config(name)
    if cfg is None:
        return ProbeResult(
            provider=name, status="not_configured", response_time_ms=None, checked_at=None
        )
    loop = asyncio.get_running_loop()
    started = loop.time()
    timeout_s = min(cfg.timeout_s, _PROBE_TIMEOUT_S)
    error_code: str | None = None
    quota: dict[str, int] | None = None
    try:
        async with asyncio.timeout(timeout_s + 0.5):
            quota = await _PROBES[name](cfg, timeout_s=timeout_s)
        probe_status = "healthy"
    except TimeoutError:
        probe_status, error_code = "unhealthy", "timeout"
    except ProviderError as error:
        error_code = error.code
        if error.code == "auth":
            PROVIDER_AUTH_FAILURES.labels(provider=name).inc()
        probe_status = "degraded" if error.code in ("rate_limited", "overloaded") else "unhealthy"
    result = {
        "provider": name,
        "status": probe_status,
        "response_time_ms": milliseconds(loop.time() - started),
        "checked_at": datetime.now(UTC).timestamp(),
        "error_code": error_code,
    }

    def store() -> None:
        status.store_probe(name, result, ttl_s=PROBE_CACHE_S)
        status.record_quota(name, quota)

    await run_blocking(store)
    return _probe_result(result, cached=False)


def _probe_result(data: dict[str, Any], *, cached: bool) -> ProbeResult:
    checked = data.get("checked_at")
    return ProbeResult(
        provider=data["provider"],
        status=data["status"],
        response_time_ms=data.get("response_time_ms"),
        checked_at=datetime.fromtimestamp(checked, UTC) if checked else None,
        error_code=data.get("error_code"),
        cached=cached,
    )


def provider_status(name: str) -> dict[str, Any]:
    """What every process knows about provider `name`, read from the cache (blocking).

    Keys: provider, configured, model, status (healthy / degraded / unhealthy /
    unknown / not_configured), circuit {state, recent_failures, retry_in_s,
    opened_at, reason, probing}, response_time_ms (last live attempt, else the
    probe), first_token_ms, last_outcome, last_seen_at, quota {tokens_remaining,
    requests_remaining, tokens_limit, requests_limit, updated_at}, last_error
    {code, status, at}, probe {status, response_time_ms, checked_at, error_code}.
    Times are ISO 8601 UTC strings.
    """
    cfg = provider_config(name)
    if cfg is None:
        return {
            "provider": name,
            "configured": False,
            "model": None,
            "status": "not_configured",
            "circuit": None,
            "response_time_ms": None,
            "first_token_ms": None,
            "last_outcome": None,
            "last_seen_at": None,
            "quota": None,
            "last_error": None,
            "probe": None,
        }
    breaker = circuit.circuit_state(name)
    snap = status.snapshot(name)
    live, probe, quota, last_error = snap["live"], snap["probe"], snap["quota"], snap["last_error"]
    if breaker.get("opened_at"):
        breaker = {**breaker, "opened_at": _iso(breaker["opened_at"])}
    return {
        "provider": name,
        "configured": True,
        "model": cfg.model,
        "status": _health(breaker["state"], live, probe),
        "circuit": breaker,
        "response_time_ms": (live["latency_ms"] if live else (probe or {}).get("response_time_ms")),
        "first_token_ms": live["first_token_ms"] if live else None,
        "last_outcome": live["outcome"] if live else None,
        "last_seen_at": _iso(live["at"]) if live else None,
        "quota": {**quota, "updated_at": _iso(quota["updated_at"])} if quota else None,
        "last_error": {**last_error, "at": _iso(last_error["at"])} if last_error else None,
        "probe": {**probe, "checked_at": _iso(probe["checked_at"])} if probe else None,
    }


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else None


def _health(breaker_state: str, live: dict | None, probe: dict | None) -> str:
    if breaker_state == circuit.OPEN:
        return "unhealthy"
    if breaker_state == circuit.HALF_OPEN:
        return "degraded"
    latest = max(
        (item for item in (live, probe) if item),
        key=lambda item: item.get("at") or item.get("checked_at") or 0,
        default=None,
    )
    if latest is None:
        return "unknown"
    if latest is live:
        return "healthy" if live["outcome"] == "success" else "degraded"
    return latest["status"]


def failover_ready() -> bool:
    """Whether a secondary provider is configured and its circuit is not open (blocking)."""
    primary = (settings.AI_PRIMARY_PROVIDER or "").strip().lower()
    secondary = (settings.AI_SECONDARY_PROVIDER or "").strip().lower()
    if not secondary or secondary == primary or provider_config(secondary) is None:
        return False
    return circuit.circuit_state(secondary)["state"] != circuit.OPEN


def configured_providers() -> Iterable[str]:
    """Providers in failover order that have a configuration."""
    return [name for name in provider_order() if provider_config(name) is not None]
