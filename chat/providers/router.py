"""Failover between the AI providers: the one module that decides where an answer comes from.

`stream_answer` tries the primary provider, then the secondary, skipping a
provider whose circuit is open. Every attempt ends with an `AttemptEvent`; a
failure after tokens were relayed is followed, once the next provider starts
answering, by a `ResetEvent`. When no provider answers, `ProvidersUnavailable`
is raised after the attempt events.

Cancellation: close the generator (`aclose()`, e.g. through
`contextlib.aclosing`) or cancel the task consuming it. The HTTP stream is
closed at once and nothing more is yielded. A generator cannot yield after it
was closed, so the cancelled attempt is reported through the optional
`on_cancelled` callback (called synchronously, no await) instead of an
`AttemptEvent`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from monitoring.metrics import (
    COST,
    FAILOVERS,
    PROVIDER_AUTH_FAILURES,
    PROVIDER_ERRORS,
    PROVIDER_REQUESTS,
    TOKENS,
)
from neonpro.blocking import run_blocking

from . import anthropic_provider, circuit, openai_provider, status
from .base import (
    AttemptEvent,
    AttemptRecord,
    ChatTurn,
    DoneEvent,
    ProbeResult,
    ProviderError,
    ProvidersUnavailable,
    ResetEvent,
    TokenEvent,
)
from .config import ProviderConfig, cost_usd, provider_config, provider_order
from .streaming import AttemptState

logger = logging.getLogger(__name__)

_STREAMERS = {
    openai_provider.NAME: openai_provider.stream_text,
    anthropic_provider.NAME: anthropic_provider.stream_text,
}
_PROBES = {
    openai_provider.NAME: openai_provider.probe,
    anthropic_provider.NAME: anthropic_provider.probe,
}
PROBE_CACHE_S = 30
_PROBE_TIMEOUT_S = 5.0
# Extra life for the half-open probe lock beyond the longest possible attempt,
# so a process that dies mid-probe does not keep the circuit half-open forever.
_PROBE_LOCK_MARGIN_S = 5.0


async def _admit(cfg: ProviderConfig) -> circuit.Admission:
    future = asyncio.ensure_future(run_blocking(
        circuit.admit, cfg.name, lock_ttl_s=cfg.stream_timeout_s + _PROBE_LOCK_MARGIN_S
    ))
    try:
        # Shielded: if we are cancelled meanwhile, the admission still lands and a
        # half-open probe lock it took is handed back instead of blocking others.
        return await asyncio.shield(future)
    except BaseException:
        future.add_done_callback(functools.partial(_release_unused_probe, cfg.name))
        raise


def _release_unused_probe(name: str, future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None and future.result().probe:
        _release_probe_soon(name)


_background: set[asyncio.Future[Any]] = set()


def _release_probe_soon(name: str) -> None:
    """Free a half-open probe lock without awaiting (we may be inside a cancellation)."""
    try:
        future = asyncio.get_running_loop().create_task(
            run_blocking(circuit.release_probe, name))
    except RuntimeError:
        # The loop is shutting down; the lock expires on its own.
        return
    _background.add(future)
    future.add_done_callback(_background.discard)


async def settle() -> None:
    """Wait for bookkeeping started without awaiting (probe releases); for shutdown and tests."""
    while _background:
        await asyncio.gather(*list(_background), return_exceptions=True)


def _after_attempt(
    name: str,
    *,
    probe: bool,
    error: ProviderError | None,
    latency_ms: int,
    first_token_ms: int | None,
    quota: dict[str, int] | None,
) -> None:
    if error is None:
        circuit.record_success(name, probe=probe)
    else:
        circuit.record_failure(name, code=error.code, retry_after=error.retry_after, probe=probe)
    status.record_attempt(
        name,
        outcome="success" if error is None else "error",
        error_code=None if error is None else error.code,
        status=None if error is None else error.status,
        latency_ms=latency_ms,
        first_token_ms=first_token_ms,
        quota=quota,
    )


@dataclass(slots=True)
class _Attempt:
    """One provider attempt in progress: the adapter fills `state`, the router the rest."""

    cfg: ProviderConfig
    state: AttemptState
    started_at: datetime
    probe: bool
    first_token_at: float | None = None
    out_chars: int = 0

    def record(
        self, *, outcome: str, error_code: str | None, now: float, input_chars: int
    ) -> AttemptRecord:
        input_tokens, output_tokens, estimated = _token_counts(
            self.state,
            input_chars=input_chars,
            out_chars=self.out_chars,
            complete=outcome == "success",
        )
        return AttemptRecord(
            provider=self.cfg.name,
            model=self.cfg.model,
            outcome=outcome,
            error_code=error_code,
            latency_ms=_ms(now - self.state.started),
            first_token_ms=(
                None
                if self.first_token_at is None
                else _ms(self.first_token_at - self.state.started)
            ),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens_estimated=estimated,
            cost_usd=cost_usd(self.cfg.model, input_tokens, output_tokens),
            started_at=self.started_at,
        )


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _estimate_tokens(chars: int) -> int:
    # Servers that report no usage (self-hosted OpenAI-compatible ones) get the
    # usual rough rule of four characters a token.
    return math.ceil(chars / 4) if chars > 0 else 0


def _token_counts(
    state: AttemptState, *, input_chars: int, out_chars: int, complete: bool
) -> tuple[int, int, bool]:
    """(input, output, estimated) for an attempt; zero when no response was ever started."""
    if not state.response_started:
        return 0, 0, False
    estimated = False
    input_tokens = state.input_tokens
    if input_tokens is None:
        input_tokens, estimated = _estimate_tokens(input_chars), True
    output_tokens = state.output_tokens
    if complete:
        if output_tokens is None:
            output_tokens, estimated = _estimate_tokens(out_chars), True
    else:
        # A broken stream's final usage never came; what was generated is still billed.
        guess = _estimate_tokens(out_chars)
        if output_tokens is None or output_tokens < guess:
            output_tokens, estimated = guess, True
    return int(input_tokens), int(output_tokens), estimated


def _count(record: AttemptRecord, error_code: str | None = None) -> None:
    """Update the provider metrics for a finished attempt (no I/O)."""
    PROVIDER_REQUESTS.labels(provider=record.provider, outcome=record.outcome).inc()
    if error_code:
        PROVIDER_ERRORS.labels(provider=record.provider, code=error_code).inc()
        if error_code == "auth":  # 401/403: our key was refused (a rollback alert)
            PROVIDER_AUTH_FAILURES.labels(provider=record.provider).inc()
    if record.input_tokens:
        TOKENS.labels(provider=record.provider, model=record.model, direction="input").inc(
            record.input_tokens
        )
    if record.output_tokens:
        TOKENS.labels(provider=record.provider, model=record.model, direction="output").inc(
            record.output_tokens
        )
    if record.cost_usd:
        COST.labels(provider=record.provider, model=record.model).inc(float(record.cost_usd))


def _skipped(cfg: ProviderConfig) -> AttemptRecord:
    return AttemptRecord(
        provider=cfg.name,
        model=cfg.model,
        outcome="skipped_open_circuit",
        error_code=None,
        latency_ms=0,
        first_token_ms=None,
        input_tokens=0,
        output_tokens=0,
        tokens_estimated=False,
        cost_usd=Decimal(0),
        started_at=timezone.now(),
    )


async def stream_answer(
    *,
    system_prompt: str,
    history: list[ChatTurn],
    trace_id: str | None = None,
    on_cancelled: Callable[[AttemptRecord], None] | None = None,
) -> AsyncIterator[TokenEvent | ResetEvent | AttemptEvent | DoneEvent]:
    """Stream an answer to `history` (redacted text only), failing over between providers.

    Yields `TokenEvent`s, a `ResetEvent` when the answer restarts on another
    provider after tokens were relayed, one `AttemptEvent` per attempt
    (including skipped ones), and a final `DoneEvent`. Raises a non-retryable
    `ProviderError` for a request the provider refused as malformed (a bug),
    and `ProvidersUnavailable` when no provider could answer.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    history = list(history)
    input_chars = len(system_prompt) + sum(len(turn.content) for turn in history)
    configs = [cfg for cfg in map(provider_config, provider_order()) if cfg is not None]
    if not configs:
        raise ProvidersUnavailable("No AI provider is configured.")

    reset_pending = False
    last_error: ProviderError | None = None
    previous: str | None = None
    retry_hints: list[float] = []

    for cfg in configs:
        admission = await _admit(cfg)
        if not admission.allowed:
            record = _skipped(cfg)
            _count(record)
            if admission.retry_in:
                retry_hints.append(admission.retry_in)
            yield AttemptEvent(record)
            continue
        if previous is not None:
            FAILOVERS.labels(from_provider=previous, to_provider=cfg.name).inc()
        previous = cfg.name

        attempt = _Attempt(
            cfg=cfg,
            state=AttemptState(
                provider=cfg.name,
                started=loop.time(),
                timeout_s=cfg.timeout_s,
                idle_s=cfg.idle_timeout_s,
                stream_s=cfg.stream_timeout_s,
            ),
            started_at=timezone.now(),
            probe=admission.probe,
        )
        stream = _STREAMERS[cfg.name](
            cfg, system_prompt=system_prompt, history=history, state=attempt.state
        )
        try:
            try:
                async for delta in stream:
                    if attempt.first_token_at is None:
                        attempt.first_token_at = loop.time()
                        if reset_pending:
                            reset_pending = False
                            yield ResetEvent()
                    attempt.out_chars += len(delta)
                    yield TokenEvent(delta)
            finally:
                # Closes the HTTP stream now, also when we are being closed or cancelled.
                await stream.aclose()
        except ProviderError as error:
            record = attempt.record(
                outcome="error", error_code=error.code, now=loop.time(), input_chars=input_chars
            )
            _count(record, error.code)
            await run_blocking(
                _after_attempt,
                cfg.name,
                probe=attempt.probe,
                error=error,
                latency_ms=record.latency_ms,
                first_token_ms=record.first_token_ms,
                quota=attempt.state.quota,
            )
            _log_failure(error, record, trace_id)
            yield AttemptEvent(record)
            if attempt.out_chars:
                reset_pending = True
            if not error.retryable:
                raise
            last_error = error
            if error.retry_after:
                retry_hints.append(error.retry_after)
            continue
        except (GeneratorExit, asyncio.CancelledError):
            # The consumer went away: account for the attempt without awaiting.
            _abandoned(attempt, loop.time(), input_chars, on_cancelled)
            raise
        except BaseException:
            # A bug, not a provider failure: let it surface, but free the probe lock.
            if attempt.probe:
                _release_probe_soon(cfg.name)
            raise

        now = loop.time()
        record = attempt.record(
            outcome="success", error_code=None, now=now, input_chars=input_chars
        )
        _count(record)
        await run_blocking(
            _after_attempt,
            cfg.name,
            probe=attempt.probe,
            error=None,
            latency_ms=record.latency_ms,
            first_token_ms=record.first_token_ms,
            quota=attempt.state.quota,
        )
        yield AttemptEvent(record)
        if reset_pending:
            # The answer that completed had no text at all; the partial one must still go.
            yield ResetEvent()
        yield DoneEvent(
            provider=cfg.name,
            model=cfg.model,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            tokens_estimated=record.tokens_estimated,
            first_token_ms=(
                None if attempt.first_token_at is None else _ms(attempt.first_token_at - started)
            ),
            latency_ms=_ms(now - started),
        )
        return

    raise ProvidersUnavailable(
        "No AI provider could answer.",
        provider=last_error.provider if last_error else "none",
        status=last_error.status if last_error else None,
        retry_after=min(retry_hints) if retry_hints else None,
        last_error_code=last_error.code if last_error else None,
    )


def _abandoned(
    attempt: _Attempt,
    now: float,
    input_chars: int,
    on_cancelled: Callable[[AttemptRecord], None] | None,
) -> None:
    """Account for an attempt the consumer abandoned, without awaiting anything."""
    record = attempt.record(outcome="cancelled", error_code=None, now=now, input_chars=input_chars)
    _count(record)
    if attempt.probe:
        # Hand the half-open probe back so another request can probe soon.
        _release_probe_soon(attempt.cfg.name)
    if on_cancelled is not None:
        try:
            on_cancelled(record)
        except Exception:
            logger.exception("on_cancelled callback failed")


def _log_failure(error: ProviderError, record: AttemptRecord, trace_id: str | None) -> None:
    logger.warning(
        "provider attempt failed",
        extra={
            "event": "provider_attempt_failed",
            "traceId": trace_id,
            "metadata": {
                "provider": record.provider,
                "model": record.model,
                "code": error.code,
                "status": error.status,
                "retryable": error.retryable,
                "latency_ms": record.latency_ms,
                "tokens_relayed": record.first_token_ms is not None,
            },
        },
    )


# -- health ---------------------------------------------------------------------


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
        "response_time_ms": _ms(loop.time() - started),
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
