"""One contract, two implementations: routing state in memory and in Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hub.domain.interaction import Channel
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.state import Limits, RoutingState
from tests.routing.conftest import Factory

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
LIMITS = Limits({Channel.SMS: 2, Channel.VOICE: 1, Channel.EMAIL: 5}, voice_exclusive=True)


def agent(agent_id: int, **kw: object) -> AgentState:
    fields: dict[str, object] = {
        "agent_id": agent_id,
        "teams": frozenset({"support"}),
        "presence": Presence.AVAILABLE,
        "presence_since": T0,
        "idle_since": T0 - timedelta(minutes=agent_id),
        "skills": {"billing": 3},
        "languages": frozenset({"en"}),
    }
    fields.update(kw)
    return AgentState(**fields)  # type: ignore[arg-type]


def item(interaction_id: int, **kw: object) -> WorkItem:
    fields: dict[str, object] = {
        "interaction_id": interaction_id,
        "customer_id": 1000 + interaction_id,
        "channel": Channel.SMS,
        "queue": "billing",
        "priority": 0,
        "enqueued_at": T0 + timedelta(seconds=interaction_id),
        "queue_entered_at": T0 + timedelta(seconds=interaction_id),
    }
    fields.update(kw)
    return WorkItem(**fields)  # type: ignore[arg-type]


EXPIRES = T0 + timedelta(seconds=20)


async def test_agents_round_trip_and_keep_their_load(state: RoutingState) -> None:
    original = agent(1, capacity={Channel.SMS: 4}, away_reason=None, load={Channel.EMAIL: 1})
    await state.put_agent(original)
    await state.put_agent(agent(2, teams=frozenset({"sales"})))
    assert await state.agent(1) == original
    assert [a.agent_id for a in await state.agents("support")] == [1]
    assert {a.agent_id for a in await state.agents()} == {1, 2}
    await state.put_agent(agent(1, skills={"billing": 5}, teams=frozenset({"sales"})))
    again = await state.agent(1)
    assert again is not None
    assert again.skills == {"billing": 5}
    assert again.load == {Channel.EMAIL: 1}  # profile changes keep the live load
    assert again.capacity == {}
    assert [a.agent_id for a in await state.agents("support")] == []
    assert await state.agent(99) is None


async def test_work_waits_by_priority_then_place_in_line(state: RoutingState) -> None:
    assert await state.add_item(item(1))
    assert not await state.add_item(item(1))
    await state.add_item(item(2, priority=5))
    await state.add_item(item(3, queue="general", tags=frozenset({"x"}), vip=True))
    assert [i.interaction_id for i in await state.waiting()] == [2, 1, 3]
    assert [i.interaction_id for i in await state.waiting(frozenset({"general"}))] == [3]
    assert await state.queue_sizes() == {"billing": 2, "general": 1}
    stored = await state.item(3)
    assert stored == item(3, queue="general", tags=frozenset({"x"}), vip=True)


async def test_an_offer_is_made_once_and_respects_capacity(state: RoutingState) -> None:
    await state.put_agent(agent(1))
    await state.put_agent(agent(2))
    for n in (1, 2, 3):
        await state.add_item(item(n))
    assert await state.reserve(1, 1, EXPIRES, LIMITS, T0)
    assert not await state.reserve(1, 2, EXPIRES, LIMITS, T0)  # already offered
    assert await state.reserve(2, 1, EXPIRES, LIMITS, T0)
    assert not await state.reserve(3, 1, EXPIRES, LIMITS, T0)  # SMS capacity 2 reached
    assert [i.interaction_id for i in await state.waiting()] == [3]
    offered = await state.item(1)
    assert offered is not None
    assert offered.offered_to == 1
    assert offered.offer_expires == EXPIRES
    first = await state.agent(1)
    assert first is not None
    assert first.load == {Channel.SMS: 2}


async def test_voice_blocks_other_work_and_presence_and_wrap_up_count(state: RoutingState) -> None:
    await state.put_agent(agent(1))
    await state.add_item(item(1, channel=Channel.VOICE))
    await state.add_item(item(2))
    assert await state.reserve(1, 1, EXPIRES, LIMITS, T0)
    assert not await state.reserve(2, 1, EXPIRES, LIMITS, T0)
    await state.put_agent(agent(2, presence=Presence.AWAY))
    assert not await state.reserve(2, 2, EXPIRES, LIMITS, T0)
    await state.put_agent(agent(3, wrap_up_until=T0 + timedelta(seconds=5)))
    assert not await state.reserve(2, 3, EXPIRES, LIMITS, T0)
    assert await state.reserve(2, 3, EXPIRES, LIMITS, T0 + timedelta(seconds=6))


async def test_decline_returns_the_work_and_excludes_the_agent(state: RoutingState) -> None:
    await state.put_agent(agent(1))
    await state.put_agent(agent(2))
    await state.add_item(item(1))
    await state.reserve(1, 1, EXPIRES, LIMITS, T0)
    assert await state.release_offer(1, 2, exclude=True, now=T0) is None  # not theirs
    back = await state.release_offer(1, 1, exclude=True, now=T0)
    assert back is not None
    assert back.excluded == {1: T0}
    assert [i.interaction_id for i in await state.waiting()] == [1]
    first = await state.agent(1)
    assert first is not None
    assert first.load.get(Channel.SMS, 0) == 0
    assert not await state.reserve(1, 1, EXPIRES, LIMITS, T0)
    assert await state.reserve(1, 2, EXPIRES, LIMITS, T0)
    await state.release_offer(1, 2, exclude=True, now=T0)
    # the engine decided nobody else can take it: the agent who passed may get it again
    assert await state.reserve(1, 1, EXPIRES, LIMITS, T0, again=True)


async def test_accept_assigns_once_to_the_offered_agent_only(state: RoutingState) -> None:
    await state.put_agent(agent(1))
    await state.add_item(item(1))
    await state.reserve(1, 1, EXPIRES, LIMITS, T0)
    assert await state.accept(1, 2) is None
    assigned = await state.accept(1, 1)
    assert assigned is not None
    assert assigned.interaction_id == 1
    assert await state.accept(1, 1) is None
    assert await state.item(1) is None
    assert await state.queue_sizes() == {}
    holder = await state.agent(1)
    assert holder is not None
    assert holder.load == {Channel.SMS: 1}  # the work is theirs now
    wrap = T0 + timedelta(seconds=30)
    await state.finish(1, Channel.SMS, T0 + timedelta(seconds=10), wrap)
    done = await state.agent(1)
    assert done is not None
    assert done.load == {}
    assert done.wrap_up_until == wrap
    assert done.idle_since == wrap


async def test_removing_offered_work_frees_the_agent(state: RoutingState) -> None:
    await state.put_agent(agent(1))
    await state.add_item(item(1))
    await state.reserve(1, 1, EXPIRES, LIMITS, T0)
    removed = await state.remove_item(1)
    assert removed is not None
    assert removed.offered_to == 1
    holder = await state.agent(1)
    assert holder is not None
    assert holder.load == {}
    assert await state.remove_item(1) is None


async def test_moving_work_keeps_its_place_in_line(state: RoutingState) -> None:
    await state.add_item(item(1))
    await state.add_item(item(2, queue="general"))
    later = T0 + timedelta(minutes=5)
    moved = await state.move_item(1, "general", 0, later)
    assert moved is not None
    assert moved.queue_entered_at == later
    assert moved.enqueued_at == item(1).enqueued_at
    assert [i.interaction_id for i in await state.waiting(frozenset({"general"}))] == [1, 2]
    assert await state.queue_sizes() == {"general": 2}
    await state.put_agent(agent(1))
    await state.reserve(2, 1, EXPIRES, LIMITS, later)
    assert await state.move_item(2, "billing", 0, later) is None  # not while ringing


async def test_expired_offers_and_presence(state: RoutingState) -> None:
    await state.put_agent(agent(1, presence=Presence.OFFLINE))
    back = await state.set_presence(1, Presence.AVAILABLE, None, T0)
    assert back is not None
    assert back.idle_since == T0
    await state.add_item(item(1))
    await state.reserve(1, 1, EXPIRES, LIMITS, T0)
    assert await state.expired_offers(T0) == []
    assert [i.interaction_id for i in await state.expired_offers(EXPIRES)] == [1]
    away = await state.set_presence(1, Presence.AWAY, "lunch", T0)
    assert away is not None
    assert (away.presence, away.away_reason) == (Presence.AWAY, "lunch")
    assert await state.set_presence(42, Presence.AWAY, None, T0) is None


async def test_racing_processes_never_double_offer_or_overfill(make_state: Factory) -> None:
    processes = [await make_state() for _ in range(4)]
    await processes[0].put_agent(agent(1))  # SMS capacity 2
    for n in range(1, 11):
        await processes[0].add_item(item(n))
    for n in range(2, 8):
        await processes[0].put_agent(agent(n))

    # Every process tries to give every item to agent 1, and item 1 to everyone.
    attempts = [p.reserve(n, 1, EXPIRES, LIMITS, T0) for p in processes for n in range(1, 11)] + [
        p.reserve(1, a, EXPIRES, LIMITS, T0) for p in processes for a in range(2, 8)
    ]
    results = await asyncio.gather(*attempts)
    assert sum(results) <= 2 + 1
    holder = await processes[1].agent(1)
    assert holder is not None
    assert holder.load == {Channel.SMS: 2}
    offered = [i for i in [await processes[2].item(n) for n in range(1, 11)] if i and i.offered_to]
    assert sum(1 for i in offered if i.offered_to == 1) == 2
    first = await processes[3].item(1)
    assert first is not None
    assert first.offered_to is not None
    accepts = await asyncio.gather(*(p.accept(1, first.offered_to) for p in processes))
    assert sum(a is not None for a in accepts) == 1


async def test_agents_not_seen_are_handed_out_once(state: RoutingState) -> None:
    """Which agents lost every console: one caller (one hub process) gets each."""
    await state.seen([1, 2], T0)
    await state.seen([2], T0 + timedelta(seconds=20))
    assert await state.take_unseen(T0 + timedelta(seconds=10)) == [1]
    assert await state.take_unseen(T0 + timedelta(seconds=10)) == []
    assert await state.take_unseen(T0 + timedelta(seconds=30)) == [2]


async def test_the_heads_of_the_queues_can_be_read_without_the_whole_line(
    state: RoutingState,
) -> None:
    for n in range(1, 8):
        await state.add_item(item(n, queue="a" if n % 2 else "b"))
    heads = await state.waiting(limit=2)
    assert sorted((i.queue, i.interaction_id) for i in heads) == [
        ("a", 1), ("a", 3), ("b", 2), ("b", 4)
    ]  # fmt: skip
    assert len(await state.waiting()) == 7
