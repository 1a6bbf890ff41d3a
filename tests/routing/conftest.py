"""Routing state on every implementation: each test runs on memory and on Redis."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hub.routing.state import MemoryRoutingState, RoutingState
from hub.routing.state.redis import RedisRoutingState
from tests.conftest import REDIS_URL

Factory = Callable[[], Awaitable[RoutingState]]


@pytest.fixture(params=["memory", "redis"])
async def make_state(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """Makes state objects that share one store (for Redis: one prefix, several clients)."""
    prefix = f"hub-test:{secrets.token_hex(4)}:"
    made: list[RoutingState] = []
    shared = MemoryRoutingState()

    async def make() -> RoutingState:
        state: RoutingState
        if request.param == "memory":
            state = shared
        else:
            state = RedisRoutingState(REDIS_URL, prefix=prefix)
            await state.start()
        made.append(state)
        return state

    yield make
    for state in made:
        if isinstance(state, RedisRoutingState):
            await state.clear()
        await state.close()


@pytest.fixture
async def state(make_state: Factory) -> RoutingState:
    return await make_state()
