"""Database work from async code on a fixed pool of threads that keep their connections.

Django's async ORM and `sync_to_async(thread_sensitive=True)` queue every call on
one shared thread: under load each session's inserts wait behind everyone
else's. This pool runs them side by side, and each thread keeps its connection
for CONN_MAX_AGE (cheap through PgBouncer) instead of reconnecting per call.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings.AI_DB_THREADS,
                                           thread_name_prefix="chat-db")
        return _executor


# CONN_HEALTH_CHECKS pings a kept connection (`SELECT 1`, a round trip) before its
# first use in every step. A connection whose last step succeeded this recently is
# used without the ping: a step is a few statements, and at a few steps per second
# the ping was one round trip in eight. One idle for longer is checked as before,
# so a connection broken by a database restart is replaced before it fails a step.
RECENTLY_VERIFIED_S = 2.0
_thread_state = threading.local()


def _run(function: Callable[..., T], kwargs: dict[str, Any],
         context: contextvars.Context) -> T:
    close_old_connections()  # drops a connection that broke or outlived CONN_MAX_AGE
    connection = connections[DEFAULT_DB_ALIAS]
    verified_at = getattr(_thread_state, "verified_at", None)
    if (connection.connection is not None and verified_at is not None
            and time.monotonic() - verified_at < RECENTLY_VERIFIED_S):
        connection.health_check_done = True
    _thread_state.verified_at = None
    try:
        return context.run(function, **kwargs)
    finally:
        close_old_connections()  # after a database error: closes it unless it still works
        # Every step on this pool uses its connection: still open and without errors,
        # it has just worked (a refusal such as a rate limit is not a database error).
        if connection.connection is not None and not connection.errors_occurred:
            _thread_state.verified_at = time.monotonic()


async def run_db(function: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a synchronous database function on the pool (with the caller's contextvars)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), _run, function, kwargs,
                                      contextvars.copy_context())


def close_pool_connections(timeout: float = 10.0) -> None:
    """Close the connection of every pool thread (shutdown, test database teardown).

    One job per thread, held at a barrier so that each lands on a different thread.
    """
    if _executor is None:
        return
    workers = settings.AI_DB_THREADS
    barrier = threading.Barrier(workers, timeout=timeout)

    def close_here() -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        connections.close_all()

    for future in [_executor.submit(close_here) for _ in range(workers)]:
        future.result(timeout=timeout * 2)
