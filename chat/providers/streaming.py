"""What both adapters share: per-attempt figures and the loop that reads a stream.

Timeouts apply to the awaits on the network only, never around a `yield`: a
deadline that spans a yield would fire inside the consumer's code.

The body is read straight from the aiohttp response under the SDK's response
(`DirectBody`) when it has no content encoding to undo: each chunk came through
five async iterators (aiohttp's, the SDK's vendored transport's, httpx2's
three) and a deadline of its own (a timer set and cancelled per chunk), and
aiohttp re-armed its socket-read timer on every packet; at light load that was
a fifth of the event loop's work (BENCHMARKS.md). One timer per stream now
carries the first-token, idle and total deadlines, and only fires the
cancellation while a read is pending. A body with a content encoding is read
through the SDK's response as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

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
        # The socket-read timeout (AI_PROVIDER_TIMEOUT) is ours to apply (see
        # sdk_request): a silence longer than it ends the stream, as it did in aiohttp.
        self.idle_s = min(idle_s, timeout_s)
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


async def drain(body: AsyncIterator[bytes] | DirectBody) -> None:
    """Read what follows the terminator so the connection can go back to the pool."""
    try:
        async with asyncio.timeout(_DRAIN_S):
            if isinstance(body, DirectBody):
                await body.drain()
            else:
                async for _ in body:
                    pass
    except (TimeoutError, aiohttp.ClientError, *TRANSPORT_ERRORS):
        # The answer is complete; a connection we cannot reuse just gets closed.
        pass


class _StreamTimer:
    """One timer for a stream's deadlines, which cancels the reading task only while
    a read is pending (`reading`).

    The deadline only moves later as chunks arrive, so the timer is left where it
    is and, when it fires early, set again for the current deadline: about one
    timer per idle timeout rather than one per chunk.
    """

    __slots__ = ("_loop", "_task", "_handle", "_handle_at", "deadline", "reading",
                 "expired", "cancelling")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at = 0.0
        self.deadline = 0.0
        self.reading = False
        self.expired = False
        self.cancelling = 0

    def start_read(self, deadline: float) -> None:
        self.deadline = deadline
        task = self._task = asyncio.current_task()
        assert task is not None
        self.cancelling = task.cancelling()
        if self._handle is None or self._handle_at > deadline:
            self._set(deadline)
        self.reading = True

    def _set(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle_at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        if not self.reading:
            return  # the next read sets it again
        if self.deadline > self._handle_at:
            self._set(self.deadline)
            return
        self.expired = True
        assert self._task is not None
        self._task.cancel()

    def close(self) -> None:
        self.reading = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class DirectBody:
    """The response body read from aiohttp itself, under one timer (module docstring)."""

    __slots__ = ("_content", "_timer")

    def __init__(self, content: aiohttp.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        self._content = content
        self._timer = _StreamTimer(loop)

    @classmethod
    def of(cls, http_response: Any) -> DirectBody | None:
        """The direct reader of an SDK response on the aiohttp transport with an
        unencoded body; None for any other response."""
        encoding = http_response.headers.get("content-encoding")
        if encoding and encoding.strip().lower() != "identity":
            return None
        transport_stream = getattr(http_response.stream, "_stream", None)
        aiohttp_response = getattr(transport_stream, "_aiohttp_response", None)
        if not isinstance(aiohttp_response, aiohttp.ClientResponse):
            return None
        return cls(aiohttp_response.content, asyncio.get_running_loop())

    async def read(self, deadline: float, state: AttemptState) -> bytes:
        """As `next_chunk`: the next chunk, b"" at the end, our errors for the rest."""
        timer = self._timer
        timer.start_read(deadline)
        try:
            return await self._content.readany()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if timer.expired and task is not None and task.uncancel() <= timer.cancelling:
                phase = "first_token" if deadline == state.first_deadline else "stream"
                raise timeout_error(state.provider, phase) from None
            raise
        except (aiohttp.ClientError, *TRANSPORT_ERRORS) as exc:
            error = from_exception(state.provider, exc)
            assert error is not None
            raise error from None
        finally:
            timer.reading = False

    async def drain(self) -> None:
        self._timer.close()
        while await self._content.readany():
            pass

    def close(self) -> None:
        self._timer.close()


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
    direct: DirectBody | None = None
    try:
        state.quota = quota_from_headers(state.provider, response.headers)
        direct = DirectBody.of(response.http_response)
        body = direct if direct is not None else response.http_response.aiter_bytes()
        parser = SSEParser()
        loop = asyncio.get_running_loop()
        deadline = state.first_deadline
        streaming = False
        while True:
            if direct is not None:
                chunk = await direct.read(deadline, state)
            else:
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
        if direct is not None:
            direct.close()
        await manager.__aexit__(None, None, None)
