"""The simulated provider, driven through the real OpenAI and Anthropic SDKs over HTTP.

No database: these tests talk only to a loopback server started for this module.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from simulated_provider import SimulatorControlError, start_in_thread
from simulated_provider.answer import FILLER_TEXT, split_tokens

REPO_ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Paciente [NOME_1], CPF [CPF_1], pode fazer peeling?"
EXPECTED_ANSWER = f"Resposta simulada sobre: {QUESTION} {FILLER_TEXT}"
USER_MESSAGES = [{"role": "user", "content": QUESTION}]


@pytest.fixture(scope="module")
def sim():
    handle = start_in_thread(host="127.0.0.1", port=0, token_delay_ms=0)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _clean_sim(sim):
    sim.reset(config=True)
    yield
    sim.reset(config=True)


@pytest.fixture
async def oai(sim):
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def claude(sim):
    client = anthropic.AsyncAnthropic(
        base_url=sim.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    )
    yield client
    await client.close()


async def openai_stream(client, **kwargs):
    """Text, usage and number of chunks of a streamed OpenAI answer."""
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=USER_MESSAGES, stream=True, **kwargs
    )
    parts, usage, chunks = [], None, 0
    async for chunk in stream:
        chunks += 1
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage
    return "".join(parts), usage, chunks


async def anthropic_events(client, **kwargs):
    """Events of a streamed Anthropic answer, as the SDK yields them."""
    stream = await client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=kwargs.pop("max_tokens", 1000),
        messages=USER_MESSAGES,
        stream=True,
        **kwargs,
    )
    return [event async for event in stream]


def anthropic_text(events) -> str:
    return "".join(e.delta.text for e in events if e.type == "content_block_delta")


# -- answers -----------------------------------------------------------------


async def test_it_streams_the_openai_echo_answer_with_usage(oai):
    text, usage, _ = await openai_stream(oai, stream_options={"include_usage": True})

    assert text == EXPECTED_ANSWER
    assert usage.completion_tokens == len(split_tokens(EXPECTED_ANSWER))
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_it_sends_openai_usage_in_a_last_chunk_with_no_choices(oai):
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER_MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_it_leaves_usage_out_of_the_openai_stream_unless_asked(oai):
    _, usage, _ = await openai_stream(oai)

    assert usage is None


async def test_it_answers_openai_without_streaming(oai):
    completion = await oai.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)

    assert completion.choices[0].message.content == EXPECTED_ANSWER
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == len(split_tokens(EXPECTED_ANSWER))
    assert completion.model == "gpt-4o-mini"


async def test_it_streams_the_anthropic_event_sequence_with_usage(claude):
    events = await anthropic_events(claude)
    types = [event.type for event in events]
    deltas = [event for event in events if event.type == "content_block_delta"]

    assert types == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * len(deltas),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert anthropic_text(events) == EXPECTED_ANSWER
    assert events[0].message.usage.input_tokens > 0
    assert events[-2].usage.output_tokens == len(deltas)
    assert events[-2].delta.stop_reason == "end_turn"


async def test_it_sends_a_ping_after_the_content_block_start(claude):
    # The SDK swallows pings, so look at the wire.
    async with claude.messages.with_streaming_response.create(
        model="claude-haiku-4-5", max_tokens=100, messages=USER_MESSAGES, stream=True
    ) as response:
        names = [
            line.removeprefix("event: ")
            async for line in response.iter_lines()
            if line.startswith("event: ")
        ]

    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


async def test_it_works_with_the_anthropic_stream_helper(claude):
    async with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=1000, messages=USER_MESSAGES
    ) as stream:
        text = "".join([delta async for delta in stream.text_stream])
        message = await stream.get_final_message()

    assert text == EXPECTED_ANSWER
    assert message.usage.output_tokens == len(split_tokens(EXPECTED_ANSWER))


async def test_it_answers_anthropic_without_streaming(claude):
    message = await claude.messages.create(
        model="claude-haiku-4-5", max_tokens=1000, messages=USER_MESSAGES, system="Seja breve."
    )

    assert message.content[0].text == EXPECTED_ANSWER
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == len(split_tokens(EXPECTED_ANSWER))
    assert message.usage.input_tokens > 0


async def test_it_makes_answers_of_the_configured_length(sim, oai):
    sim.configure(answer_tokens=50)

    text, usage, _ = await openai_stream(oai, stream_options={"include_usage": True})

    echo_tokens = len(split_tokens(f"Resposta simulada sobre: {QUESTION}"))
    assert usage.completion_tokens == echo_tokens + 50
    assert text.startswith(f"Resposta simulada sobre: {QUESTION} ")


async def test_it_stops_at_max_tokens(oai, claude):
    completion = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=USER_MESSAGES, max_tokens=5
    )
    message = await claude.messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=USER_MESSAGES
    )

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 5
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "".join(split_tokens(EXPECTED_ANSWER)[:5])


async def test_it_paces_tokens_by_the_configured_delay(sim, oai):
    sim.configure(token_delay_ms=10)
    started = time.monotonic()

    _, _, chunks = await openai_stream(oai)

    # A lower bound only: the content chunks after the first are spaced 10 ms apart.
    content_chunks = chunks - 2
    assert time.monotonic() - started >= (content_chunks - 1) * 0.010


# -- rate-limit headers and the probe ----------------------------------------


async def test_it_reports_openai_rate_limits_in_headers(oai):
    raw = await oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=USER_MESSAGES
    )
    async with oai.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=USER_MESSAGES, stream=True
    ) as streamed:
        lines = [line async for line in streamed.iter_lines() if line]

    limit = int(raw.headers["x-ratelimit-limit-tokens"])
    first_remaining = int(raw.headers["x-ratelimit-remaining-tokens"])
    second_remaining = int(streamed.headers["x-ratelimit-remaining-tokens"])
    assert first_remaining < limit
    assert second_remaining < first_remaining
    assert int(streamed.headers["x-ratelimit-remaining-requests"]) == (
        int(streamed.headers["x-ratelimit-limit-requests"]) - 2
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().choices[0].message.content == EXPECTED_ANSWER
    assert lines[-1] == "data: [DONE]"


async def test_it_reports_anthropic_rate_limits_in_headers(claude):
    raw = await claude.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=100, messages=USER_MESSAGES
    )
    async with claude.messages.with_streaming_response.create(
        model="claude-haiku-4-5", max_tokens=100, messages=USER_MESSAGES, stream=True
    ) as streamed:
        await streamed.read()

    limit = int(raw.headers["anthropic-ratelimit-tokens-limit"])
    first_remaining = int(raw.headers["anthropic-ratelimit-tokens-remaining"])
    assert first_remaining < limit
    assert int(streamed.headers["anthropic-ratelimit-tokens-remaining"]) < first_remaining
    assert int(streamed.headers["anthropic-ratelimit-requests-remaining"]) >= 0
    assert raw.headers["request-id"].startswith("req_")
    assert raw.request_id == raw.headers["request-id"]


async def test_it_pins_one_providers_remaining_quota_through_the_config(sim, oai, claude):
    sim.configure(provider="anthropic", remaining_tokens=100)

    from_claude = await claude.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=100, messages=USER_MESSAGES
    )
    from_openai = await oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=USER_MESSAGES
    )

    assert from_claude.headers["anthropic-ratelimit-tokens-remaining"] == "100"
    assert int(from_openai.headers["x-ratelimit-remaining-tokens"]) > 100


async def test_it_answers_the_model_probe_of_both_sdks_for_free(oai, claude):
    openai_models = await oai.models.with_raw_response.list()
    anthropic_models = await claude.models.with_raw_response.list()

    assert [m.id for m in openai_models.parse().data]
    assert [m.id for m in (await anthropic_models.parse()).data]
    assert (
        openai_models.headers["x-ratelimit-remaining-tokens"]
        == (openai_models.headers["x-ratelimit-limit-tokens"])
    )
    assert (
        anthropic_models.headers["anthropic-ratelimit-tokens-remaining"]
        == (anthropic_models.headers["anthropic-ratelimit-tokens-limit"])
    )


async def test_it_flags_moderation_only_for_the_configured_term(oai):
    clean = await oai.moderations.create(input="Posso aplicar botox na testa?")
    flagged = await oai.moderations.create(input=["ok", "texto com FLAGGED_TEST_TERM aqui"])

    assert clean.results[0].flagged is False
    assert [result.flagged for result in flagged.results] == [False, True]


# -- authentication and status faults -----------------------------------------


async def test_it_rejects_the_bad_key_in_each_apis_error_shape(sim):
    bad_openai = openai.AsyncOpenAI(
        base_url=sim.openai_base_url, api_key="invalid-key", max_retries=0
    )
    bad_anthropic = anthropic.AsyncAnthropic(
        base_url=sim.anthropic_base_url, api_key="invalid-key", max_retries=0
    )

    with pytest.raises(openai.AuthenticationError) as openai_error:
        await bad_openai.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)
    with pytest.raises(anthropic.AuthenticationError) as anthropic_error:
        await bad_anthropic.messages.create(
            model="claude-haiku-4-5", max_tokens=10, messages=USER_MESSAGES
        )

    assert openai_error.value.status_code == 401
    assert openai_error.value.code == "invalid_api_key"
    assert anthropic_error.value.body["error"]["type"] == "authentication_error"
    await bad_openai.close()
    await bad_anthropic.close()


@pytest.mark.parametrize(
    ("fault", "error_class", "error_type"),
    [
        ({"status": 429, "retry_after": 2}, openai.RateLimitError, "tokens"),
        ({"status": 500}, openai.InternalServerError, "server_error"),
        ({"status": 502}, openai.InternalServerError, "server_error"),
        ({"status": 503}, openai.InternalServerError, "server_error"),
        ({"status": 401}, openai.AuthenticationError, "invalid_request_error"),
        ({"status": 403}, openai.PermissionDeniedError, "request_forbidden"),
        (
            {"status": 400, "code": "context_length_exceeded"},
            openai.BadRequestError,
            "invalid_request_error",
        ),
    ],
)
async def test_it_fails_openai_calls_with_the_injected_status(
    sim, oai, fault, error_class, error_type
):
    sim.set_fault("openai", **fault)

    with pytest.raises(error_class) as error:
        await openai_stream(oai)

    assert error.value.status_code == fault["status"]
    assert error.value.type == error_type
    if "code" in fault:
        assert error.value.code == fault["code"]
    if "retry_after" in fault:
        assert error.value.response.headers["retry-after"] == "2"


@pytest.mark.parametrize(
    ("fault", "error_class", "error_type"),
    [
        ({"status": 529}, anthropic.OverloadedError, "overloaded_error"),
        ({"status": 429, "retry_after": 3}, anthropic.RateLimitError, "rate_limit_error"),
        ({"status": 500}, anthropic.InternalServerError, "api_error"),
        ({"status": 503}, anthropic.InternalServerError, "api_error"),
        ({"status": 401}, anthropic.AuthenticationError, "authentication_error"),
        ({"status": 403}, anthropic.PermissionDeniedError, "permission_error"),
        (
            {"status": 400, "code": "context_length_exceeded"},
            anthropic.BadRequestError,
            "invalid_request_error",
        ),
    ],
)
async def test_it_fails_anthropic_calls_with_the_injected_status(
    sim, claude, fault, error_class, error_type
):
    sim.set_fault("anthropic", **fault)

    with pytest.raises(error_class) as error:
        await anthropic_events(claude)

    assert error.value.status_code == fault["status"]
    assert error.value.body["type"] == "error"
    assert error.value.body["error"]["type"] == error_type
    if "retry_after" in fault:
        assert error.value.response.headers["retry-after"] == "3"
    if "code" in fault:
        assert "prompt is too long" in error.value.body["error"]["message"]


async def test_it_applies_a_fault_only_as_many_times_as_asked(sim, oai):
    sim.set_fault("openai", status=500, times=2)

    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await openai_stream(oai)
    text, _, _ = await openai_stream(oai)

    assert text == EXPECTED_ANSWER
    assert sim.faults() == []


async def test_it_keeps_a_fault_until_cleared_when_no_times_given(sim, oai):
    sim.set_fault("openai", status=503)

    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await openai_stream(oai)
    sim.clear_faults()
    text, _, _ = await openai_stream(oai)

    assert text == EXPECTED_ANSWER


async def test_it_keeps_faults_of_one_provider_away_from_the_other(sim, oai, claude):
    sim.set_fault("anthropic", status=529)

    text, _, _ = await openai_stream(oai)

    assert text == EXPECTED_ANSWER
    with pytest.raises(anthropic.OverloadedError):
        await anthropic_events(claude)


async def test_it_spares_the_probe_unless_the_fault_names_its_path(sim, oai, claude):
    sim.set_fault("openai", status=500)
    sim.set_fault("anthropic", status=529, paths="*")

    models = await oai.models.list()

    assert models.data
    with pytest.raises(anthropic.OverloadedError):
        await claude.models.list()


async def test_it_waits_before_the_first_byte_when_asked(sim):
    sim.set_fault("openai", delay_before_ms=3000)
    sim.set_fault("anthropic", delay_before_ms=3000)
    impatient_openai = openai.AsyncOpenAI(
        base_url=sim.openai_base_url, api_key="k", max_retries=0, timeout=0.3
    )
    impatient_anthropic = anthropic.AsyncAnthropic(
        base_url=sim.anthropic_base_url, api_key="k", max_retries=0, timeout=0.3
    )

    with pytest.raises(openai.APITimeoutError):
        await openai_stream(impatient_openai)
    with pytest.raises(anthropic.APITimeoutError):
        await anthropic_events(impatient_anthropic)
    await impatient_openai.close()
    await impatient_anthropic.close()


# -- stream faults -------------------------------------------------------------


async def test_it_drops_the_openai_connection_mid_stream(sim, oai):
    sim.set_fault("openai", drop_after_chunks=3)
    stream = await oai.chat.completions.create(
        model="gpt-4o-mini", messages=USER_MESSAGES, stream=True
    )
    received = []

    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content)

    assert "".join(received) == "".join(split_tokens(EXPECTED_ANSWER)[:3])


async def test_it_drops_the_anthropic_connection_mid_stream(sim, claude):
    sim.set_fault("anthropic", drop_after_chunks=3)
    stream = await claude.messages.create(
        model="claude-haiku-4-5", max_tokens=100, messages=USER_MESSAGES, stream=True
    )
    received = []

    # This SDK lets the transport's error through while iterating a stream.
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        async for event in stream:
            received.append(event)

    assert anthropic_text(received) == "".join(split_tokens(EXPECTED_ANSWER)[:3])
    assert "message_stop" not in [event.type for event in received]


async def test_it_drops_a_non_streamed_answer_half_way(sim, oai, claude):
    sim.set_fault("openai", drop_after_chunks=0)
    sim.set_fault("anthropic", drop_after_chunks=0)

    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)
    with pytest.raises(anthropic.APIConnectionError):
        await claude.messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=USER_MESSAGES
        )


async def test_it_stalls_mid_stream_past_the_clients_timeout(sim):
    sim.set_fault("openai", stall_after_chunks=2, stall_ms=5000)
    sim.set_fault("anthropic", stall_after_chunks=2, stall_ms=5000)
    impatient_openai = openai.AsyncOpenAI(
        base_url=sim.openai_base_url, api_key="k", max_retries=0, timeout=0.3
    )
    impatient_anthropic = anthropic.AsyncAnthropic(
        base_url=sim.anthropic_base_url, api_key="k", max_retries=0, timeout=0.3
    )
    received = []

    stream = await impatient_openai.chat.completions.create(
        model="gpt-4o-mini", messages=USER_MESSAGES, stream=True
    )
    with pytest.raises(openai.APITimeoutError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    with pytest.raises((anthropic.APITimeoutError, httpx2.TimeoutException)):
        await anthropic_events(impatient_anthropic)

    assert "".join(received) == "".join(split_tokens(EXPECTED_ANSWER)[:2])
    await impatient_openai.close()
    await impatient_anthropic.close()


async def test_it_resumes_after_a_short_stall(sim, oai):
    sim.set_fault("openai", stall_after_chunks=2, stall_ms=200)
    started = time.monotonic()

    text, _, _ = await openai_stream(oai)

    assert text == EXPECTED_ANSWER
    assert time.monotonic() - started >= 0.2


async def test_it_sends_a_malformed_chunk_when_asked(sim, oai, claude):
    sim.set_fault("openai", malformed_after_chunks=2)
    sim.set_fault("anthropic", malformed_after_chunks=2)

    # Neither SDK turns undecodable event data into an API error.
    with pytest.raises(json.JSONDecodeError):
        await openai_stream(oai)
    with pytest.raises(json.JSONDecodeError):
        await anthropic_events(claude)


async def test_it_ends_the_openai_stream_without_done_when_asked(sim, oai):
    sim.set_fault("openai", no_terminator=True)

    text, _, _ = await openai_stream(oai)
    async with oai.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=USER_MESSAGES, stream=True
    ) as response:
        lines = [line async for line in response.iter_lines() if line]

    assert text == EXPECTED_ANSWER
    assert "data: [DONE]" not in lines
    assert '"finish_reason":"stop"' in lines[-1]


async def test_it_ends_the_anthropic_stream_without_message_stop_when_asked(sim, claude):
    sim.set_fault("anthropic", no_terminator=True)

    events = await anthropic_events(claude)

    assert anthropic_text(events) == EXPECTED_ANSWER
    assert events[-1].type == "message_delta"


async def test_it_sends_no_usage_like_some_compatible_servers(sim, oai):
    sim.set_fault("openai", no_usage=True)

    text, usage, _ = await openai_stream(oai, stream_options={"include_usage": True})
    completion = await oai.chat.completions.create(model="gpt-4o-mini", messages=USER_MESSAGES)

    assert text == EXPECTED_ANSWER
    assert usage is None
    assert completion.usage is None


async def test_it_sends_an_error_event_inside_a_started_stream(sim, oai, claude):
    sim.set_fault("openai", error_after_chunks=2)
    sim.set_fault("anthropic", error_after_chunks=2)

    with pytest.raises(openai.APIError) as openai_error:
        await openai_stream(oai)
    with pytest.raises(anthropic.APIStatusError) as anthropic_error:
        await anthropic_events(claude)

    assert openai_error.value.type == "server_error"
    assert anthropic_error.value.body["error"]["type"] == "overloaded_error"


# -- recording and control API ------------------------------------------------


async def test_it_records_what_it_received_without_the_keys(sim, oai, claude):
    await openai_stream(oai, stream_options={"include_usage": True})
    await claude.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=USER_MESSAGES)

    records = sim.requests()
    openai_only = sim.requests(provider="openai")

    assert [(r["provider"], r["path"]) for r in records] == [
        ("openai", "/v1/chat/completions"),
        ("anthropic", "/v1/messages"),
    ]
    assert records[0]["body"]["messages"] == USER_MESSAGES
    assert records[0]["body"]["stream_options"] == {"include_usage": True}
    assert records[1]["body"]["max_tokens"] == 100
    assert [r["status"] for r in records] == [200, 200]
    assert len(openai_only) == 1
    dumped = json.dumps(records)
    assert "sk-test" not in dumped
    assert "sk-ant-test" not in dumped
    assert records[0]["headers"]["authorization"] == "[redacted]"


async def test_it_records_refused_requests_with_their_status(sim, oai):
    fault = sim.set_fault("openai", status=429, times=1)

    with pytest.raises(openai.RateLimitError):
        await openai_stream(oai)

    (record,) = sim.requests()
    assert record["status"] == 429
    assert record["fault_id"] == fault["id"]


async def test_it_clears_recordings_and_faults_through_the_control_api(sim, oai):
    sim.set_fault("openai", status=500)
    sim.set_fault("anthropic", status=529)
    await oai.models.list()

    sim.clear_faults("anthropic")
    remaining = sim.faults()
    sim.clear_faults()
    sim.clear_requests()

    assert [fault["provider"] for fault in remaining] == ["openai"]
    assert sim.faults() == []
    assert sim.requests() == []


async def test_it_counts_requests_beyond_what_it_keeps_recorded(sim, oai):
    sim.configure(record_limit=2)

    for _ in range(3):
        await oai.models.list()

    assert len(sim.requests()) == 2
    assert sim.stats() == {
        "received": 3,
        "received_by_provider": {"openai": 3, "anthropic": 0},
        "recorded": 2,
    }


def test_it_refuses_a_fault_it_does_not_understand(sim):
    with pytest.raises(SimulatorControlError, match="unknown fault fields"):
        sim.set_fault("openai", stauts=500)
    with pytest.raises(SimulatorControlError, match="provider"):
        sim.set_fault("gemini", status=500)
    with pytest.raises(SimulatorControlError, match="openai provider only"):
        sim.set_fault("anthropic", no_usage=True)

    assert sim.faults() == []


def test_it_refuses_settings_it_does_not_know(sim):
    with pytest.raises(SimulatorControlError, match="unknown config keys"):
        sim.configure(token_delay=5)


# -- scale and the command ----------------------------------------------------


async def test_it_serves_hundreds_of_concurrent_streams(sim):
    sim.configure(token_delay_ms=2)
    openai_client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=0)
    anthropic_client = anthropic.AsyncAnthropic(
        base_url=sim.anthropic_base_url, api_key="k", max_retries=0
    )

    results = await asyncio.gather(
        *[openai_stream(openai_client) for _ in range(150)],
        *[anthropic_events(anthropic_client) for _ in range(150)],
    )

    assert all(text == EXPECTED_ANSWER for text, _, _ in results[:150])
    assert all(anthropic_text(events) == EXPECTED_ANSWER for events in results[150:])
    assert len(sim.requests()) == 300
    await openai_client.close()
    await anthropic_client.close()


async def test_it_runs_as_a_command_and_stops_cleanly_on_sigterm():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulated_provider",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--token-delay-ms",
        "0",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = line.split(" listening on ", 1)[1].split()[0]
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=USER_MESSAGES
        )
        await client.close()
        with urllib.request.urlopen(f"{url}/_sim/requests", timeout=10) as response:
            recorded = json.loads(response.read())

        process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert line.startswith("Simulated AI provider listening on http://127.0.0.1:")
    assert completion.choices[0].message.content == EXPECTED_ANSWER
    assert recorded["count"] == 1
    assert returncode == 0
