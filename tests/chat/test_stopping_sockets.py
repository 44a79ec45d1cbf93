"""A stopping web process ends every socket once, whatever its consumer is doing."""

from __future__ import annotations

import asyncio

from chat import shutdown
from chat.errors import ChatError
from chat.ws_auth import _SendState


class DaphneLikeSend:
    """Records what reaches the server; refuses, as daphne does, an accept after the
    handshake was completed or refused (it raises AttributeError there)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self._handshake_open = True

    async def __call__(self, message: dict) -> None:
        if message["type"] == "websocket.accept" or (
                message["type"] == "websocket.close" and self._handshake_open):
            if not self._handshake_open:
                raise AttributeError("'WebSocketProtocol' object has no attribute "
                                     "'handshake_deferred'")
            self._handshake_open = False
        self.sent.append(message)


async def test_a_consumer_still_connecting_when_the_process_stops_does_not_accept_twice():
    send = DaphneLikeSend()
    state = _SendState(send)
    restarting = ChatError("service_unavailable", "The server is restarting.")

    await state.finish(error=restarting, code=4503)  # the stopping process, first
    await state({"type": "websocket.accept"})  # the consumer's connect, finishing late
    await state({"type": "websocket.send", "text": '{"type": "session_closed"}'})

    assert [m["type"] for m in send.sent] == [
        "websocket.accept", "websocket.send", "websocket.close"]
    assert send.sent[-1]["code"] == 4503


async def test_a_second_accept_is_dropped_and_frames_flow():
    send = DaphneLikeSend()
    state = _SendState(send)

    await state({"type": "websocket.accept"})
    await state({"type": "websocket.accept"})
    await state({"type": "websocket.send", "text": "{}"})
    await state({"type": "websocket.close", "code": 1000})
    await state({"type": "websocket.send", "text": "{}"})  # after the close: not sent

    assert [m["type"] for m in send.sent] == [
        "websocket.accept", "websocket.send", "websocket.close"]


async def test_a_client_that_never_answers_the_close_is_given_up_on_not_left_pending():
    gave_up = asyncio.Event()
    answered = asyncio.Event()

    async def close_without_reply() -> None:
        try:
            await asyncio.Event().wait()  # the client's close reply never comes
        except asyncio.CancelledError:
            gave_up.set()
            raise

    async def close_with_reply() -> None:
        answered.set()

    handles = [shutdown.register_socket(close_without_reply),
               shutdown.register_socket(close_with_reply)]
    try:
        await shutdown._close_sockets(timeout_s=0.05)
    finally:
        for handle in handles:
            shutdown.unregister_socket(handle)

    assert answered.is_set()
    assert gave_up.is_set()
    assert not [task for task in asyncio.all_tasks()
                if task is not asyncio.current_task() and not task.done()]
