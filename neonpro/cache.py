"""The Redis cache backend, with its connection pools shared by the whole process.

Django keeps one cache object per context (an asgiref `Local`, not a thread
local). The chat's database pool threads and its asyncio tasks each run in a
copy of their caller's context, so every such call used to build a new cache
object with a new connection pool: a TCP connect, a handshake and a socket
left for the garbage collector, on every chat message. redis-py's pools are
thread-safe and fork-aware, so one pool per server and option set serves every
cache object of the process.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django.core.cache.backends.redis import RedisCacheClient
from django_prometheus.cache.backends.redis import NativeRedisCache


class SharedPoolRedisCacheClient(RedisCacheClient):
    _shared_pools: ClassVar[dict[tuple, Any]] = {}
    _shared_pools_lock: ClassVar[threading.Lock] = threading.Lock()

    def _get_connection_pool(self, write: bool):
        index = self._get_connection_pool_index(write)
        # repr: option values need not be hashable (and equal options give equal keys).
        key = (self._pool_class, self._servers[index], repr(sorted(self._pool_options.items())))
        with self._shared_pools_lock:
            pool = self._shared_pools.get(key)
            if pool is None:
                pool = self._pool_class.from_url(self._servers[index], **self._pool_options)
                self._shared_pools[key] = pool
        return pool


class RedisCache(NativeRedisCache):
    """Django's Redis cache with Prometheus hit/miss counters and process-wide pools."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
