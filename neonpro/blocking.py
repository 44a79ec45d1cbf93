"""The one bridge from async code to blocking code (the database, Redis, SDK probes).

`await run_blocking(function, *args, **kwargs)` runs `function` on a fixed pool
of threads that keep their database connections, with the caller's contextvars
(trace id, log context). Every async caller uses it: the chat pipeline's
database steps, the WebSocket authentication, the router's circuit-breaker
bookkeeping, the health views.

Why not asgiref's `sync_to_async` / Channels' `database_sync_to_async`: with
`thread_sensitive=True` (their default) every call queues on one shared thread,
so under load each session's inserts wait behind everyone else's. This pool runs
them side by side, and each thread keeps its connection for CONN_MAX_AGE (cheap
through PgBouncer) instead of reconnecting per call (BENCHMARKS.md).

Synchronous code that must call async code (a Channels layer send from a
service, a DRF view awaiting the pipeline) uses asgiref's `async_to_sync`: that
direction has no pool to share.

Health checks are the one exception to the shared pool: `submit_isolated` runs
them on threads of their own, so a check stuck on a hanging dependency holds one
of those and never one the chat needs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections

T = TypeVar("T")

_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=settings.AI_DB_THREADS, thread_name_prefix="blocking")
        return _executor


# CONN_HEALTH_CHECKS pings a kept connection (`SELECT 1`, a round trip) before its
# first use in every step. A connection whose last step succeeded this recently is
# used without the ping: a step is a few statements, and at a few steps per second
# the ping was one round trip in eight. One idle for longer is checked as before,
# so a connection broken by a database restart is replaced before it fails a step.
RECENTLY_VERIFIED_S = 2.0
_thread_state = threading.local()


def _run(function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
         context: contextvars.Context) -> T:
    close_old_connections()  # drops a connection that broke or outlived CONN_MAX_AGE
    connection = connections[DEFAULT_DB_ALIAS]
    verified_at = getattr(_thread_state, "verified_at", None)
    if (connection.connection is not None and verified_at is not None
            and time.monotonic() - verified_at < RECENTLY_VERIFIED_S):
        connection.health_check_done = True
    _thread_state.verified_at = None
    try:
        return context.run(function, *args, **kwargs)
    finally:
        close_old_connections()  # after a database error: closes it unless it still works
        # A step that used its connection and left it open without errors has just
        # verified it (a refusal such as a rate limit is not a database error).
        if connection.connection is not None and not connection.errors_occurred:
            _thread_state.verified_at = time.monotonic()


async def run_blocking(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking function on the pool, with the caller's contextvars, and await it.

    Cancelling the awaiting task does not stop the function: it runs to its end on
    its thread (wrap the call in `asyncio.shield` where its result must be kept).
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), _run, function, args, kwargs,
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


# Health checks: at most one in flight per dependency (monitoring.health), so a
# hanging dependency holds one of these threads per kind of check.
_isolated = concurrent.futures.ThreadPoolExecutor(max_workers=16,
                                                  thread_name_prefix="blocking-isolated")


def _run_isolated(function: Callable[[], T]) -> T:
    try:
        return function()
    finally:
        # These threads run seldom: a connection kept here would only sit idle.
        connections.close_all()


def submit_isolated(function: Callable[[], T]) -> concurrent.futures.Future[T]:
    """Start `function` on a thread outside the shared pool; its future, for sync and
    async callers alike (`asyncio.wrap_future`). For work that may hang on a failing
    dependency and must not take a thread the chat needs: the health checks."""
    return _isolated.submit(_run_isolated, function)
