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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

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
    DeferredWrite,
    DoneEvent,
    ProviderError,
    ProvidersUnavailable,
    ResetEvent,
    TokenEvent,
)
from .config import ProviderConfig, cost_usd, provider_config, provider_order
from .streaming import AttemptState, milliseconds

logger = logging.getLogger(__name__)

_STREAMERS = {
    openai_provider.NAME: openai_provider.stream_text,
    anthropic_provider.NAME: anthropic_provider.stream_text,
}
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
    """Wait for bookkeeping started without awaiting (probe releases, the live figures of
    an answer whose consumer went away); for shutdown and tests."""
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

    @classmethod
    def begin(cls, cfg: ProviderConfig, *, probe: bool, now: float) -> _Attempt:
        return cls(
            cfg=cfg,
            state=AttemptState(
                provider=cfg.name,
                started=now,
                timeout_s=cfg.timeout_s,
                idle_s=cfg.idle_timeout_s,
                stream_s=cfg.stream_timeout_s,
            ),
            started_at=timezone.now(),
            probe=probe,
        )

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
            latency_ms=milliseconds(now - self.state.started),
            first_token_ms=(
                None
                if self.first_token_at is None
                else milliseconds(self.first_token_at - self.state.started)
            ),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens_estimated=estimated,
            cost_usd=cost_usd(self.cfg.model, input_tokens, output_tokens),
            started_at=self.started_at,
        )


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


def _skipped(cfg: ProviderConfig) -> AttemptEvent:
    """The event of a provider passed over because its circuit is open (counted)."""
    record = AttemptRecord(
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
    _count(record)
    return AttemptEvent(record)


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

    failover = _Failover()
    for cfg in configs:
        admission = await _admit(cfg)
        if not admission.allowed:
            failover.passed_over(admission)
            yield _skipped(cfg)
            continue
        failover.trying(cfg.name)
        attempt = _Attempt.begin(cfg, probe=admission.probe, now=loop.time())
        error: ProviderError | None = None
        try:
            stream = _STREAMERS[cfg.name](
                cfg, system_prompt=system_prompt, history=history, state=attempt.state
            )
            try:
                async for delta in stream:
                    if attempt.first_token_at is None:
                        attempt.first_token_at = loop.time()
                        if failover.reset_pending:
                            failover.reset_pending = False
                            yield ResetEvent()
                    attempt.out_chars += len(delta)
                    yield TokenEvent(delta)
            finally:
                # Closes the HTTP stream now, also when we are being closed or cancelled.
                await stream.aclose()
        except ProviderError as exc:
            error = exc
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
        if error is None and not attempt.probe:
            # Nothing for the circuit to decide: the live figures' write goes with the
            # answer's DoneEvent, for the consumer's own blocking step (the pipeline
            # stores the answer in one) instead of a step of its own.
            record, deferred = _attempt_answered(attempt, now=now, input_chars=input_chars)
        else:
            record = await _attempt_ended(attempt, error, now=now, input_chars=input_chars,
                                          trace_id=trace_id)
            deferred = None
        yield AttemptEvent(record)
        if error is not None:
            failover.failed(error, relayed_text=attempt.out_chars > 0)  # raises if final
            continue
        try:
            if failover.reset_pending:
                # The answer that completed had no text at all; the partial one must go.
                yield ResetEvent()
            yield _done(attempt, record, started=started, now=now, deferred=deferred)
        except BaseException:
            if deferred is not None and not deferred.claimed:
                # Closed or cancelled before anyone took the write over: ours, unawaited.
                _run_in_background(deferred.claim())
            raise
        if deferred is not None and not deferred.claimed:
            await run_blocking(deferred.claim())  # a consumer that did not take it over
        return
    raise failover.unavailable()


class _Failover:
    """Where the failover stands between attempts."""

    __slots__ = ("reset_pending", "_last_error", "_previous", "_retry_hints")

    def __init__(self) -> None:
        # Text of a failed attempt was relayed: the next answer starts with a reset.
        self.reset_pending = False
        self._last_error: ProviderError | None = None
        self._previous: str | None = None
        self._retry_hints: list[float] = []

    def passed_over(self, admission: circuit.Admission) -> None:
        if admission.retry_in:
            self._retry_hints.append(admission.retry_in)

    def trying(self, name: str) -> None:
        if self._previous is not None:
            FAILOVERS.labels(from_provider=self._previous, to_provider=name).inc()
        self._previous = name

    def failed(self, error: ProviderError, *, relayed_text: bool) -> None:
        """Note a failed attempt; a non-retryable error (our request was refused as
        malformed) is raised: no other provider would take it either."""
        if relayed_text:
            self.reset_pending = True
        if not error.retryable:
            raise error
        self._last_error = error
        if error.retry_after:
            self._retry_hints.append(error.retry_after)

    def unavailable(self) -> ProvidersUnavailable:
        last_error = self._last_error
        return ProvidersUnavailable(
            "No AI provider could answer.",
            provider=last_error.provider if last_error else "none",
            status=last_error.status if last_error else None,
            retry_after=min(self._retry_hints) if self._retry_hints else None,
            last_error_code=last_error.code if last_error else None,
        )


def _attempt_answered(attempt: _Attempt, *, now: float, input_chars: int
                      ) -> tuple[AttemptRecord, DeferredWrite]:
    """The record of an attempt that answered (not a probe) and its live figures' write,
    deferred (see `stream_answer`); the metrics now."""
    record = attempt.record(outcome="success", error_code=None, now=now,
                            input_chars=input_chars)
    _count(record)
    deferred = DeferredWrite(functools.partial(
        _after_attempt, attempt.cfg.name, probe=False, error=None,
        latency_ms=record.latency_ms, first_token_ms=record.first_token_ms,
        quota=attempt.state.quota))
    return record, deferred


def _run_in_background(write: Callable[[], None]) -> None:
    try:
        future = asyncio.get_running_loop().create_task(run_blocking(write))
    except RuntimeError:
        return  # the loop is shutting down; the figures are refreshed by the next answer
    _background.add(future)
    future.add_done_callback(_background.discard)


async def _attempt_ended(attempt: _Attempt, error: ProviderError | None, *, now: float,
                         input_chars: int, trace_id: str | None) -> AttemptRecord:
    """The record of an attempt that ended (answered or failed): metrics, the circuit
    and the shared status figures (one round of bookkeeping), a log line on failure."""
    record = attempt.record(
        outcome="success" if error is None else "error",
        error_code=None if error is None else error.code,
        now=now, input_chars=input_chars,
    )
    _count(record, None if error is None else error.code)
    await run_blocking(
        _after_attempt,
        attempt.cfg.name,
        probe=attempt.probe,
        error=error,
        latency_ms=record.latency_ms,
        first_token_ms=record.first_token_ms,
        quota=attempt.state.quota,
    )
    if error is not None:
        _log_failure(error, record, trace_id)
    return record


def _done(attempt: _Attempt, record: AttemptRecord, *, started: float, now: float,
          deferred: DeferredWrite | None) -> DoneEvent:
    """The answer's final event: who answered, its usage, its timings from the start."""
    first_token_at = attempt.first_token_at
    return DoneEvent(
        deferred=deferred,
        provider=attempt.cfg.name,
        model=attempt.cfg.model,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        tokens_estimated=record.tokens_estimated,
        first_token_ms=None if first_token_at is None else milliseconds(first_token_at - started),
        latency_ms=milliseconds(now - started),
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
