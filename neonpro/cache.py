"""The Redis cache backend, with its connection pools shared by the whole process.

Django keeps one cache object per context (an asgiref `Local`, not a thread
local). The chat's database pool threads and its asyncio tasks each run in a
copy of their caller's context, so every such call used to build a new cache
object with a new connection pool: a TCP connect, a handshake and a socket
left for the garbage collector, on every chat message. redis-py's pools are
thread-safe and fork-aware, so one pool per server and option set serves every
cache object of the process, and so does one client object per pool: building a
redis-py client sets up its table of ~200 reply parsers, which Django did for
every cache call.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django.core.cache.backends.redis import RedisCacheClient
from django_prometheus.cache.backends.redis import NativeRedisCache


class SharedPoolRedisCacheClient(RedisCacheClient):
    # pool key -> (pool, client); a redis-py client on a pool is safe to share by threads.
    _shared: ClassVar[dict[tuple, tuple[Any, Any]]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def _shared_pool_and_client(self, write: bool) -> tuple[Any, Any]:
        index = self._get_connection_pool_index(write)
        # repr: option values need not be hashable (and equal options give equal keys).
        key = (self._pool_class, self._client, self._servers[index],
               repr(sorted(self._pool_options.items())))
        shared = self._shared.get(key)
        if shared is None:
            with self._shared_lock:
                shared = self._shared.get(key)
                if shared is None:
                    pool = self._pool_class.from_url(self._servers[index], **self._pool_options)
                    shared = self._shared[key] = (pool, self._client(connection_pool=pool))
        return shared

    def _get_connection_pool(self, write: bool):
        return self._shared_pool_and_client(write)[0]

    def get_client(self, key=None, *, write: bool = False):
        return self._shared_pool_and_client(write)[1]


class RedisCache(NativeRedisCache):
    """Django's Redis cache with Prometheus hit/miss counters and process-wide pools."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
