"""The provider layer: streaming, failover and fault handling through the real SDKs.

Every test talks to the simulated provider on loopback over real HTTP, with
the official OpenAI and Anthropic async SDKs; faults are injected into the
simulator, never into our code. State (circuit breakers, quotas) goes through
the Django cache, which is Redis when REDIS_URL is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from chat.providers import anthropic_provider, circuit, openai_provider, reporting, router
from chat.providers.base import (
    AttemptEvent,
    AttemptRecord,
    ChatTurn,
    DoneEvent,
    ProviderError,
    ProvidersUnavailable,
    ResetEvent,
    TokenEvent,
)
from chat.providers.clients import get_client
from chat.providers.config import provider_config
from neonpro import tracing
from simulated_provider.answer import FILLER_TEXT

QUESTION = "Paciente [NOME_1] pode fazer peeling químico?"
EXPECTED_ANSWER = f"Resposta simulada sobre: {QUESTION} {FILLER_TEXT}"
SYSTEM_PROMPT = "Você é um assistente clínico."
HISTORY = [ChatTurn(role="user", content=QUESTION)]
# Short enough to keep the stall tests quick, long enough that a machine busy with other
# work does not turn an immediate error status or a normal gap between chunks into a
# timeout; the stalls are longer than any sum of these.
TIMEOUT_MS = 1500
IDLE_TIMEOUT_MS = 600
STALL_MS = 5000


# -- helpers (also used by test_providers_circuit.py) -----------------------------------


@dataclass
class Outcome:
    """Everything `stream_answer` produced, in order, and how it ended."""

    events: list = field(default_factory=list)
    error: BaseException | None = None
    seconds: float = 0.0

    @property
    def attempts(self) -> list[AttemptRecord]:
        return [e.attempt for e in self.events if isinstance(e, AttemptEvent)]

    @property
    def done(self) -> DoneEvent | None:
        return next((e for e in self.events if isinstance(e, DoneEvent)), None)

    @property
    def kinds(self) -> list[str]:
        """Event kinds with consecutive tokens collapsed, e.g. [token, attempt, reset, ...]."""
        kinds: list[str] = []
        for event in self.events:
            kind = {
                TokenEvent: "token",
                ResetEvent: "reset",
                AttemptEvent: "attempt",
                DoneEvent: "done",
            }[type(event)]
            if not (kind == "token" and kinds and kinds[-1] == "token"):
                kinds.append(kind)
        return kinds

    @property
    def final_text(self) -> str:
        """The answer as a client that honours resets would show it."""
        parts: list[str] = []
        for event in self.events:
            if isinstance(event, ResetEvent):
                parts.clear()
            elif isinstance(event, TokenEvent):
                parts.append(event.delta)
        return "".join(parts)


async def collect(history: list[ChatTurn] | None = None) -> Outcome:
    outcome = Outcome()
    started = time.monotonic()
    try:
        async for event in router.stream_answer(
            system_prompt=SYSTEM_PROMPT, history=history or HISTORY, trace_id="t" * 32
        ):
            outcome.events.append(event)
    except ProviderError as error:
        outcome.error = error
    outcome.seconds = time.monotonic() - started
    return outcome


def completions(simulator, provider: str) -> list[dict]:
    path = "/v1/chat/completions" if provider == "openai" else "/v1/messages"
    return simulator.requests(provider=provider, path=path)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def use_fast_providers(settings) -> None:
    """Short timeouts, a breaker that needs three failures, a known price table."""
    settings.AI_PROVIDER_TIMEOUT = TIMEOUT_MS
    settings.AI_PROVIDER_IDLE_TIMEOUT = IDLE_TIMEOUT_MS
    settings.AI_PROVIDER_STREAM_TIMEOUT = 10_000
    settings.AI_MAX_TOKENS = 1000
    settings.AI_CIRCUIT_FAILURE_THRESHOLD = 3
    settings.AI_CIRCUIT_WINDOW = 60
    settings.AI_CIRCUIT_COOLDOWN = 30
    settings.AI_PRICE_TABLE = "gpt-4o-mini=1.00:2.00,claude-3-5-haiku-latest=3.00:5.00"


@pytest.fixture
def providers(ai_settings, simulator):
    """Both providers on the simulator (see `use_fast_providers`); returns the simulator."""
    use_fast_providers(ai_settings)
    return simulator


def anthropic_first(settings) -> None:
    settings.AI_PRIMARY_PROVIDER = "anthropic"
    settings.AI_SECONDARY_PROVIDER = "openai"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the happy path ---------------------------------------------------------------------


async def test_it_streams_the_primary_answer_with_usage_and_cost(providers):
    requests_before = metric(
        "ai_chat_provider_requests_total", provider="openai", outcome="success"
    )
    cost_before = metric("ai_chat_cost_usd_total", provider="openai", model="gpt-4o-mini")

    outcome = await collect()

    assert outcome.error is None
    assert outcome.kinds == ["token", "attempt", "done"]
    assert outcome.final_text == EXPECTED_ANSWER
    [attempt] = outcome.attempts
    assert (attempt.provider, attempt.model, attempt.outcome) == (
        "openai",
        "gpt-4o-mini",
        "success",
    )
    assert attempt.error_code is None
    assert not attempt.tokens_estimated
    assert attempt.input_tokens > 0 and attempt.output_tokens > 0
    expected_cost = (attempt.input_tokens * Decimal("1.00") + attempt.output_tokens * 2) / 10**6
    assert attempt.cost_usd == expected_cost
    assert attempt.first_token_ms is not None and attempt.first_token_ms <= attempt.latency_ms
    done = outcome.done
    assert (done.provider, done.input_tokens, done.output_tokens) == (
        "openai",
        attempt.input_tokens,
        attempt.output_tokens,
    )
    assert (
        metric("ai_chat_provider_requests_total", provider="openai", outcome="success")
        == requests_before + 1
    )
    assert metric(
        "ai_chat_cost_usd_total", provider="openai", model="gpt-4o-mini"
    ) == pytest.approx(cost_before + float(expected_cost))

    [sent] = completions(providers, "openai")
    assert sent["body"]["stream"] is True
    assert sent["body"]["stream_options"] == {"include_usage": True}
    assert sent["body"]["max_tokens"] == 1000
    assert sent["body"]["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": QUESTION},
    ]


async def test_it_reads_anthropic_usage_from_message_start_and_message_delta(providers, settings):
    anthropic_first(settings)
    tokens_before = metric(
        "ai_chat_messages_tokens_total",
        provider="anthropic",
        model="claude-3-5-haiku-latest",
        direction="output",
    )

    outcome = await collect()

    [attempt] = outcome.attempts
    assert attempt.provider == "anthropic" and attempt.outcome == "success"
    assert outcome.final_text == EXPECTED_ANSWER
    assert not attempt.tokens_estimated
    assert attempt.output_tokens > 1  # message_delta's figure, not message_start's placeholder
    assert attempt.cost_usd == (attempt.input_tokens * 3 + attempt.output_tokens * 5) / Decimal(
        10**6
    )
    assert (
        metric(
            "ai_chat_messages_tokens_total",
            provider="anthropic",
            model="claude-3-5-haiku-latest",
            direction="output",
        )
        == tokens_before + attempt.output_tokens
    )
    [sent] = completions(providers, "anthropic")
    assert sent["body"]["system"] == SYSTEM_PROMPT
    assert sent["body"]["max_tokens"] == 1000
    assert sent["body"]["stream"] is True


async def test_it_estimates_tokens_when_a_self_hosted_server_reports_no_usage(providers):
    providers.set_fault("openai", no_usage=True, times=1)

    outcome = await collect()

    [attempt] = outcome.attempts
    assert attempt.outcome == "success"
    assert attempt.tokens_estimated
    assert attempt.output_tokens == math.ceil(len(EXPECTED_ANSWER) / 4)
    assert attempt.input_tokens == math.ceil((len(SYSTEM_PROMPT) + len(QUESTION)) / 4)
    assert outcome.done.tokens_estimated
    assert attempt.cost_usd > 0


async def test_it_reuses_one_client_per_provider_until_settings_change(providers, settings):
    cfg = provider_config("openai")
    assert get_client(cfg) is get_client(provider_config("openai"))
    settings.OPENAI_API_KEY = "another-key"
    assert get_client(provider_config("openai")) is not get_client(cfg)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_it_sends_what_the_sdk_itself_would_send(providers, settings, provider):
    # Requests reuse a template the SDK built once per client: headers and JSON body
    # must be those of the SDK's own call, trace header included.
    if provider == "anthropic":
        anthropic_first(settings)
    adapter = {"openai": openai_provider, "anthropic": anthropic_provider}[provider]
    cfg = provider_config(provider)
    tracing.bind(trace_id="a" * 32)
    for _ in range(2):  # the first request builds the template, the second reuses it
        await collect()
    params = adapter._request_params(cfg, SYSTEM_PROMPT, HISTORY)
    sdk_resource = (get_client(cfg).chat.completions if provider == "openai"
                    else get_client(cfg).messages)
    async with sdk_resource.with_streaming_response.create(
            **params, extra_headers=tracing.outgoing_headers()) as response:
        await response.read()

    first, second, by_sdk = completions(providers, provider)
    for sent in (first, second):
        assert sent["body"] == by_sdk["body"]
        assert sent["headers"].keys() == by_sdk["headers"].keys()
        assert {k: v for k, v in sent["headers"].items() if k != "traceparent"} == {
            k: v for k, v in by_sdk["headers"].items() if k != "traceparent"}
        assert tracing.trace_id_from_traceparent(sent["headers"]["traceparent"]) == "a" * 32


# -- failover on HTTP errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("primary", "status", "code"),
    [
        ("openai", 500, "server_error"),
        ("openai", 502, "server_error"),
        ("openai", 503, "server_error"),
        ("anthropic", 529, "overloaded"),
        ("openai", 401, "auth"),
        ("openai", 403, "auth"),
        ("anthropic", 401, "auth"),
    ],
)
async def test_it_fails_over_on_http_error(providers, settings, primary, status, code):
    if primary == "anthropic":
        anthropic_first(settings)
    secondary = "openai" if primary == "anthropic" else "anthropic"
    providers.set_fault(primary, status=status, times=1)

    outcome = await collect()

    assert outcome.error is None
    assert outcome.kinds == ["attempt", "token", "attempt", "done"]
    failed, answered = outcome.attempts
    assert (failed.provider, failed.outcome, failed.error_code) == (primary, "error", code)
    assert (failed.input_tokens, failed.output_tokens, failed.cost_usd) == (0, 0, 0)
    assert (answered.provider, answered.outcome) == (secondary, "success")
    assert outcome.done.provider == secondary
    assert outcome.final_text == EXPECTED_ANSWER
    # Our layer decides about retries: the SDK sent exactly one request.
    assert len(completions(providers, primary)) == 1


async def test_it_fails_over_on_429_and_keeps_away_for_retry_after(providers):
    failovers_before = metric(
        "ai_chat_provider_failovers_total", from_provider="openai", to_provider="anthropic"
    )
    providers.set_fault("openai", status=429, retry_after=2, times=1)

    first = await collect()
    second = await collect()

    failed, answered = first.attempts
    assert (failed.error_code, answered.provider) == ("rate_limited", "anthropic")
    assert (
        metric("ai_chat_provider_failovers_total", from_provider="openai", to_provider="anthropic")
        == failovers_before + 1
    )
    state = circuit.circuit_state("openai")
    assert state["state"] == circuit.OPEN and state["reason"] == "rate_limited"
    assert 0 < state["retry_in_s"] <= 2
    # Within retry-after the provider is not asked again.
    skipped, answered = second.attempts
    assert (skipped.provider, skipped.outcome) == ("openai", "skipped_open_circuit")
    assert answered.provider == "anthropic"
    assert len(completions(providers, "openai")) == 1


async def test_it_does_not_fail_over_on_a_plain_400(providers):
    providers.set_fault("openai", status=400, times=1)

    outcome = await collect()

    assert isinstance(outcome.error, ProviderError)
    assert not isinstance(outcome.error, ProvidersUnavailable)
    assert (outcome.error.code, outcome.error.retryable, outcome.error.status) == (
        "bad_request",
        False,
        400,
    )
    [attempt] = outcome.attempts
    assert (attempt.provider, attempt.error_code) == ("openai", "bad_request")
    assert completions(providers, "anthropic") == []
    # A request we built wrongly says nothing about the provider's health.
    assert circuit.circuit_state("openai")["recent_failures"] == 0


async def test_it_fails_over_when_the_prompt_is_too_long_for_the_primary(providers):
    providers.set_fault("openai", status=400, code="context_length_exceeded", times=1)

    outcome = await collect()

    failed, answered = outcome.attempts
    assert (failed.error_code, answered.provider, answered.outcome) == (
        "context_length",
        "anthropic",
        "success",
    )
    assert outcome.final_text == EXPECTED_ANSWER
    assert circuit.circuit_state("openai")["recent_failures"] == 0


async def test_it_fails_over_when_the_anthropic_prompt_is_too_long(providers, settings):
    anthropic_first(settings)
    providers.set_fault("anthropic", status=400, code="context_length_exceeded", times=1)

    outcome = await collect()

    failed, answered = outcome.attempts
    assert (failed.error_code, answered.provider) == ("context_length", "openai")


async def test_it_fails_over_when_the_connection_is_refused(providers, settings):
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1"

    outcome = await collect()

    failed, answered = outcome.attempts
    assert (failed.provider, failed.error_code) == ("openai", "connection")
    assert answered.provider == "anthropic"
    assert outcome.final_text == EXPECTED_ANSWER


# -- failover on timeouts and broken streams --------------------------------------------


async def test_it_fails_over_when_the_primary_sends_no_first_byte(providers):
    providers.set_fault("openai", delay_before_ms=STALL_MS, times=1)

    outcome = await collect()

    failed, answered = outcome.attempts
    assert (failed.error_code, failed.first_token_ms) == ("timeout", None)
    assert TIMEOUT_MS <= failed.latency_ms < TIMEOUT_MS + 1500
    assert answered.provider == "anthropic"
    assert outcome.final_text == EXPECTED_ANSWER
    assert outcome.seconds < STALL_MS / 1000


async def test_it_restarts_on_the_secondary_when_the_stream_stalls_mid_answer(providers):
    providers.set_fault("openai", stall_after_chunks=3, stall_ms=STALL_MS, times=1)

    outcome = await collect()

    assert outcome.kinds == ["token", "attempt", "reset", "token", "attempt", "done"]
    failed, answered = outcome.attempts
    assert (failed.error_code, answered.provider) == ("timeout", "anthropic")
    assert failed.first_token_ms is not None
    assert failed.output_tokens > 0 and failed.tokens_estimated  # partial output is billed
    assert outcome.final_text == EXPECTED_ANSWER
    assert outcome.seconds < STALL_MS / 1000


async def test_it_restarts_on_the_secondary_when_the_connection_drops_mid_answer(providers):
    providers.set_fault("openai", drop_after_chunks=4, times=1)

    outcome = await collect()

    assert outcome.kinds == ["token", "attempt", "reset", "token", "attempt", "done"]
    failed, answered = outcome.attempts
    assert (failed.error_code, answered.provider, answered.outcome) == (
        "connection",
        "anthropic",
        "success",
    )
    assert outcome.final_text == EXPECTED_ANSWER
    assert outcome.done.provider == "anthropic"


@pytest.mark.parametrize("primary", ["openai", "anthropic"])
async def test_it_fails_over_on_a_malformed_chunk(providers, settings, primary):
    if primary == "anthropic":
        anthropic_first(settings)
    providers.set_fault(primary, malformed_after_chunks=3, times=1)

    outcome = await collect()

    failed, answered = outcome.attempts
    assert (failed.provider, failed.error_code) == (primary, "malformed_stream")
    assert answered.outcome == "success"
    assert "reset" in outcome.kinds
    assert outcome.final_text == EXPECTED_ANSWER


@pytest.mark.parametrize("primary", ["openai", "anthropic"])
async def test_it_fails_over_when_the_stream_ends_without_its_terminator(
    providers, settings, primary
):
    if primary == "anthropic":
        anthropic_first(settings)
    providers.set_fault(primary, no_terminator=True, times=1)

    outcome = await collect()

    failed, answered = outcome.attempts
    assert (failed.provider, failed.error_code) == (primary, "truncated_stream")
    assert answered.outcome == "success"
    assert outcome.kinds == ["token", "attempt", "reset", "token", "attempt", "done"]
    assert outcome.final_text == EXPECTED_ANSWER


@pytest.mark.parametrize(
    ("primary", "code"), [("openai", "server_error"), ("anthropic", "overloaded")]
)
async def test_it_fails_over_on_an_error_event_inside_the_stream(
    providers, settings, primary, code
):
    if primary == "anthropic":
        anthropic_first(settings)
    providers.set_fault(primary, error_after_chunks=2, times=1)

    outcome = await collect()

    failed, answered = outcome.attempts
    assert (failed.error_code, answered.outcome) == (code, "success")
    assert outcome.final_text == EXPECTED_ANSWER


# -- nobody answers -----------------------------------------------------------------------


async def test_it_raises_providers_unavailable_after_reporting_both_attempts(providers):
    providers.set_fault("openai", status=503, times=1)
    providers.set_fault("anthropic", status=529, times=1)

    outcome = await collect()

    assert isinstance(outcome.error, ProvidersUnavailable)
    assert (outcome.error.code, outcome.error.retryable) == ("provider_unavailable", True)
    assert outcome.error.last_error_code == "overloaded"
    assert [(a.provider, a.error_code) for a in outcome.attempts] == [
        ("openai", "server_error"),
        ("anthropic", "overloaded"),
    ]
    assert outcome.done is None


async def test_it_gives_up_within_the_timeouts_when_both_providers_stall(providers):
    providers.set_fault("openai", delay_before_ms=STALL_MS, times=1)
    providers.set_fault("anthropic", stall_after_chunks=2, stall_ms=STALL_MS, times=1)

    outcome = await collect()

    assert isinstance(outcome.error, ProvidersUnavailable)
    assert [a.error_code for a in outcome.attempts] == ["timeout", "timeout"]
    # First byte budget on one, idle budget on the other, plus overheads.
    assert outcome.seconds < (TIMEOUT_MS + TIMEOUT_MS + IDLE_TIMEOUT_MS) / 1000 + 1


async def test_it_raises_providers_unavailable_when_nothing_is_configured(settings):
    settings.OPENAI_API_KEY = settings.ANTHROPIC_API_KEY = ""
    settings.OPENAI_BASE_URL = settings.ANTHROPIC_BASE_URL = None

    outcome = await collect()

    assert isinstance(outcome.error, ProvidersUnavailable)
    assert outcome.events == []


async def test_it_answers_from_the_primary_alone_when_no_secondary_is_set(providers, settings):
    settings.AI_SECONDARY_PROVIDER = ""
    providers.set_fault("openai", status=500, times=1)

    outcome = await collect()

    assert isinstance(outcome.error, ProvidersUnavailable)
    assert [a.provider for a in outcome.attempts] == ["openai"]
    assert reporting.failover_ready() is False


# -- cancellation -------------------------------------------------------------------------


async def test_it_closes_the_stream_at_once_when_the_consumer_stops(providers):
    # The stream stalls after a few tokens: closing must not wait for it.
    providers.set_fault("openai", stall_after_chunks=3, stall_ms=STALL_MS, times=1)
    cancelled: list[AttemptRecord] = []
    cancelled_before = metric(
        "ai_chat_provider_requests_total", provider="openai", outcome="cancelled"
    )
    events = []

    started = time.monotonic()
    async with contextlib.aclosing(
        router.stream_answer(
            system_prompt=SYSTEM_PROMPT, history=HISTORY, on_cancelled=cancelled.append
        )
    ) as stream:
        async for event in stream:
            events.append(event)
            break
    closed_after = time.monotonic() - started

    assert [type(e) for e in events] == [TokenEvent]
    assert closed_after < 1.0
    [record] = cancelled
    assert (record.provider, record.outcome, record.error_code) == ("openai", "cancelled", None)
    assert record.first_token_ms is not None
    assert (
        metric("ai_chat_provider_requests_total", provider="openai", outcome="cancelled")
        == cancelled_before + 1
    )
    assert completions(providers, "anthropic") == []


async def test_it_stops_promptly_when_the_consuming_task_is_cancelled(providers):
    providers.set_fault("openai", stall_after_chunks=3, stall_ms=STALL_MS, times=1)
    cancelled: list[AttemptRecord] = []
    events: list = []
    first_token = asyncio.Event()

    async def consume() -> None:
        async for event in router.stream_answer(
            system_prompt=SYSTEM_PROMPT, history=HISTORY, on_cancelled=cancelled.append
        ):
            events.append(event)
            first_token.set()

    task = asyncio.create_task(consume())
    await first_token.wait()
    # The consumer is now waiting on the stalled stream inside the provider layer.
    task.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0

    assert all(isinstance(e, TokenEvent) for e in events)
    [record] = cancelled
    assert record.outcome == "cancelled"
    # The stall would have timed out into a failover; cancellation stopped everything.
    assert completions(providers, "anthropic") == []


# -- reading the body: one timer per stream ---------------------------------------------


async def _consume_slowly(*, hold_s: float) -> Outcome:
    """Collect an answer, holding the first token for `hold_s` (a slow consumer: the
    stream's timers must not count that time against the provider)."""
    outcome = Outcome()
    started = time.monotonic()
    try:
        async for event in router.stream_answer(system_prompt=SYSTEM_PROMPT, history=HISTORY):
            if not outcome.events:
                await asyncio.sleep(hold_s)  # the consumer's own work, not a sync point
            outcome.events.append(event)
    except ProviderError as error:
        outcome.error = error
    outcome.seconds = time.monotonic() - started
    return outcome


async def test_a_consumer_slower_than_the_idle_timeout_does_not_time_the_stream_out(
        providers):
    outcome = await _consume_slowly(hold_s=3 * IDLE_TIMEOUT_MS / 1000)

    [attempt] = outcome.attempts
    assert (attempt.provider, attempt.outcome) == ("openai", "success")
    assert outcome.final_text == EXPECTED_ANSWER


async def test_a_stall_after_a_slow_consumer_still_times_out(providers):
    providers.set_fault("openai", stall_after_chunks=3, stall_ms=STALL_MS, times=1)

    outcome = await _consume_slowly(hold_s=3 * IDLE_TIMEOUT_MS / 1000)

    failed, answered = outcome.attempts
    assert (failed.error_code, answered.provider) == ("timeout", "anthropic")
    assert outcome.final_text == EXPECTED_ANSWER
    assert outcome.seconds < STALL_MS / 1000


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_the_body_is_read_from_aiohttp_under_the_sdk_response(providers, provider):
    from chat.providers.streaming import DirectBody

    cfg = provider_config(provider)
    client = get_client(cfg)
    if provider == "openai":
        manager = client.chat.completions.with_streaming_response.create(
            model=cfg.model, messages=[{"role": "user", "content": "oi"}], stream=True)
    else:
        manager = client.messages.with_streaming_response.create(
            model=cfg.model, max_tokens=50, messages=[{"role": "user", "content": "oi"}],
            stream=True)
    async with manager as response:
        assert DirectBody.of(response.http_response) is not None


def test_an_encoded_body_is_left_to_the_sdk_to_decode():
    import httpx2

    from chat.providers.streaming import DirectBody

    gzipped = httpx2.Response(200, headers={"content-encoding": "gzip"}, content=b"")
    assert DirectBody.of(gzipped) is None
