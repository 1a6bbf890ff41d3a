"""The router carrying out decisions, on memory and on Redis routing state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from hub.domain.interaction import Channel
from hub.errors import Conflict, RoutingError
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.policy import QueuePolicy, parse_policy
from hub.routing.router import Requeued, Reserved, Router
from hub.routing.state import RoutingState
from tests.conftest import FrozenClock
from tests.routing.conftest import Factory

POLICY = parse_policy(
    """
ring_seconds = 15
wrap_up_seconds = 30
default_queue = "general"
[[calendars]]
name = "office"
timezone = "UTC"
[calendars.week]
mon = ["08:00-18:00"]

[[queues]]
name = "general"
team = "support"
max_size = 3
overflow = "spill"
vip_priority = 50

[[queues]]
name = "spill"
team = "support"
max_size = 1

[[queues]]
name = "billing"
team = "support"
[[queues.steps]]
after_seconds = 0
target = "agent.skills['billing'] >= 4"
[[queues.steps]]
after_seconds = 30
target = "True"
[[queues.steps]]
after_seconds = 60
overflow = "general"

[[queues]]
name = "office"
team = "support"
calendar = "office"
"""
)


class Recorder:
    """RouterEffects that remember what happened."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, object]] = []
        self.router: Router | None = None  # set: each offer is told to its agent at once

    async def offered(self, item: WorkItem, agent_id: int, expires_at: datetime) -> None:
        self.log.append(("offered", item.interaction_id, agent_id))
        if self.router is not None:
            await self.router.rang(item.interaction_id, agent_id)  # as the console would

    async def offered_many(self, offers: Sequence[Reserved]) -> None:
        for offer in offers:
            await self.offered(offer.item, offer.agent_id, offer.expires_at)

    async def assigned(self, item: WorkItem, agent_id: int) -> bool:
        self.log.append(("assigned", item.interaction_id, agent_id))
        return True

    async def requeued(self, item: WorkItem, agent_id: int, reason: str) -> None:
        self.log.append(("requeued", item.interaction_id, reason))

    async def requeued_many(self, released: Sequence[Requeued]) -> None:
        for each in released:
            await self.requeued(each.item, each.agent_id, each.reason)

    async def queued(self, item: WorkItem) -> bool:
        self.log.append(("queued", item.interaction_id, item.queue))
        return True

    async def overflowed(self, item: WorkItem, from_queue: str, reason: str) -> None:
        self.log.append(("overflowed", item.interaction_id, f"{from_queue}->{item.queue}"))

    async def closed(self, item: WorkItem, queue: QueuePolicy) -> None:
        self.log.append(("closed", item.interaction_id, queue.name))

    async def gave_up(self, item: WorkItem, reason: str) -> None:
        self.log.append(("gave_up", item.interaction_id, reason))

    async def presence_changed(self, agent: AgentState, reason: str) -> None:
        self.log.append(("presence", agent.agent_id, agent.presence.value))

    def of(self, kind: str) -> list[tuple[int, object]]:
        return [(i, x) for k, i, x in self.log if k == kind]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()  # Monday 2026-11-23 09:00 UTC


@pytest.fixture
async def setup(state: RoutingState, clock: FrozenClock) -> tuple[Router, Recorder]:
    effects = Recorder()
    router = Router(state, POLICY, effects, clock)
    effects.router = router
    return router, effects


async def add_agent(
    router: Router, agent_id: int, clock: FrozenClock, idle: int = 0, **kw: object
) -> None:
    fields: dict[str, object] = {
        "agent_id": agent_id,
        "teams": frozenset({"support"}),
        "presence": Presence.AVAILABLE,
        "presence_since": clock(),
        "idle_since": clock() - timedelta(minutes=idle),
        "skills": {"billing": 5},
    }
    fields.update(kw)
    await router.state.put_agent(AgentState(**fields))  # type: ignore[arg-type]


def work(interaction_id: int, clock: FrozenClock, queue: str = "", **kw: object) -> WorkItem:
    fields: dict[str, object] = {
        "interaction_id": interaction_id,
        "customer_id": 500 + interaction_id,
        "channel": Channel.SMS,
        "queue": queue,
        "priority": 0,
        "enqueued_at": clock(),
        "queue_entered_at": clock(),
    }
    fields.update(kw)
    return WorkItem(**fields)  # type: ignore[arg-type]


