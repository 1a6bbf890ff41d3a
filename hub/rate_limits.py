"""Counting for abuse limits: token buckets and sliding windows, in process or in Redis.

One contract, two implementations, as the routing state and the bus have: in process for the
embedded hub, in Redis when several hub processes share the load, so an attacker spreading
requests over the processes gets one budget, not one per process. Keys are whatever the caller
names (``chat:visitor:…``, ``login:user:…``); times are seconds since the epoch, read from the
hub's clock.
"""

from __future__ import annotations

import abc
from collections import deque
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from hub.errors import StoreError
from hub.redis_connection import connect


class RateLimits(abc.ABC):
    """Token buckets and sliding windows of events, by key."""

    @abc.abstractmethod
    async def take(self, key: str, per_minute: int, now: float) -> bool:
        """Take a token from key's bucket (``per_minute`` a minute, bursts of as many); False
        when it is empty."""

    @abc.abstractmethod
    async def recent(self, key: str, window: float, now: float) -> tuple[int, float | None]:
        """How many events key had in the last ``window`` seconds, and when the oldest was."""

    @abc.abstractmethod
    async def note(self, key: str, window: float, now: float) -> None:
        """Count an event for key (kept for ``window`` seconds)."""

    @abc.abstractmethod
    async def forget(self, key: str) -> None:
        """Drop what is counted for key."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections (nothing to do in process)."""


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class MemoryRateLimits(RateLimits):
    """In this process: the embedded hub's limits."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[str, tuple[_Bucket, int]] = {}
        self._events: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    async def take(self, key: str, per_minute: int, now: float) -> bool:
        found = self._buckets.get(key)
        if found is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_full(now)
            found = self._buckets[key] = (_Bucket(float(per_minute), now), per_minute)
        bucket = found[0]
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.at) * per_minute / 60)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they hold nothing worth remembering."""
        self._buckets = {
            k: (b, n) for k, (b, n) in self._buckets.items() if b.tokens + (now - b.at) * n / 60 < n
        }

    async def recent(self, key: str, window: float, now: float) -> tuple[int, float | None]:
        events = self._window(key, window, now)
        return len(events), (events[0] if events else None)

    async def note(self, key: str, window: float, now: float) -> None:
        if len(self._events) > self._max_keys:  # many distinct keys: drop what has expired
            for other in list(self._events):
                self._window(other, window, now)
        self._window(key, window, now)
        self._events.setdefault(key, deque()).append(now)

    async def forget(self, key: str) -> None:
        self._events.pop(key, None)
        self._buckets.pop(key, None)

    def _window(self, key: str, window: float, now: float) -> deque[float]:
        events = self._events.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - window:
            events.popleft()
        if not events:
            del self._events[key]
        return events


# KEYS[1] the bucket; ARGV: per minute, now. Refill, take one if there is one; expire when full.
_TAKE = """
local per_minute, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or per_minute, tonumber(state[2]) or now
tokens = math.min(per_minute, tokens + math.max(0, now - at) * per_minute / 60)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return allowed
"""

# KEYS[1] the window; ARGV: window, now, and 1 to add an event now.
_WINDOW = """
local window, now = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. redis.call('INCR', KEYS[1] .. ':n'))
  redis.call('EXPIRE', KEYS[1], math.ceil(window))
  redis.call('EXPIRE', KEYS[1] .. ':n', math.ceil(window))
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {redis.call('ZCARD', KEYS[1]), oldest[2] or ''}
"""


class RedisRateLimits(RateLimits):
    """In Redis, shared by every hub process that points at it (one budget per key)."""

    def __init__(self, url: str, *, prefix: str = "hub:limits:") -> None:
        self._url = url
        self._p = prefix
        self._redis: aioredis.Redis = connect(url)
        self._take = self._redis.register_script(_TAKE)
        self._window = self._redis.register_script(_WINDOW)

    async def _run(self, script: object, keys: list[str], args: list[object]) -> object:
        try:
            return await script(keys=keys, args=args)  # type: ignore[operator]
        except (aioredis.ConnectionError, OSError) as err:
            raise StoreError(f"the limits' Redis at {self._url} does not answer: {err}") from err

    async def take(self, key: str, per_minute: int, now: float) -> bool:
        return bool(await self._run(self._take, [self._p + key], [per_minute, repr(now)]))

    async def recent(self, key: str, window: float, now: float) -> tuple[int, float | None]:
        answer = await self._run(self._window, [self._p + key], [repr(window), repr(now), "0"])
        count, oldest = cast(list[str], answer)
        return int(count), float(oldest) if oldest else None

    async def note(self, key: str, window: float, now: float) -> None:
        await self._run(self._window, [self._p + key], [repr(window), repr(now), "1"])

    async def forget(self, key: str) -> None:
        await self._redis.delete(self._p + key, self._p + key + ":n")

    async def close(self) -> None:
        await self._redis.aclose()
