"""Graceful stop of a web process: in-flight answers finish or are stopped and kept.

daphne answers SIGTERM by stopping its reactor; before that it cancels every
connection's application and waits for them. An answer being generated for a
WebSocket runs in a task of its own, so without help it would be dropped half
way and its row left "streaming". `install_server_hooks()` (called from
`neonpro.asgi`) adds a "before shutdown" step that daphne waits for:

1. from now on `is_shutting_down()` is true: new WebSockets are refused (4503,
   `service_unavailable`, see `chat.ws_auth`);
2. answers in flight get SHUTDOWN_GRACE_SECONDS to finish;
3. those still running are cancelled: the pipeline stores what was generated,
   marked stopped, and sends its `done` frame (`chat.pipeline.answer`);
4. every open WebSocket gets an `error` frame `service_unavailable` and close
   code 4503: reconnect (to another process), nothing was lost;
5. the provider clients' connection pools are closed.

Answers register themselves with `tracking_current_task()` for the time they
are generated, whatever the door (WebSocket, REST or SSE).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator

from django.conf import settings

from chat.providers.clients import close_loop_clients

logger = logging.getLogger(__name__)

# After cancelling, how long the stopped answers get to be stored.
STOP_TIMEOUT_S = 5.0

_tracked: set[asyncio.Task] = set()
_sockets: dict[int, Callable[[], Awaitable[None]]] = {}
_shutting_down = False
# A strong reference: the event loop keeps only weak ones to running tasks.
_drain_task: asyncio.Task | None = None


def is_shutting_down() -> bool:
    """Whether this process has started its graceful stop."""
    return _shutting_down


@contextlib.contextmanager
def tracking_current_task() -> Iterator[None]:
    """Register the running task as an answer in flight until the block ends."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        task = None
    if task is None:
        yield
        return
    _tracked.add(task)
    try:
        yield
    finally:
        _tracked.discard(task)


def register_socket(close: Callable[[], Awaitable[None]]) -> int:
    """Remember how to close an open WebSocket when the process stops; returns a handle."""
    handle = id(close)
    _sockets[handle] = close
    return handle


def unregister_socket(handle: int) -> None:
    _sockets.pop(handle, None)


async def _close_sockets(timeout_s: float) -> None:
    """Tell every open socket why it closes; each closer waits for its close handshake,
    so the reactor does not drop the connection before the frames reach the client."""
    closers = [asyncio.ensure_future(close()) for close in list(_sockets.values())]
    if not closers:
        return
    _, late = await asyncio.wait(closers, timeout=timeout_s)
    # A client that never answers the close: give up on it now, rather than leave its
    # task pending for the reactor to destroy (and report) as the process exits.
    for closer in late:
        closer.cancel()
    if late:
        await asyncio.wait(late, timeout=1.0)


def _in_flight(loop: asyncio.AbstractEventLoop) -> set[asyncio.Task]:
    return {task for task in _tracked if not task.done() and task.get_loop() is loop}


async def drain(*, grace_s: float, stop_timeout_s: float = STOP_TIMEOUT_S) -> dict[str, int]:
    """Let answers in flight finish for `grace_s`, then stop (and store) the rest."""
    global _shutting_down
    _shutting_down = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    seen: set[asyncio.Task] = set()
    # Look again after each wait: an answer accepted a moment ago may have just started.
    while (pending := _in_flight(loop)) and loop.time() < deadline:
        seen |= pending
        await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
    stopping = _in_flight(loop)
    for task in stopping:
        task.cancel()
    if stopping:
        await asyncio.wait(stopping, timeout=stop_timeout_s)
    report = {"finished": len(seen - stopping), "stopped": len(stopping),
              "unsettled": len(_in_flight(loop)), "sockets": len(_sockets)}
    # Every answer is settled (its final frame sent): now tell the sockets why they close.
    await _close_sockets(stop_timeout_s)
    # No answer will call a provider again: close their connection pools now, while
    # logging still works, rather than leave them to be reported unclosed at exit.
    report["provider_clients"] = await close_loop_clients()
    logger.info("in-flight answers settled before stopping", extra={
        "event": "shutdown_drained", "metadata": report})
    return report


def _start_drain():
    """The reactor's "before shutdown" trigger: a Deferred daphne waits for."""
    global _drain_task, _shutting_down
    from twisted.internet.defer import Deferred

    _shutting_down = True
    _drain_task = asyncio.ensure_future(drain(grace_s=settings.SHUTDOWN_GRACE_SECONDS))
    deferred = Deferred.fromFuture(_drain_task)
    deferred.addErrback(lambda failure: logger.error(
        "graceful stop failed", extra={"event": "shutdown_drain_failed",
                                       "metadata": {"error": failure.type.__name__}}))
    return deferred


def install_server_hooks() -> bool:
    """Under daphne (Twisted reactor installed), drain answers before the reactor stops.

    Registered before daphne registers its own step (which cancels every
    connection), so the shutting-down flag is up by the time connections see
    their cancellation. Returns whether a hook was installed.
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or getattr(reactor, "_neonpro_drain_hook", False):
        return False
    reactor.addSystemEventTrigger("before", "shutdown", _start_drain)
    reactor._neonpro_drain_hook = True
    return True
