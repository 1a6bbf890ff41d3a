"""Abuse limits for the chat: token buckets per visitor and per address, in the hub's limits.

In process for the embedded hub, in Redis when scaled out (``hub.rate_limits``): a visitor
spreading messages over several hub processes still has one budget.
"""

from __future__ import annotations

from collections.abc import Callable

from hub.rate_limits import RateLimits


class RateLimit:
    """At most ``per_minute`` events per key, in bursts of up to that many (a token bucket)."""

    def __init__(
        self, limits: RateLimits, name: str, per_minute: int, clock: Callable[[], float]
    ) -> None:
        self.per_minute = per_minute
        self._limits = limits
        self._name = name
        self._clock = clock

    async def allow(self, key: str) -> bool:
        """Take one token for key; False when its bucket is empty."""
        return await self._limits.take(f"chat:{self._name}:{key}", self.per_minute, self._clock())
