"""The cache's Redis connections are pooled per process, whatever thread or context
asks for them: the chat's database pool threads run every step in a copy of the
caller's context, where Django would otherwise build a new cache client (and
open a new Redis connection) for each step."""

from __future__ import annotations

import asyncio

import pytest
from django.conf import settings
from django.core.cache import caches

from chat.db import run_db

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")


def _redis_connection_id() -> int:
    # CLIENT ID names the server-side connection that ran the command.
    return caches["default"]._cache.get_client(None, write=True).client_id()


def test_pool_steps_reuse_the_redis_connections_of_the_process():
    async def ids_of_steps() -> list[int]:
        return [await run_db(_redis_connection_id) for _ in range(20)]

    ids = asyncio.run(ids_of_steps())
    # Sequential steps hand a connection back before the next one takes it.
    assert len(set(ids)) == 1, ids


def test_concurrent_contexts_share_one_pool():
    async def concurrent() -> list[int]:
        return await asyncio.gather(*(run_db(_redis_connection_id) for _ in range(40)))

    ids = asyncio.run(concurrent())
    # At most one connection per pool thread, however many steps ran.
    assert len(set(ids)) <= settings.AI_DB_THREADS, sorted(set(ids))
    again = asyncio.run(concurrent())
    assert set(again) <= set(ids)


def test_every_context_gets_the_same_client_object():
    def client_object_id() -> int:
        return id(caches["default"]._cache.get_client(None, write=True))

    async def ids_of_steps() -> set[int]:
        return {await run_db(client_object_id) for _ in range(10)}

    # Building a redis-py client sets up its reply parsers: done once per process.
    assert asyncio.run(ids_of_steps()) == {client_object_id()}
