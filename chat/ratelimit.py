"""Fixed-window rate limiting shared by every web process through the cache (Redis)."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache


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
    cache.add(cache_key, 0, timeout=math.ceil(window_s) + 1)
    try:
        count = cache.incr(cache_key)
    except ValueError:
        # The key expired between add() and incr(): we are the first of a new window.
        cache.add(cache_key, 1, timeout=math.ceil(window_s) + 1)
        count = 1
    if count > limit:
        return max(1, math.ceil((window_index + 1) * window_s - now))
    return None
