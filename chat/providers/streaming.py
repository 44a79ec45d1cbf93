"""What both adapters share: per-attempt figures and the loop that reads a stream.

Timeouts are applied to each await on the network, never around a `yield`: a
deadline that spans a yield would fire inside the consumer's code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from .errors import (
    TRANSPORT_ERRORS,
    from_exception,
    quota_from_headers,
    stream_error,
    timeout_error,
)
from .sse import SSEParser

_DRAIN_S = 0.25


def milliseconds(seconds: float) -> int:
    """A duration in whole milliseconds, never negative (figures in records and metrics)."""
    return max(0, round(seconds * 1000))


class AttemptState:
    """Mutable figures of one attempt, filled in by the adapter as the stream goes."""

    __slots__ = (
        "provider",
        "started",
        "first_deadline",
        "stream_deadline",
        "idle_s",
        "response_started",
        "input_tokens",
        "output_tokens",
        "quota",
        "finish_reason",
    )

    def __init__(
        self, *, provider: str, started: float, timeout_s: float, idle_s: float, stream_s: float
    ) -> None:
        self.provider = provider
        self.started = started
        self.first_deadline = started + timeout_s
        self.stream_deadline = started + stream_s
        self.idle_s = idle_s
        self.response_started = False
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.quota: dict[str, int] | None = None
        self.finish_reason: str | None = None


async def open_stream(manager: Any, state: AttemptState) -> Any:
    """Send the request and wait for the response head, within the first-token budget."""
    try:
        async with asyncio.timeout_at(state.first_deadline):
            response = await manager.__aenter__()
    except TimeoutError:
        raise timeout_error(state.provider, "first_token") from None
    except Exception as exc:
        error = from_exception(state.provider, exc)
        if error is None:
            raise
        raise error from None
    state.response_started = True
    return response


async def next_chunk(body: AsyncIterator[bytes], deadline: float, state: AttemptState) -> bytes:
    """The next body chunk, b"" at the end of the body; our errors for timeouts and breaks."""
    try:
        async with asyncio.timeout_at(deadline):
            return await body.__anext__()
    except StopAsyncIteration:
        return b""
    except TimeoutError:
        phase = "first_token" if deadline == state.first_deadline else "stream"
        raise timeout_error(state.provider, phase) from None
    except TRANSPORT_ERRORS as exc:
        error = from_exception(state.provider, exc)
        assert error is not None
        raise error from None


async def drain(body: AsyncIterator[bytes]) -> None:
    """Read what follows the terminator so the connection can go back to the pool."""
    try:
        async with asyncio.timeout(_DRAIN_S):
            async for _ in body:
                pass
    except (TimeoutError, *TRANSPORT_ERRORS):
        # The answer is complete; a connection we cannot reuse just gets closed.
        pass


# Reads one SSE event's data: its text ("" when it carries none), None at the
# provider's end-of-answer event. Usage and finish reason go into the state.
EventReader = Callable[[bytes, "AttemptState"], "str | None"]


async def stream_text(manager: Any, state: AttemptState, *, read_event: EventReader,
                      terminator: str) -> AsyncIterator[str]:
    """The answer's text deltas from an SDK streaming-response manager; ProviderError on
    any failure. The loop both adapters share.

    The SSE body is read raw from the SDK's response, so the provider's own end
    event is seen (a body that ends without it is a truncated answer) and no model
    object is built per chunk. The first chunk must come within the first-token
    budget, each later one within the idle timeout once text flows, and the whole
    answer within the stream budget.
    """
    response = await open_stream(manager, state)
    try:
        state.quota = quota_from_headers(state.provider, response.headers)
        body = response.http_response.aiter_bytes()
        parser = SSEParser()
        loop = asyncio.get_running_loop()
        deadline = state.first_deadline
        streaming = False
        while True:
            chunk = await next_chunk(body, deadline, state)
            events = parser.feed(chunk) if chunk else parser.flush()
            for _event, data in events:
                text = read_event(data, state)
                if text:
                    streaming = True
                    yield text
                elif text is None:
                    await drain(body)
                    return
            if not chunk:
                raise stream_error(state.provider, "truncated_stream",
                                   f"stream ended without {terminator}")
            if streaming:
                deadline = min(loop.time() + state.idle_s, state.stream_deadline)
    finally:
        await manager.__aexit__(None, None, None)
