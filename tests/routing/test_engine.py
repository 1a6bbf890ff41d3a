"""The pure engine: who gets what, given snapshots, a policy and a time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hub.domain.interaction import Channel
from hub.routing.engine import (
    Closed,
    GiveUp,
    Offer,
    Overflow,
    can_take,
    choose_agent,
    choose_work,
    plan,
)
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.policy import Policy, parse_policy

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York

POLICY = parse_policy(
    """
wrap_up_seconds = 10
default_queue = "general"
[[calendars]]
name = "office"
timezone = "America/New_York"
[calendars.week]
mon = ["09:00-17:00"]

[[queues]]
name = "billing"
team = "support"
sticky_seconds = 30
[[queues.steps]]
after_seconds = 0
target = "agent.skills['billing'] >= 4"
[[queues.steps]]
after_seconds = 30
target = "agent.skills['billing'] >= 2"
[[queues.steps]]
after_seconds = 120
overflow = "general"

[[queues]]
name = "general"
team = "support"
max_wait_seconds = 600

[[queues]]
name = "least"
team = "support"
agent_order = "least_occupied"

[[queues]]
name = "expert"
team = "support"
agent_order = "highest_proficiency"
skill = "billing"

[[queues]]
name = "office"
team = "support"
calendar = "office"
"""
)


def agent(agent_id: int, idle_minutes: int = 0, **kw: object) -> AgentState:
    fields: dict[str, object] = {
        "agent_id": agent_id,
        "teams": frozenset({"support"}),
        "presence": Presence.AVAILABLE,
        "presence_since": T0 - timedelta(hours=1),
        "idle_since": T0 - timedelta(minutes=idle_minutes),
        "skills": {"billing": 5},
    }
    fields.update(kw)
    return AgentState(**fields)  # type: ignore[arg-type]


def item(
    interaction_id: int = 1, queue: str = "general", waited: float = 0, **kw: object
) -> WorkItem:
    fields: dict[str, object] = {
        "interaction_id": interaction_id,
        "customer_id": 100 + interaction_id,
        "channel": Channel.SMS,
        "queue": queue,
        "priority": 0,
        "enqueued_at": T0 - timedelta(seconds=waited),
        "queue_entered_at": T0 - timedelta(seconds=waited),
    }
    fields.update(kw)
    return WorkItem(**fields)  # type: ignore[arg-type]


def chosen(work: WorkItem, agents: list[AgentState], policy: Policy = POLICY) -> int | None:
    found = choose_agent(work, agents, policy, T0)
    return None if found is None else found.agent_id


def test_longest_idle_agent_wins_by_default() -> None:
    assert chosen(item(), [agent(1, 5), agent(2, 30), agent(3, 10)]) == 2


def test_least_occupied_and_highest_proficiency_orders() -> None:
    busy = agent(1, 60, load={Channel.SMS: 2})
    light = agent(2, 1, load={Channel.SMS: 1})
    assert chosen(item(queue="least"), [busy, light]) == 2
    novice = agent(3, 60, skills={"billing": 2})
    expert = agent(4, 1, skills={"billing": 5})
    assert chosen(item(queue="expert"), [novice, expert]) == 4


def test_capacity_per_channel_and_voice_blocks_the_rest() -> None:
    full = agent(1, load={Channel.SMS: 3})
    assert not can_take(full, Channel.SMS, POLICY, T0)
    assert can_take(full, Channel.EMAIL, POLICY, T0)
    assert not can_take(full, Channel.VOICE, POLICY, T0)  # a call needs a free agent
    on_call = agent(2, load={Channel.VOICE: 1})
    assert not can_take(on_call, Channel.SMS, POLICY, T0)
    relaxed = replace(POLICY, voice_exclusive=False)
    assert can_take(on_call, Channel.SMS, relaxed, T0)
    own = agent(3, capacity={Channel.SMS: 1}, load={Channel.SMS: 1})
    assert not can_take(own, Channel.SMS, POLICY, T0)


@pytest.mark.parametrize(
    ("presence", "wrap_minutes", "expected"),
    [
        (Presence.AVAILABLE, None, True),
        (Presence.AWAY, None, False),
        (Presence.OFFLINE, None, False),
        (Presence.AVAILABLE, 1, False),
        (Presence.AVAILABLE, -1, True),
    ],
)
def test_only_available_agents_out_of_wrap_up_get_work(
    presence: Presence, wrap_minutes: int | None, expected: bool
) -> None:
    wrap = None if wrap_minutes is None else T0 + timedelta(minutes=wrap_minutes)
    assert (
        can_take(agent(1, presence=presence, wrap_up_until=wrap), Channel.SMS, POLICY, T0)
        is expected
    )


def test_steps_widen_as_the_work_waits() -> None:
    novice = agent(1, 60, skills={"billing": 2})
    assert chosen(item(queue="billing", waited=10), [novice]) is None
    assert chosen(item(queue="billing", waited=31), [novice]) == 1
    assert chosen(item(queue="billing", waited=121), [agent(2)]) is None  # overflow step


def test_declined_agents_and_other_teams_are_not_offered() -> None:
    assert chosen(item(excluded={1: T0}), [agent(1, 60), agent(2, 1)]) == 2
    assert chosen(item(), [agent(1, teams=frozenset({"sales"}))]) is None


def test_an_agent_who_passed_gets_the_work_again_only_when_nobody_else_can() -> None:
    """TaskRouter-like: work that rang out never waits for good on its one agent."""
    passed = item(excluded={1: T0 - timedelta(seconds=5)})
    alone = agent(1, 60, presence_since=T0 - timedelta(minutes=5))
    assert chosen(passed, [alone]) is None  # declined 5 s ago, still available: not rung again
    back = replace(alone, presence_since=T0 - timedelta(seconds=1))  # made available since
    assert chosen(passed, [back]) == 1
    later = item(excluded={1: T0 - timedelta(seconds=31)})  # reoffer_after_seconds (30) passed
    assert chosen(later, [alone]) == 1
    # someone else with room always comes first, even one idle for less time
    assert chosen(later, [alone, agent(2, 1)]) == 2
    busy = agent(2, 1, load={Channel.SMS: 3})
    assert chosen(later, [alone, busy]) == 1


def test_sticky_work_waits_for_its_last_agent_then_falls_back() -> None:
    last = agent(1, 0, load={Channel.SMS: 3})  # busy right now
    other = agent(2, 60)
    assert chosen(item(queue="billing", last_agent_id=1), [last, other]) is None
    assert chosen(item(queue="billing", last_agent_id=1, waited=31), [last, other]) == 2
    gone = replace(last, presence=Presence.OFFLINE)
    assert chosen(item(queue="billing", last_agent_id=1), [gone, other]) == 2
    free = agent(1, 0)
    assert chosen(item(queue="billing", last_agent_id=1), [free, other]) == 1


def test_a_pass_offers_by_priority_then_place_in_line_and_never_overfills() -> None:
    solo = agent(1, capacity={Channel.SMS: 2})
    waiting = [
        item(1, waited=50),
        item(2, waited=10, priority=5),
        item(3, waited=100),
    ]
    decisions = plan(waiting, [solo], POLICY, T0)
    assert [(d.interaction_id, d.agent_id) for d in decisions if isinstance(d, Offer)] == [
        (2, 1),
        (3, 1),
    ]
    assert all(
        d.expires_at == T0 + timedelta(seconds=20) for d in decisions if isinstance(d, Offer)
    )


def test_a_pass_overflows_gives_up_and_tells_closed_queues_once() -> None:
    evening = T0 + timedelta(hours=8)  # 18:00 in New York
    waiting = [
        item(1, queue="billing", waited=130),
        item(2, queue="general", waited=700),
        item(3, queue="office"),
        item(4, queue="office", closed_told=True),
        item(5, queue="removed"),
    ]
    decisions = plan(waiting, [], POLICY, evening)
    assert Overflow(1, "general", "step") in decisions
    assert GiveUp(2, "max_wait") in decisions
    assert Closed(3, "office") in decisions
    assert not any(d.interaction_id == 4 for d in decisions)
    assert Overflow(5, "general", "queue_removed") in decisions  # to the default queue
    open_hours = plan([item(3, queue="office")], [agent(1)], POLICY, T0)
    assert open_hours == [Offer(3, 1, T0 + timedelta(seconds=20))]


def test_a_free_agent_gets_the_first_work_they_may_take() -> None:
    novice = agent(1, skills={"billing": 2})
    waiting = [
        item(1, queue="billing", waited=40, priority=1),  # step 2: novice may take it
        item(2, queue="billing", waited=5, priority=9),  # step 1: experts only
        item(3, queue="general", waited=100),
    ]
    found = choose_work(novice, waiting, POLICY, T0)
    assert found is not None
    assert found.interaction_id == 1
    assert choose_work(agent(2, presence=Presence.AWAY), waiting, POLICY, T0) is None
