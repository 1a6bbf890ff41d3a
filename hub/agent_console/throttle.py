"""Failed-login throttling: slows down password guessing per username and per client address."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from hub.errors import TooManyRequests

WINDOW = timedelta(minutes=15)
MAX_PER_USERNAME = 5
MAX_PER_ADDRESS = 30
MAX_KEYS = 100_000


class LoginThrottle:
    """Counts failed logins in a sliding window, in this process.

    Several hub processes each count their own failures, so the limits are per process; a
    shared count comes with Redis in the scale-out setup.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._failures: dict[str, deque[datetime]] = {}

    def check(self, username: str, address: str) -> None:
        """Raise TooManyRequests while either the username or the address is over its limit."""
        now = self._clock()
        for key, limit in (
            (_user_key(username), MAX_PER_USERNAME),
            (f"ip:{address}", MAX_PER_ADDRESS),
        ):
            failures = self._recent(key, now)
            if len(failures) >= limit:
                wait = (failures[0] + WINDOW - now).total_seconds()
                raise TooManyRequests(
                    "too many failed logins; wait before trying again",
                    retry_after=max(1, math.ceil(wait)),
                )

    def failed(self, username: str, address: str) -> None:
        """Count a failed login."""
        now = self._clock()
        if len(self._failures) > MAX_KEYS:  # many distinct guesses: drop what has expired
            for key in list(self._failures):
                self._recent(key, now)
        for key in (_user_key(username), f"ip:{address}"):
            self._recent(key, now)
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str) -> None:
        """Forget the username's failures once its owner gets in."""
        self._failures.pop(_user_key(username), None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        """The key's failures inside the window (expired ones and empty keys are dropped)."""
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - WINDOW:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures


def _user_key(username: str) -> str:
    return "user:" + username.casefold()
