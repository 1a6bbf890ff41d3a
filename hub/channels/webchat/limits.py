"""Abuse limits for the chat: token buckets per visitor and per address, in this process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimit:
    """At most ``per_minute`` events per key, in bursts of up to that many (a token bucket)."""

    def __init__(self, per_minute: int, clock: Callable[[], float], max_keys: int = 100_000):
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._max_keys = max_keys

    def allow(self, key: str) -> bool:
        """Take one token for key; False when its bucket is empty."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        rate = self.per_minute / 60.0
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they hold nothing worth remembering."""
        rate = self.per_minute / 60.0
        self._buckets = {
            k: b
            for k, b in self._buckets.items()
            if b.tokens + (now - b.at) * rate < self.per_minute
        }
