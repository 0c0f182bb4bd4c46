"""Per-sender throughput limits in segments per second.

A reservation scheduler (GCRA): each sender has a "next free" time; reserving n segments
returns how long to wait before sending and pushes that time forward by n/rate. A caller
that will not wait longer than ``max_wait`` books nothing and learns the wait instead, so
messages re-queued for later never hold slots they are not using. In-process
by default; shared through Redis when REDIS_URL is set, so several workers respect one
limit."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from django.conf import settings


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._next_free: dict[str, float] = {}

    def reserve(
        self, key: str, *, units: int, per_second: float, max_wait: float = float("inf")
    ) -> tuple[bool, float]:
        """(booked, wait): booked is False when the wait would exceed ``max_wait``."""
        now = self._clock()
        with self._lock:
            start = max(now, self._next_free.get(key, now))
            if start - now > max_wait:
                return False, start - now
            self._next_free[key] = start + units / per_second
        return True, start - now

    def reset(self) -> None:
        with self._lock:
            self._next_free.clear()


_RESERVE_LUA = """
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local start = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if start < now then start = now end
if start - now > max_wait then return {0, tostring(start - now)} end
local ttl = math.ceil((start + cost - now) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(start + cost), 'PX', ttl)
return {1, tostring(start - now)}
"""


class RedisLimiter:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._script = self._redis.register_script(_RESERVE_LUA)

    def reserve(
        self, key: str, *, units: int, per_second: float, max_wait: float = float("inf")
    ) -> tuple[bool, float]:
        # Redis' clock, not ours, so workers on different hosts agree.
        seconds, micros = self._redis.time()
        now = seconds + micros / 1_000_000
        limit = max_wait if max_wait != float("inf") else 1e12
        booked, delay = self._script(
            keys=[f"openline:rate:{key}"], args=[now, units / per_second, limit]
        )
        return bool(booked), float(delay)

    def reset(self) -> None:
        for key in self._redis.scan_iter("openline:rate:*"):
            self._redis.delete(key)


@functools.cache
def limiter() -> MemoryLimiter | RedisLimiter:
    if settings.REDIS_URL:
        return RedisLimiter(settings.REDIS_URL)
    return MemoryLimiter()
