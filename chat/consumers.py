"""The chat WebSocket: parses frames, calls the chat pipeline, relays its frames."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import NoReturn

import orjson
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import selectors
from chat.errors import ChatError
from chat.pipeline import answer, sessions
from monitoring import metrics
from neonpro import tracing
from neonpro.api_errors import outage_dependency, outage_error
from neonpro.blocking import run_blocking

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_SESSION_ENDED = 4409


class ChatConsumer(AsyncWebsocketConsumer):
    """ws/ai-chat/<session_id>/ — one session, one answer at a time."""

    answer_task: asyncio.Task | None = None
    connected = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(code=CLOSE_UNAUTHENTICATED)
        try:
            self.session_id = selectors.parse_uuid(self.scope["url_route"]["kwargs"]["session_id"])
        except ChatError:
            await self.refuse(code=CLOSE_NOT_FOUND)
        # In the session's group before the session is read: a close committed after
        # that read is announced to the group, and so reaches this socket; one committed
        # before it is seen in the read and announced below.
        self.group = sessions.session_group_name(self.session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        try:
            session = await run_blocking(
                selectors.session_get_for_user, user=user, session_id=self.session_id
            )
        except ChatError:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.refuse(code=CLOSE_NOT_FOUND)
        self.connected = True
        self.trace_id = self.scope.get("trace_id") or uuid.uuid4().hex
        # Every log line of this connection (and of its answer tasks) names them.
        tracing.bind(trace_id=self.trace_id, user_id=user.pk, clinic_id=session.clinic_id,
                     session_id=session.id)
        metrics.WEBSOCKET_CONNECTIONS.inc()
        await self.accept()
        if session.status != session.Status.ACTIVE:
            # Closed before this socket joined the group (another tab, an officer, the
            # expiry sweep): the page still shows it open, so say so now rather than at
            # the first message.
            await self.session_closed({"reason": session.close_reason})

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch, without its database clean-up before every handler.

        Channels closes the old database connections of asgiref's one shared sync
        thread before each frame and each group message: a hop to that thread and back,
        a tenth of the event loop's work at saturation, queued behind every other
        socket's. This consumer never uses that thread's connection: its database work
        runs on the pool threads (neonpro.blocking), which check their own connections
        before and after every step.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def refuse(self, *, code: int) -> NoReturn:
        """Close a socket refused at connect (accepted first: a close code can only
        follow a completed handshake), and end this consumer at once.

        Otherwise it would stay subscribed to the channel layer (a receive on Redis)
        until the client hangs up, for a socket that can never be used.
        """
        await self.accept()
        await self.close(code=code)
        raise StopConsumer

    async def disconnect(self, code: int) -> None:
        if not self.connected:
            return
        self.connected = False
        metrics.WEBSOCKET_CONNECTIONS.dec()
        with contextlib.suppress(Exception):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        # An answer in flight keeps going: it is stored, and a resend with the same
        # client_id (after a reconnect) replays it instead of paying for it twice.

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if not self.connected:
            return
        if bytes_data is not None or text_data is None:
            await self._send_frame(ChatError("invalid", "Frames must be JSON text.").as_frame())
            return
        if len(text_data) > settings.AI_MAX_FRAME_BYTES:
            await self._send_frame(ChatError(
                "message_too_long", f"Frames are limited to {settings.AI_MAX_FRAME_BYTES} bytes."
            ).as_frame())
            return
        try:
            frame = orjson.loads(text_data)
        except orjson.JSONDecodeError:
            await self._send_frame(ChatError("invalid", "Frame is not valid JSON.").as_frame())
            return
        if not isinstance(frame, dict):
            await self._send_frame(ChatError("invalid", "Frame must be a JSON object.").as_frame())
            return
        frame_type = frame.get("type")
        # Only strings name a handler (a list or object here must not crash the socket).
        handler = {"message": self._on_message, "stop": self._on_stop,
                   "ping": self._on_ping}.get(frame_type) if isinstance(frame_type, str) \
            else None
        if handler is None:
            await self._send_frame(ChatError(
                "invalid", "Unknown frame type; expected message, stop or ping."
            ).as_frame())
            return
        await handler(frame)

    async def _on_message(self, frame: dict) -> None:
        if self.answer_task is not None and not self.answer_task.done():
            await self._send_frame(ChatError(
                "in_progress", "Wait for the current answer, or stop it, before sending."
            ).as_frame())
            return
        self.answer_task = asyncio.create_task(
            self._relay(frame.get("content"), frame.get("client_id"))
        )

    async def _on_stop(self, frame: dict) -> None:
        task = self.answer_task
        if task is None or task.done():
            return
        # A task cancelled before its first step never runs its own clean-up: let a
        # just-created answer start (reach its first await) before stopping it.
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _on_ping(self, frame: dict) -> None:
        await self._send_frame({"type": "pong"})

    async def _relay(self, content, client_id) -> None:
        frames = answer.message_stream(
            user=self.scope["user"], session_id=self.session_id, content=content,
            client_id=client_id, trace_id=self.trace_id,
        )
        acked = False
        try:
            async for frame in frames:
                acked = acked or frame.get("type") == "ack"
                await self._send_frame(frame)
        except asyncio.CancelledError:
            # The stop landed between frames (while one was being sent). Thrown into
            # `frames` it would stop at the outermost generator and leave the answer
            # "streaming" (and an exhausted generator answers athrow() with None).
            # Re-armed on this task it lands at the pipeline's next wait instead (the
            # provider stream), which stores the partial answer as stopped.
            asyncio.current_task().cancel()
            with contextlib.suppress(asyncio.CancelledError):
                async for frame in frames:  # the rest of the stopped answer, then done
                    await self._send_frame(frame)
            await frames.aclose()
        except Exception as exc:
            if outage_dependency(exc):  # database or Redis unreachable: counted and logged
                error = outage_error(exc)
            else:
                logger.exception("chat relay failed", extra={"event": "relay_failed"})
                error = ChatError("service_unavailable", "The chat service failed.")
            # Only an acknowledged message is known to be stored.
            error.detail = (
                "The chat service is unavailable; your message was kept." if acked else
                "The chat service is unavailable; your message was not stored. "
                "Try again shortly.")
            await self._send_frame(error.as_frame())

    async def _send_frame(self, frame: dict) -> None:
        if not self.connected:
            return
        try:
            await self.send(text_data=orjson.dumps(frame).decode())
        except Exception:  # the client went away mid-answer; the answer is still stored
            self.connected = False

    async def session_closed(self, event: dict) -> None:
        """The session was closed elsewhere (consent revoked, expiry, another tab)."""
        if event.get("reason") == "consent_revoked":
            error, close_code = ChatError("consent_required",
                                          "Consent was revoked; the session is closed."), \
                CLOSE_FORBIDDEN
        else:
            error, close_code = ChatError("session_expired", "This session was closed."), \
                CLOSE_SESSION_ENDED
        await self._send_frame(error.as_frame())
        await self._on_stop({})
        await self.close(code=close_code)
