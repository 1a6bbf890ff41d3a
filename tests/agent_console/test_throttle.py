from __future__ import annotations

import pytest

from hub.agent_console.throttle import MAX_PER_ADDRESS, LoginThrottle
from hub.errors import TooManyRequests
from tests.conftest import FrozenClock


def test_one_address_guessing_many_usernames_is_stopped() -> None:
    clock = FrozenClock()
    throttle = LoginThrottle(clock)
    for n in range(MAX_PER_ADDRESS):
        throttle.check(f"user{n}", "203.0.113.9")
        throttle.failed(f"user{n}", "203.0.113.9")
    with pytest.raises(TooManyRequests):
        throttle.check("someone-new", "203.0.113.9")
    throttle.check("someone-new", "198.51.100.1")  # another address is fine


def test_failures_expire_and_leave_nothing_behind() -> None:
    clock = FrozenClock()
    throttle = LoginThrottle(clock)
    throttle.failed("agent", "203.0.113.9")
    clock.advance(16 * 60)
    throttle.check("agent", "203.0.113.9")
    assert throttle._failures == {}
