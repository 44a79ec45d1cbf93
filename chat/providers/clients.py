"""The SDK clients, built only from settings and reused for connection pooling.

One client per provider, event loop and configuration: an httpx connection
pool belongs to the event loop that opened it, and a changed setting (tests,
key rotation) must take effect, so either change gets its own client.
SDK retries are off: the router decides what happens after a failure.

Both SDKs run on their aiohttp transport (`DefaultAioHttpClient`): its C HTTP
parser reads a streamed answer at a fraction of the CPU the default pure-Python
stack spends per chunk, which is what bounds how many answers a process relays.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

import anthropic
import httpx2
import openai
from django.conf import settings

from .config import ProviderConfig

logger = logging.getLogger(__name__)

# A few clients, most recently used last: normally one per provider; more only
# while settings change (tests, key rotation) or across event loops.
_clients: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_MAX_CLIENTS = 8


def _limits() -> httpx2.Limits:
    # A streaming answer holds a connection for its whole length, so the pool
    # must be as large as the number of answers one process may stream at once.
    size = max(1000, int(getattr(settings, "AI_SESSION_CAPACITY", 1000)))
    return httpx2.Limits(max_connections=size, max_keepalive_connections=min(size, 200))


def _build(cfg: ProviderConfig) -> Any:
    timeout = httpx2.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 5.0))
    if cfg.name == "openai":
        return openai.AsyncOpenAI(
            api_key=cfg.api_key,
            base_url=cfg.base_url,
            timeout=timeout,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(limits=_limits(), timeout=timeout),
        )
    return anthropic.AsyncAnthropic(
        api_key=cfg.api_key,
        base_url=cfg.base_url,
        timeout=timeout,
        max_retries=0,
        # Spans could carry prompt text; tracing, if ever wanted, goes through our own seam.
        open_telemetry=False,
        http_client=anthropic.DefaultAioHttpClient(limits=_limits(), timeout=timeout),
    )


def get_client(cfg: ProviderConfig) -> Any:
    """The shared async SDK client for `cfg` on the running event loop."""
    loop = asyncio.get_running_loop()
    # The loop itself (not its id, which a later loop may reuse) is part of the key.
    key = (cfg.name, loop, cfg.api_key, cfg.base_url, cfg.timeout_s)
    client = _clients.get(key)
    if client is not None:
        _clients.move_to_end(key)
        return client
    # Clients of loops that have ended (one-off loops of scripts and tests) are closed
    # here: their connections would otherwise be reported unclosed when collected.
    for stale in [k for k in _clients if k[1] is not loop and k[1].is_closed()]:
        _close_later(loop, _clients.pop(stale))
    client = _build(cfg)
    _clients[key] = client
    while len(_clients) > _MAX_CLIENTS:
        (_, old_loop, *_rest), old = _clients.popitem(last=False)
        if old_loop is loop:
            _close_later(loop, old)
        # A client of another (finished) loop is dropped; its sockets died with that loop.
    return client


_closing: set[asyncio.Task[None]] = set()


async def close_loop_clients() -> int:
    """Close the clients of the running loop (a web process stopping); returns how many.

    Left to the garbage collector at exit, each would report its session and
    connections as unclosed on stderr, after logging has already shut down.
    """
    loop = asyncio.get_running_loop()
    mine = [key for key in _clients if key[1] is loop]
    results = await asyncio.gather(*(_clients.pop(key).close() for key in mine),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            logger.warning("provider client did not close cleanly", extra={
                "event": "provider_client_close_failed",
                "metadata": {"error": type(result).__name__}})
    return len(mine)


def _close_later(loop: asyncio.AbstractEventLoop, client: Any) -> None:
    task = loop.create_task(client.close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)
