"""Failed-login throttling and the chat's token buckets, on memory and on Redis (one suite).

On Redis two "hub processes" (two clients) share one budget: spreading guesses over the
processes of a scaled-out hub does not multiply what an attacker may try.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hub.agent_console.throttle import MAX_PER_ADDRESS, MAX_PER_USERNAME, LoginThrottle
from hub.errors import TooManyRequests
from hub.rate_limits import MemoryRateLimits, RateLimits, RedisRateLimits
from tests.conftest import REDIS_URL, FrozenClock

Processes = Callable[[], Awaitable[RateLimits]]


@pytest.fixture(params=["memory", "redis"])
async def process_limits(request: pytest.FixtureRequest) -> AsyncIterator[Processes]:
    """Makes the limits of one more hub process; all of them count in one place."""
    prefix = f"hub-test:{secrets.token_hex(4)}:limits:"
    shared = MemoryRateLimits()
    made: list[RateLimits] = []

    async def make() -> RateLimits:
        limits: RateLimits = (
            shared if request.param == "memory" else RedisRateLimits(REDIS_URL, prefix=prefix)
        )
        made.append(limits)
        return limits

    yield make
    for limits in made:
        await limits.close()


async def test_one_address_guessing_many_usernames_is_stopped_on_every_process(
    process_limits: Processes,
) -> None:
    clock = FrozenClock()
    first = LoginThrottle(await process_limits(), clock)
    second = LoginThrottle(await process_limits(), clock)
    for n in range(MAX_PER_ADDRESS):
        throttle = first if n % 2 else second  # the guesses are spread over two processes
        await throttle.check(f"user{n}", "203.0.113.9")
        await throttle.failed(f"user{n}", "203.0.113.9")
    for throttle in (first, second):
        with pytest.raises(TooManyRequests) as refused:
            await throttle.check("someone-new", "203.0.113.9")
        assert 0 < refused.value.details["retry_after"] <= 15 * 60
    await first.check("someone-new", "198.51.100.1")  # another address is fine


async def test_a_username_is_locked_for_everyone_until_its_failures_expire(
    process_limits: Processes,
) -> None:
    clock = FrozenClock()
    first = LoginThrottle(await process_limits(), clock)
    second = LoginThrottle(await process_limits(), clock)
    for n in range(MAX_PER_USERNAME):
        await (first if n % 2 else second).failed("Agent", f"198.51.100.{n}")
    with pytest.raises(TooManyRequests):
        await second.check("agent", "192.0.2.1")  # case-folded, any address
    clock.advance(16 * 60)
    await first.check("agent", "192.0.2.1")


async def test_a_login_forgets_the_username_failures(process_limits: Processes) -> None:
    clock = FrozenClock()
    throttle = LoginThrottle(await process_limits(), clock)
    for _ in range(MAX_PER_USERNAME - 1):
        await throttle.failed("agent", "203.0.113.9")
    await throttle.succeeded("agent")
    await throttle.failed("agent", "203.0.113.9")
    await throttle.check("agent", "203.0.113.9")


async def test_token_buckets_are_one_budget_across_processes(process_limits: Processes) -> None:
    first, second = await process_limits(), await process_limits()
    taken = [
        await (first if n % 2 else second).take("chat:visitor:v1", 10, 1000.0) for n in range(12)
    ]
    assert taken == [True] * 10 + [False, False]
    assert await first.take("chat:visitor:v2", 10, 1000.0)  # another key has its own
    assert await second.take("chat:visitor:v1", 10, 1006.0)  # 6 s refill one token (10/min)
    assert not await first.take("chat:visitor:v1", 10, 1006.0)