async def test_new_work_is_offered_to_the_longest_idle_agent_and_accepted_once(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, effects = setup
    await add_agent(router, 1, clock, idle=5)
    await add_agent(router, 2, clock, idle=50)
    await router.route(work(10, clock))
    assert effects.of("offered") == [(10, 2)]
    with pytest.raises(Conflict):
        await router.accept(1, 10)
    assigned = await router.accept(2, 10)
    assert assigned.interaction_id == 10
    with pytest.raises(Conflict):
        await router.accept(2, 10)
    assert effects.of("assigned") == [(10, 2)]


async def test_decline_and_ring_out_go_to_the_next_agent(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, effects = setup
    await add_agent(router, 1, clock, idle=50)
    await add_agent(router, 2, clock, idle=5)
    await router.route(work(10, clock))
    await router.decline(1, 10)
    assert effects.of("offered") == [(10, 1), (10, 2)]
    clock.advance(16)
    await router.tick()
    assert ("requeued", 10, "timeout") in effects.log
    # Both declined: nobody left to offer it to, it waits.
    assert effects.of("offered") == [(10, 1), (10, 2)]
    await add_agent(router, 3, clock)
    await router.set_presence(3, Presence.AVAILABLE)
    await router.tick()
    assert effects.of("offered")[-1] == (10, 3)


async def test_a_ring_out_makes_the_agent_missed_and_the_work_comes_back_to_them(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    """One agent, as in the demo: a missed offer must not keep the work from them for good."""
    router, effects = setup
    await add_agent(router, 1, clock)
    await router.route(work(10, clock))
    await router.route(work(11, clock))  # SMS capacity 3: both ring at once
    assert effects.of("offered") == [(10, 1), (11, 1)]
    clock.advance(16)
    await router.tick()
    assert effects.of("presence") == [(1, "missed")]
    agent = await router.state.agent(1)
    assert agent is not None
    assert agent.presence is Presence.MISSED
    assert agent.load == {}  # both offers moved on: whoever missed one is not there
    await router.tick()
    assert effects.of("offered") == [(10, 1), (11, 1)]  # nothing offered to a missed agent
    clock.advance(2)
    await router.set_presence(1, Presence.AVAILABLE)
    assert effects.of("offered")[2:] == [(10, 1), (11, 1)]  # back: offered it again


async def test_an_offer_that_expires_before_its_agent_was_told_counts_nothing_against_them(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    """The hub fell behind (its events late): the agent is not missed, the work not theirs."""
    router, effects = setup
    effects.router = None  # no console is told
    await add_agent(router, 1, clock)
    await router.route(work(10, clock))
    clock.advance(16)
    await router.tick()
    assert ("requeued", 10, "not_delivered") in effects.log
    assert effects.of("presence") == []
    assert effects.of("offered") == [(10, 1), (10, 1)]  # offered again at once


async def test_a_declined_offer_comes_back_after_a_while_when_nobody_else_can_take_it(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, effects = setup
    await add_agent(router, 1, clock)
    await router.route(work(10, clock))
    await router.decline(1, 10)
    await router.tick()
    assert effects.of("offered") == [(10, 1)]  # not rung again at once
    clock.advance(POLICY.reoffer_after_seconds)
    await router.tick()
    assert effects.of("offered") == [(10, 1), (10, 1)]
    assert ("presence", 1, "missed") not in effects.log  # declining is not missing


async def test_leaving_returns_ringing_offers(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, effects = setup
    await add_agent(router, 1, clock, idle=50)
    await add_agent(router, 2, clock, idle=5)
    await router.route(work(10, clock))
    await router.set_presence(1, Presence.OFFLINE)
    assert ("requeued", 10, "agent_left") in effects.log
    assert effects.of("offered") == [(10, 1), (10, 2)]
    with pytest.raises(RoutingError):
        await router.set_presence(99, Presence.AWAY)


async def test_a_freed_agent_gets_the_next_work_after_wrap_up(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, effects = setup
    await add_agent(router, 1, clock, capacity={Channel.SMS: 1})
    await router.route(work(10, clock))
    await router.accept(1, 10)
    clock.advance(1)
    await router.route(work(11, clock))
    assert effects.of("offered") == [(10, 1)]  # full: 11 waits
    await router.finish(1, Channel.SMS)
    await router.tick()
    assert effects.of("offered") == [(10, 1)]  # wrapping up
    clock.advance(31)
    await router.tick()
    assert effects.of("offered") == [(10, 1), (11, 1)]


async def test_steps_widen_and_then_overflow_keeping_the_place_in_line(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, effects = setup
    await add_agent(router, 1, clock, skills={"billing": 2})
    await router.set_presence(1, Presence.AWAY)
    await router.route(work(10, clock, queue="billing"))
    await router.set_presence(1, Presence.AVAILABLE)
    assert effects.of("offered") == []  # not skilled enough yet
    clock.advance(31)
    await router.tick()
    assert effects.of("offered") == [(10, 1)]
    await router.decline(1, 10)
    clock.advance(30)
    await router.tick()
    assert effects.of("overflowed") == [(10, "billing->general")]
    moved = await router.state.item(10)
    assert moved is not None
    assert moved.enqueued_at == clock() - timedelta(seconds=61)


async def test_full_queues_overflow_then_refuse(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, effects = setup
    for n in range(1, 6):
        await router.route(work(n, clock))
    assert [q for _, q in effects.of("queued")] == ["general"] * 3 + ["spill"]
    assert effects.of("gave_up") == [(5, "max_size")]


async def test_vip_work_jumps_the_line(setup: tuple[Router, Recorder], clock: FrozenClock) -> None:
    router, effects = setup
    await router.route(work(1, clock))
    clock.advance(5)
    await router.route(work(2, clock, vip=True))
    waiting = await router.state.waiting()
    assert [w.interaction_id for w in waiting] == [2, 1]
    await add_agent(router, 1, clock, capacity={Channel.SMS: 1})
    await router.set_presence(1, Presence.AVAILABLE)
    assert effects.of("offered") == [(2, 1)]


async def test_closed_queues_are_told_once_and_wait_for_opening(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, effects = setup
    clock.now = clock.now.replace(hour=19)
    await add_agent(router, 1, clock)
    await router.route(work(10, clock, queue="office"))
    await router.tick()
    await router.tick()
    assert effects.of("closed") == [(10, "office")]
    assert effects.of("offered") == []
    clock.now = clock.now + timedelta(hours=14)  # Tuesday 09:00: closed all Tuesday
    await router.tick()
    assert effects.of("offered") == []


async def test_transfers(setup: tuple[Router, Recorder], clock: FrozenClock) -> None:
    router, effects = setup
    await add_agent(router, 1, clock, idle=50)
    await add_agent(router, 2, clock, idle=5, capacity={Channel.SMS: 1})
    await router.route(work(10, clock))
    item = await router.accept(1, 10)
    clock.advance(60)
    await router.transfer_to_agent(1, item, 2)
    assert effects.of("offered")[-1] == (10, 2)
    moved = await router.accept(2, 10)
    await router.route(work(11, clock))  # agent 2 is full now
    with pytest.raises(Conflict):
        await router.transfer_to_agent(1, moved, 2)
    queued = await router.transfer_to_queue(2, moved, "general")
    assert queued is not None
    assert queued.enqueued_at == item.enqueued_at  # keeps its place in line
    assert 2 in queued.excluded
    assert effects.of("offered")[-1] == (10, 1)


async def test_abandoned_work_leaves_the_queue_and_frees_the_agent(
    setup: tuple[Router, Recorder], clock: FrozenClock
) -> None:
    router, _ = setup
    await add_agent(router, 1, clock, capacity={Channel.SMS: 1})
    await router.route(work(10, clock))
    assert await router.abandon(10) is not None
    agent = await router.state.agent(1)
    assert agent is not None
    assert agent.load == {}
    assert await router.abandon(10) is None


async def test_several_routers_on_one_state_never_assign_twice(
    make_state: Factory, clock: FrozenClock
) -> None:
    routers = [Router(await make_state(), POLICY, Recorder(), clock) for _ in range(3)]
    for agent_id in (1, 2):
        await add_agent(routers[0], agent_id, clock, capacity={Channel.SMS: 2})
    import asyncio

    await asyncio.gather(*(r.route(work(n, clock)) for n in range(1, 7) for r in routers))
    offers = [e for r in routers for e in r.effects.of("offered")]  # type: ignore[attr-defined]
    assert len(offers) == 4  # two agents with room for two each
    assert len({i for i, _ in offers}) == 4  # and never the same work twice
