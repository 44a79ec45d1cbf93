"""The cache's Redis connections are pooled per process, whatever thread or context
asks for them: the chat's database pool threads run every step in a copy of the
caller's context, where Django would otherwise build a new cache client (and
open a new Redis connection) for each step."""

from __future__ import annotations

import asyncio

import pytest
from django.conf import settings
from django.core.cache import caches

from neonpro.blocking import run_blocking
from neonpro.cache import redis_client

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")


def _redis_connection_id() -> int:
    # CLIENT ID names the server-side connection that ran the command.
    return caches["default"]._cache.get_client(None, write=True).client_id()


def test_pool_steps_reuse_the_redis_connections_of_the_process():
    async def ids_of_steps() -> list[int]:
        return [await run_blocking(_redis_connection_id) for _ in range(20)]

    ids = asyncio.run(ids_of_steps())
    # Sequential steps hand a connection back before the next one takes it.
    assert len(set(ids)) == 1, ids


def _connections_received() -> int:
    info = caches["default"]._cache.get_client(None, write=True).info("stats")
    return int(info["total_connections_received"])


def test_concurrent_steps_open_at_most_one_connection_per_pool_thread():
    async def concurrent() -> list[int]:
        return await asyncio.gather(*(run_blocking(_redis_connection_id) for _ in range(40)))

    before = _connections_received()
    for _ in range(2):
        asyncio.run(concurrent())
    # However many steps ran, at most one connection per pool thread was opened (Redis
    # counts every connection it accepted, so a client per step would show 80).
    assert _connections_received() - before <= settings.AI_DB_THREADS


def test_every_context_gets_the_same_client_object():
    def client_object_id() -> int:
        return id(caches["default"]._cache.get_client(None, write=True))

    async def ids_of_steps() -> set[int]:
        return {await run_blocking(client_object_id) for _ in range(10)}

    # Building a redis-py client sets up its reply parsers: done once per process.
    assert asyncio.run(ids_of_steps()) == {client_object_id()}


# --- JSON values, never pickle -------------------------------------------------------------


class _Exploit:
    """Unpickling this creates `marker`: what a planted payload could do to a web process."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _raw_redis():
    return caches["default"]._cache.get_client(None, write=True)


def test_a_pickle_planted_in_redis_is_never_unpickled(tmp_path, caplog):
    import pickle

    cache = caches["default"]
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    cache.set("planted", {"ok": True}, timeout=60)
    cache.set("neighbour", [1, 2.5, "três"], timeout=60)
    _raw_redis().set(cache.make_key("planted"), payload)  # what an attacker in Redis does

    assert cache.get("planted", "fallback") == "fallback"
    assert cache.get_many(["planted", "neighbour"]) == {"neighbour": [1, 2.5, "três"]}
    assert not marker.exists()
    assert any(getattr(r, "event", None) == "cache_value_unreadable" for r in caplog.records)
    # Nothing in Redis is a pickle: values are JSON text (integers plain, for INCR).
    cache.set("planted", {"ok": True}, timeout=60)
    assert _raw_redis().get(cache.make_key("planted")) == b'{"ok":true}'


def test_the_cache_round_trips_json_values_and_counts_with_incr():
    cache = caches["default"]
    value = {"until": 1733212800.25, "code": "rate_limited", "ok": False, "n": None,
             "items": [1, "dois"]}
    cache.set("record", value, timeout=60)
    assert cache.get("record") == value
    cache.set("flag", True, timeout=60)
    assert cache.get("flag") is True
    cache.add("counter", 0, timeout=60)
    assert cache.incr("counter") == 1 and cache.incr("counter") == 2
    assert cache.get("counter") == 2


def test_the_cache_refuses_a_value_json_cannot_carry():
    import datetime as dt

    cache = caches["default"]
    with pytest.raises(TypeError):
        cache.set("when", dt.datetime.now(dt.UTC), timeout=60)
    with pytest.raises(ValueError):
        cache.set("nan", float("nan"), timeout=60)
    assert cache.get("when") is None


def test_the_redis_client_helper_shares_the_caches_pool():
    client = redis_client()

    assert client is not None
    key = caches["default"].make_and_validate_key("redis-client-helper")
    caches["default"].set("redis-client-helper", 41, timeout=30)
    assert client.incr(key) == 42  # the cache's own key space, through the same pool
    assert caches["default"].get("redis-client-helper") == 42
    assert client.connection_pool is redis_client().connection_pool


def test_the_redis_client_helper_answers_none_for_other_cache_backends(settings):
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    assert redis_client() is None
