"""The memory state's index of who can take more: always what scanning the team would give."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.interaction import Channel
from hub.routing.engine import has_room, idle_order
from hub.routing.model import Presence, WorkItem
from hub.routing.state import Limits, MemoryRoutingState, RoutingState
from tests.routing.test_state import EXPIRES, LIMITS, T0, agent, item

TEAMS = ("sales", "support")
CHANNELS = (Channel.SMS, Channel.VOICE, Channel.EMAIL)


async def scanned(state: RoutingState, team: str, channel: Channel, now: datetime) -> list[int]:
    """Who can take one more, found the slow way: every agent of the team, checked."""
    assert state.limits is not None
    rule = (state.limits.capacity, state.limits.voice_exclusive, now)
    found = [a for a in await state.agents(team) if has_room(a, channel, *rule)]
    return [a.agent_id for a in sorted(found, key=idle_order)]


async def test_candidates_are_the_team_s_agents_with_room_longest_idle_first(
    state: RoutingState,
) -> None:
    state.use_limits(LIMITS)
    await state.put_agent(agent(1))  # idle since T0 - 1 min
    await state.put_agent(agent(2))  # longer
    await state.put_agent(agent(3, teams=frozenset({"sales"})))
    await state.put_agent(agent(4, presence=Presence.AWAY))
    await state.add_item(item(10, channel=Channel.VOICE))
    assert await state.reserve(10, 1, EXPIRES, LIMITS, T0)  # on a call: room for nothing
    ids = [a.agent_id for a in await state.candidates("support", Channel.SMS, T0)]
    assert ids == [2]
    await state.finish(1, Channel.VOICE, T0, T0 + timedelta(seconds=30))  # wrap-up
    assert [a.agent_id for a in await state.candidates("support", Channel.SMS, T0)] == [2]
    later = T0 + timedelta(seconds=31)
    assert [a.agent_id for a in await state.candidates("support", Channel.SMS, later)] == [2, 1]
    await state.set_presence(2, Presence.AWAY, "lunch", later)
    await state.set_presence(2, Presence.AVAILABLE, None, later + timedelta(seconds=1))
    order = [a.agent_id for a in await state.candidates("support", Channel.SMS, later)]
    assert order == [1, 2]  # back from lunch: idle from now, behind agent 1


Op = tuple[str, int, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["put", "presence", "reserve", "release", "finish", "load", "remove", "limits"]
        ),
        st.integers(1, 6),  # agent
        st.integers(0, 2),  # channel, team or presence, by the op
        st.integers(0, 3),  # count, seconds or capacity
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_the_index_always_agrees_with_a_scan_of_the_team(steps: list[Op]) -> None:
    asyncio.run(_agree(steps))


async def _agree(steps: list[Op]) -> None:
    state = MemoryRoutingState()
    state.use_limits(LIMITS)
    now = T0
    next_item = 100
    for op, agent_id, pick, number in steps:
        now += timedelta(seconds=number)
        channel = CHANNELS[pick]
        if op == "put":
            teams = frozenset(TEAMS[: pick + 1] if pick < 2 else TEAMS[1:])
            capacity = {channel: number} if number else {}
            await state.put_agent(agent(agent_id, teams=teams, capacity=capacity))
        elif op == "presence":
            presence = (Presence.AVAILABLE, Presence.AWAY, Presence.OFFLINE)[pick]
            await state.set_presence(agent_id, presence, None, now)
        elif op == "reserve":
            next_item += 1
            await state.add_item(_work(next_item, channel, now))
            await state.reserve(next_item, agent_id, now + timedelta(seconds=20), LIMITS, now)
        elif op == "release":
            offered = [i for i in await state.expired_offers(now + timedelta(days=1))]
            for work in offered[:1]:
                assert work.offered_to is not None
                await state.release_offer(
                    work.interaction_id, work.offered_to, exclude=bool(pick), now=now
                )
        elif op == "finish":
            wrap = now + timedelta(seconds=number * 10) if number else None
            await state.finish(agent_id, channel, now, wrap)
        elif op == "load":
            await state.set_load(agent_id, channel, number)
        elif op == "remove":
            waiting = await state.expired_offers(now + timedelta(days=1))
            for work in waiting[:1]:
                await state.remove_item(work.interaction_id)
        else:
            state.use_limits(Limits({channel: number + 1}, voice_exclusive=bool(pick % 2)))
        for team in TEAMS:
            for wanted in CHANNELS:
                for at in (now, now + timedelta(seconds=25)):
                    found = [a.agent_id for a in await state.candidates(team, wanted, at)]
                    assert found == await scanned(state, team, wanted, at)


def _work(interaction_id: int, channel: Channel, now: datetime) -> WorkItem:
    return item(interaction_id, channel=channel, enqueued_at=now, queue_entered_at=now)
