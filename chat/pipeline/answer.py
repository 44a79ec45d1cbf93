"""Answering an accepted message: stream from the provider, relay, store.

stream from the provider (failover in `chat.providers.router`) → re-identify
what the clinician sees → coalesce tokens into frames → store the answer and its
provider attempts in one transaction → append its audit events. A stop (or a
stopping process) keeps what was generated, marked stopped; a client that goes
away does not stop the answer (`answer_outliving_reader`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from chat import shutdown
from chat.errors import ChatError
from chat.models import ChatMessage, ProviderAttempt
from chat.pipeline import sql
from chat.pipeline.accept import AcceptedMessage, message_accept
from chat.providers import router
from chat.providers.base import AttemptEvent, DoneEvent, ProviderError, ResetEvent, TokenEvent
from compliance import audit, redaction
from monitoring import metrics
from neonpro.blocking import run_blocking
from neonpro.db import insert_rows

logger = logging.getLogger(__name__)

_REPLAY_POLL_SECONDS = 0.25


def _ack_frame(accepted: AcceptedMessage) -> dict[str, Any]:
    client_id = accepted.user_message.client_id
    return {
        "type": "ack",
        "message_id": str(accepted.user_message.id),
        "client_id": str(client_id) if client_id else None,
        "pii": accepted.pii_counts,
    }


def _done_frame(message: ChatMessage) -> dict[str, Any]:
    frame = {
        "type": "done",
        "message_id": str(message.id),
        "provider": message.provider,
        "model": message.model,
        "usage": {"input_tokens": message.input_tokens, "output_tokens": message.output_tokens},
        "latency_ms": message.latency_ms,
        "first_token_ms": message.first_token_ms,
    }
    if message.status == ChatMessage.Status.STOPPED:
        frame["stopped"] = True
    return frame


def _reload_message(*, message_id: uuid.UUID) -> ChatMessage:
    return ChatMessage.objects.get(id=message_id)


async def _replay(accepted: AcceptedMessage) -> AsyncIterator[dict[str, Any]]:
    """Replay a stored answer; if another connection is still streaming it, wait for it."""
    message = accepted.assistant_message
    deadline = time.monotonic() + settings.AI_PROVIDER_TIMEOUT / 1000 * 2 + 5
    while message.status == ChatMessage.Status.STREAMING and time.monotonic() < deadline:
        await asyncio.sleep(_REPLAY_POLL_SECONDS)
        message = await run_blocking(_reload_message, message_id=message.id)
    accepted.assistant_message = message  # the stored answer, for `message_exchange`
    yield _ack_frame(accepted)
    if message.status == ChatMessage.Status.STREAMING:
        yield ChatError("in_progress", "The answer is still being generated; retry shortly.",
                        message_id=str(accepted.user_message.id)).as_frame()
        return
    if message.status == ChatMessage.Status.FAILED:
        yield ChatError(message.error_code or "provider_unavailable",
                        "The assistant could not answer this message.",
                        message_id=str(accepted.user_message.id)).as_frame()
        return
    if message.content:
        yield {"type": "token", "delta": message.content}
    yield _done_frame(message)


def _finish_answer(
    *, accepted: AcceptedMessage, display_text: str, provider_text: str, status: str,
    attempts: list, done: DoneEvent | None, error_code: str = "",
    first_token_ms: int | None, latency_ms: int,
    provider_write: Callable[[], None] | None = None,
) -> ChatMessage:
    """Persist the answer and its provider attempts in one transaction.

    `provider_write`: the answering provider's live figures (taken over from its
    DoneEvent), written first, as the router would have before handing the answer
    over; in this step rather than in a blocking step of their own.
    """
    if provider_write is not None:
        provider_write()
    message = accepted.assistant_message
    message.content = display_text
    message.redacted_content = provider_text
    message.status = status
    message.error_code = error_code
    message.latency_ms = latency_ms
    message.first_token_ms = first_token_ms
    if done is not None:
        message.provider, message.model = done.provider, done.model
        message.input_tokens, message.output_tokens = done.input_tokens, done.output_tokens
        message.tokens_estimated = done.tokens_estimated
    elif attempts:
        # The stored text's author: the last attempt that produced text (a failover that
        # never answered left the previous provider's partial text in place, and a reset
        # before the next provider's first token discarded it); with no text at all, the
        # last provider tried.
        source = next((a for a in reversed(attempts) if a.first_token_ms is not None),
                      attempts[-1]) if display_text or provider_text else attempts[-1]
        message.provider, message.model = source.provider, source.model
    message.updated_at = timezone.now()
    with transaction.atomic():
        # The session row first, then the message: the order the accept step locks in.
        sql.session_add_search_tokens(session_id=accepted.session_id, user_id=accepted.user_id,
                           texts=[accepted.user_message.redacted_content, provider_text])
        sql.answer_store(message)
        insert_rows([
            ProviderAttempt(
                message=message, provider=a.provider, model=a.model, outcome=a.outcome,
                error_code=a.error_code or "", started_at=a.started_at,
                latency_ms=a.latency_ms, first_token_ms=a.first_token_ms,
                input_tokens=a.input_tokens, output_tokens=a.output_tokens,
                tokens_estimated=a.tokens_estimated, cost_usd=a.cost_usd,
            )
            for a in attempts
        ])
    # The session's idle clock runs from the clinician's messages (set on accept).
    metrics.MESSAGES.labels(role="assistant").inc()
    audit.record_message_processed(message=message, session_id=accepted.session_id,
                                   subject_user_id=accepted.user_id,
                                   clinic_id=accepted.clinic_id,
                                   pii_counts=accepted.pii_counts, attempts=attempts,
                                   pii_detected_in=(str(accepted.user_message.id)
                                                    if accepted.new_question else None),
                                   pii_policy=accepted.pii_policy)
    return message


class AnswerRelay:
    """What the clinician sees of a streaming answer: the provider's text re-identified
    (placeholders and surrogates back to the real values, also when split across
    chunks) and coalesced into frames.

    Tokens arriving faster than AI_STREAM_COALESCE_MS share one frame; the first is
    never delayed. Both texts are kept: the display text is stored as the answer,
    the provider's (redacted) text as what the provider saw.
    """

    def __init__(self, mapping: dict[str, str], *, started: float) -> None:
        self._mapping = mapping
        self._started = started
        self._coalesce_s = settings.AI_STREAM_COALESCE_MS / 1000
        self._reidentifier = redaction.StreamReidentifier(mapping)
        self._provider_parts: list[str] = []
        self._display_parts: list[str] = []
        self._pending: list[str] = []
        self._last_frame_at = 0.0
        self.first_token_ms: int | None = None

    @property
    def provider_text(self) -> str:
        return "".join(self._provider_parts)

    @property
    def display_text(self) -> str:
        return "".join(self._display_parts)

    def feed(self, delta: str) -> dict[str, Any] | None:
        """Take one provider token; the frame to send now, if any."""
        self._provider_parts.append(delta)
        visible = self._reidentifier.feed(delta)
        if not visible:
            return None
        self._display_parts.append(visible)
        self._pending.append(visible)
        now = time.monotonic()
        if self.first_token_ms is None:
            self.first_token_ms = int((now - self._started) * 1000)
        if now - self._last_frame_at < self._coalesce_s:
            return None
        self._last_frame_at = now
        return self._take_pending()

    def reset(self) -> None:
        """Forget the text so far (a failover restarts the answer with another provider)."""
        self._provider_parts.clear()
        self._display_parts.clear()
        self._pending.clear()
        self._reidentifier = redaction.StreamReidentifier(self._mapping)

    def finish(self) -> dict[str, Any] | None:
        """The last frame: what is still pending, and whatever the re-identifier held
        back (plain text now that no more chunks come)."""
        tail = self._reidentifier.flush()
        self._display_parts.append(tail)
        self._pending.append(tail)
        return self._take_pending()

    def _take_pending(self) -> dict[str, Any] | None:
        delta = "".join(self._pending)
        self._pending.clear()
        return {"type": "token", "delta": delta} if delta else None


class _Answer:
    """One answer being generated: its relay and what the provider said about itself."""

    def __init__(self, accepted: AcceptedMessage) -> None:
        self.accepted = accepted
        self.started = time.monotonic()
        self.relay = AnswerRelay(accepted.mapping, started=self.started)
        self.attempts: list = []
        self.done: DoneEvent | None = None
        self.provider_write: Callable[[], None] | None = None

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def handle(self, event: Any) -> dict[str, Any] | None:
        """Take one router event; the frame to send now, if any."""
        if isinstance(event, TokenEvent):
            return self.relay.feed(event.delta)
        if isinstance(event, ResetEvent):
            self.relay.reset()
            return {"type": "reset", "reason": event.reason}
        if isinstance(event, AttemptEvent):
            self.attempts.append(event.attempt)
        elif isinstance(event, DoneEvent):
            self.done = event
            if event.deferred is not None:
                self.provider_write = event.deferred.claim()
        return None

    async def store(self, status: str, error_code: str = "") -> ChatMessage:
        """Store the answer as it stands. Shielded: a cancellation arriving now must not
        leave a half-written answer."""
        relay = self.relay
        return await asyncio.shield(run_blocking(
            _finish_answer, accepted=self.accepted, display_text=relay.display_text,
            provider_text=relay.provider_text, status=status, attempts=self.attempts,
            done=self.done, error_code=error_code, first_token_ms=relay.first_token_ms,
            latency_ms=self.elapsed_ms(), provider_write=self.provider_write,
        ))


async def _generate(accepted: AcceptedMessage, *, trace_id: str | None
                    ) -> AsyncIterator[dict[str, Any]]:
    answer = _Answer(accepted)
    try:
        async for event in router.stream_answer(
            system_prompt=settings.AI_SYSTEM_PROMPT, history=accepted.history,
            trace_id=trace_id, on_cancelled=answer.attempts.append,
        ):
            frame = answer.handle(event)
            if frame is not None:
                yield frame
    except asyncio.CancelledError:
        # `stop` from the clinician (or shutdown): keep what was generated, marked stopped.
        tail = answer.relay.finish()
        message = await answer.store(ChatMessage.Status.STOPPED)
        if tail:
            yield tail
        yield _done_frame(message)
        return
    except ProviderError as exc:
        yield await _store_failure(answer, exc)
        return
    if answer.relay.first_token_ms is None:
        answer.relay.first_token_ms = answer.elapsed_ms()
    tail = answer.relay.finish()
    if tail:
        yield tail
    message = await answer.store(ChatMessage.Status.COMPLETE)
    _report_answered(answer, message)
    yield _done_frame(message)


async def _store_failure(answer: _Answer, exc: ProviderError) -> dict[str, Any]:
    """Store an answer no provider could give; the error frame the clinician gets."""
    retryable = exc.retryable or exc.code == "provider_unavailable"
    code = "provider_unavailable" if retryable else "provider_error"
    await answer.store(ChatMessage.Status.FAILED, error_code=code)
    metrics.ERRORS.labels(type=code).inc()
    logger.warning("no provider could answer", extra={
        "event": "provider_unavailable", "sessionId": str(answer.accepted.session_id),
        "metadata": {"error": exc.code}})
    detail = ("The AI providers are unavailable right now; your message was kept, "
              "you can retry it.") if retryable else \
        "The AI provider rejected the request; the team has been notified."
    return ChatError(code, detail, message_id=str(answer.accepted.user_message.id)).as_frame()


def _report_answered(answer: _Answer, message: ChatMessage) -> None:
    """Metrics and the log line of a completed answer."""
    provider = message.provider or "unknown"
    metrics.RESPONSE_TIME.labels(provider=provider).observe(message.latency_ms / 1000)
    metrics.FIRST_TOKEN_TIME.labels(provider=provider).observe(
        answer.relay.first_token_ms / 1000)
    logger.info("AI message processed", extra={
        "event": "message_processed", "sessionId": str(answer.accepted.session_id),
        "metadata": {"provider": provider, "responseTime": message.latency_ms,
                     "tokenCount": message.input_tokens + message.output_tokens,
                     "piiDetected": bool(answer.accepted.pii_counts)}})


async def answer_stream(accepted: AcceptedMessage, *, trace_id: str | None = None
                        ) -> AsyncIterator[dict[str, Any]]:
    """The frames of an accepted message: ack, token…, (reset, token…), done or error."""
    # Registered as in flight: a stopping web process lets it finish or stores it stopped.
    with shutdown.tracking_current_task():
        if accepted.replay:
            async for frame in _replay(accepted):
                yield frame
            return
        yield _ack_frame(accepted)
        async for frame in _generate(accepted, trace_id=trace_id):
            yield frame


# Answers whose reader went away, kept referenced until they are stored (the event loop
# holds tasks only weakly).
_DETACHED_ANSWERS: set[asyncio.Task] = set()


async def answer_outliving_reader(frames: AsyncIterator[dict[str, Any]]
                                  ) -> AsyncIterator[dict[str, Any]]:
    """Relay `frames`, but let the answer run to its end if the reader goes away.

    The rule for every door: a client that goes away (closed tab, lost network, a
    proxy timeout) does not stop the answer; only an explicit stop does. The
    answer is generated to its end and stored, and the client that reconnects and
    resends the same client_id gets it replayed without a second provider call
    (and without losing what the assistant said). The WebSocket consumer runs each
    answer in its own task for the same reason; SSE, whose response generator is
    cancelled when the client disconnects, goes through here.
    """
    queue: asyncio.Queue = asyncio.Queue()
    done = object()
    failure: list[BaseException] = []
    reader_gone = False

    async def produce() -> None:
        try:
            async for frame in frames:
                queue.put_nowait(frame)
        except Exception as exc:
            if reader_gone:
                logger.exception("answer failed after its reader left",
                                 extra={"event": "relay_failed"})
            failure.append(exc)
        finally:
            queue.put_nowait(done)

    task = asyncio.ensure_future(produce())
    _DETACHED_ANSWERS.add(task)
    task.add_done_callback(_DETACHED_ANSWERS.discard)
    try:
        while (frame := await queue.get()) is not done:
            yield frame
    finally:
        reader_gone = True
    if failure:
        raise failure[0]


async def message_stream(
    *, user, session_id, content: Any, client_id: Any = None, trace_id: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Accept one clinician message and yield the protocol frames of its answer.

    A refused message yields a single error frame.
    """
    accepting = asyncio.ensure_future(message_accept(
        user=user, session_id=session_id, content=content, client_id=client_id
    ))
    stopped_early = False
    try:
        try:
            # Shielded: storing the message runs on a pool thread that a cancellation
            # cannot interrupt, so a `stop` now waits for it and then ends the answer.
            accepted = await asyncio.shield(accepting)
        except asyncio.CancelledError:
            stopped_early = True
            accepted = await accepting
    except ChatError as exc:
        yield exc.as_frame()
        return
    if stopped_early and not accepted.replay:
        yield _ack_frame(accepted)
        message = await run_blocking(
            _finish_answer, accepted=accepted, display_text="", provider_text="",
            status=ChatMessage.Status.STOPPED, attempts=[], done=None,
            first_token_ms=None, latency_ms=0,
        )
        yield _done_frame(message)
        return
    async for frame in answer_stream(accepted, trace_id=trace_id):
        yield frame


@dataclass(frozen=True)
class StoredExchange:
    """A clinician's message and its answer, as stored."""

    user_message: ChatMessage
    assistant_message: ChatMessage


async def message_exchange(*, user, session_id, content: Any, client_id: Any = None,
                           trace_id: str | None = None) -> StoredExchange:
    """Accept one clinician message and wait until its answer is stored (the REST door
    without streaming). Raises ChatError for a refused message and for an answer that
    failed (its `message_id` names the kept question, which can be resent)."""
    accepted = await message_accept(user=user, session_id=session_id, content=content,
                                    client_id=client_id)
    final: dict[str, Any] = {}
    async for final in answer_stream(accepted, trace_id=trace_id):  # noqa: B007
        pass
    if final.get("type") == "error":
        raise ChatError(final["code"], final["detail"], message_id=final.get("message_id"))
    # The instances the steps stored (a replay's answer as read back): nothing to re-read.
    return StoredExchange(user_message=accepted.user_message,
                          assistant_message=accepted.assistant_message)
