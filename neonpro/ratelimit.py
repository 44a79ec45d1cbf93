"""Fixed-window rate limiting shared by every web process through the cache (Redis)."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from neonpro.cache import redis_client


def rate_limit_hit(*, scope: str, key: str, limit: int | None = None,
                   window_ms: int | None = None) -> int | None:
    """Count one hit; return seconds to wait when over the limit, else None.

    The window index is part of the cache key, so every process counts into the
    same bucket without coordination, and the key expires on its own.
    """
    limit = settings.RATE_LIMIT_MAX if limit is None else limit
    window_s = (settings.RATE_LIMIT_WINDOW if window_ms is None else window_ms) / 1000
    now = time.time()
    window_index = int(now // window_s)
    cache_key = f"ratelimit:{scope}:{key}:{window_index}"
    count = _count_hit(cache_key, timeout=math.ceil(window_s) + 1)
    if count > limit:
        return max(1, math.ceil((window_index + 1) * window_s - now))
    return None


def _count_hit(cache_key: str, *, timeout: int) -> int:
    """Increment a counter that expires `timeout` s after its first hit; the new count."""
    client = redis_client()
    if client is not None:
        # One round trip (this runs on every chat message): INCR creates the key at 1,
        # EXPIRE NX starts its clock only on the first hit.
        pipeline = client.pipeline(transaction=True)
        name = cache.make_and_validate_key(cache_key)
        pipeline.incr(name)
        pipeline.expire(name, timeout, nx=True)
        count, _ = pipeline.execute()
        return int(count)
    cache.add(cache_key, 0, timeout=timeout)
    try:
        return cache.incr(cache_key)
    except ValueError:
        # The key expired between add() and incr(): we are the first of a new window.
        cache.add(cache_key, 1, timeout=timeout)
        return 1


# --- Failure windows (sign-in lock-out) ----------------------------------------------


def _window_keys(scope: str, key: str) -> tuple[str, str]:
    count_key = f"ratelimit:{scope}:{key}"
    return count_key, f"{count_key}:until"


def window_count_hit(*, scope: str, key: str, window_s: int) -> tuple[int, int]:
    """Count one event in a window opened by the first event; return (count, seconds left).

    Unlike `rate_limit_hit`'s fixed windows, a window here starts at the first
    failure, so "5 failures in 15 minutes" cannot become 10 across a boundary.
    """
    count_key, until_key = _window_keys(scope, key)
    now = time.time()
    cache.add(until_key, now + window_s, timeout=window_s)
    cache.add(count_key, 0, timeout=window_s)
    try:
        count = cache.incr(count_key)
    except ValueError:
        # The window expired between add() and incr(): this event opens a new one.
        cache.add(count_key, 1, timeout=window_s)
        count = 1
    until = cache.get(until_key) or now + window_s
    return count, max(1, math.ceil(until - now))


def window_count_get(*, scope: str, key: str) -> tuple[int, int]:
    """(count, seconds left) of the current window; (0, 0) when none is open."""
    count_key, until_key = _window_keys(scope, key)
    values = cache.get_many([count_key, until_key])
    count = int(values.get(count_key) or 0)
    if not count:
        return 0, 0
    until = values.get(until_key) or time.time() + 1
    return count, max(1, math.ceil(until - time.time()))


def window_count_clear(*, scope: str, key: str) -> None:
    """Close the window (e.g. a successful sign-in clears its username's failures)."""
    cache.delete_many(list(_window_keys(scope, key)))
