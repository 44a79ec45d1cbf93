"""The Redis cache backend: JSON values, and connection pools shared by the process.

Values are JSON, never pickle. Django's Redis cache pickles values, so anyone who
can write to Redis (a leaked password, an exposed port, a compromised neighbour on
a shared instance) could make every web process run code of their choosing when
it next reads the key. Everything this project caches (rate-limit counters,
circuit breakers, provider status, the consent shortcut, health round trips) is
numbers, strings, lists and dicts; a value JSON cannot carry is refused when it is
written (TypeError), and a stored value that is not JSON (a planted pickle) is
treated as missing and logged, never executed.

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

import json
import logging
import threading
from typing import Any, ClassVar

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django_prometheus.cache.backends.redis import NativeRedisCache

logger = logging.getLogger(__name__)


class UnreadableCacheValue(ValueError):
    """A stored value that is not JSON: not ours, never decoded further."""


class JSONSerializer:
    """Redis cache values as JSON; integers stay plain so INCR works on them."""

    def dumps(self, obj: Any) -> bytes | int:
        # type(), not isinstance(): True must stay a JSON boolean, not become 1.
        if type(obj) is int:
            return obj
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode()

    def loads(self, data: bytes) -> Any:
        try:
            return int(data)
        except ValueError:
            pass
        try:
            return json.loads(data)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            raise UnreadableCacheValue("cache value is not JSON") from None


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

    # A value that does not decode is a miss (and a warning): the caller recomputes it,
    # and the next write replaces it.
    def get(self, key, default):
        try:
            return super().get(key, default)
        except UnreadableCacheValue:
            _unreadable()
            return default

    def get_many(self, keys):
        client = self.get_client(None)
        values = {}
        for key, raw in zip(keys, client.mget(keys), strict=True):
            if raw is None:
                continue
            try:
                values[key] = self._serializer.loads(raw)
            except UnreadableCacheValue:
                _unreadable()
        return values


def _unreadable() -> None:
    # Neither the key (it can name a user) nor the value reach the log.
    logger.warning("unreadable cache value ignored (not JSON)",
                   extra={"event": "cache_value_unreadable"})


class RedisCache(NativeRedisCache):
    """Django's Redis cache with JSON values, Prometheus hit/miss counters and
    process-wide pools."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
        # Not configurable: pickle must not come back through OPTIONS.
        self._options = {**self._options, "serializer": JSONSerializer}


def redis_client():
    """The redis-py client behind the default cache, or None when it is not Redis.

    For the few callers that need a Redis command the cache API lacks (a
    pipelined INCR + EXPIRE, INFO): the same process-wide pool as the cache.
    """
    backend = caches["default"]  # the instance: `cache` is a proxy, isinstance fails on it
    if not isinstance(backend, DjangoRedisCache):
        return None
    # Django's Redis cache has no public accessor for its client; this is the one place
    # that reaches for it (same pool, timeouts and credentials as the cache).
    return backend._cache.get_client(None, write=True)
