"""Failed-login throttling: slows down password guessing per username and per client address.

Counted in the hub's rate limits: in process, or in Redis when scaled out, so every hub
process sees the same failures and an attacker gets one budget, not one per process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

from hub.errors import TooManyRequests
from hub.rate_limits import RateLimits

WINDOW = timedelta(minutes=15)
MAX_PER_USERNAME = 5
MAX_PER_ADDRESS = 30


class LoginThrottle:
    """Counts failed logins in a sliding window."""

    def __init__(self, limits: RateLimits, clock: Callable[[], datetime]) -> None:
        self._limits = limits
        self._clock = clock

    async def check(self, username: str, address: str) -> None:
        """Raise TooManyRequests while either the username or the address is over its limit."""
        now = self._clock().timestamp()
        window = WINDOW.total_seconds()
        for key, limit in (
            (_user_key(username), MAX_PER_USERNAME),
            (_address_key(address), MAX_PER_ADDRESS),
        ):
            count, oldest = await self._limits.recent(key, window, now)
            if count >= limit and oldest is not None:
                raise TooManyRequests(
                    "too many failed logins; wait before trying again",
                    retry_after=max(1, math.ceil(oldest + window - now)),
                )

    async def failed(self, username: str, address: str) -> None:
        """Count a failed login."""
        now = self._clock().timestamp()
        for key in (_user_key(username), _address_key(address)):
            await self._limits.note(key, WINDOW.total_seconds(), now)

    async def succeeded(self, username: str) -> None:
        """Forget the username's failures once its owner gets in."""
        await self._limits.forget(_user_key(username))


def _user_key(username: str) -> str:
    return "login:user:" + username.casefold()


def _address_key(address: str) -> str:
    return "login:ip:" + address
