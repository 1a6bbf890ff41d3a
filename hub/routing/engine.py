"""The ACD's decisions, as pure functions of (work, agent snapshots, policy, now).

No I/O and no wall clock: the router feeds in snapshots and the time, and carries out what
comes back. The same code runs in the hub, in the simulator and in the benchmarks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.domain.interaction import Channel
from hub.routing.expressions import TRUE
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.policy import Policy, QueuePolicy


@dataclass(frozen=True, slots=True)
class Offer:
    """Offer the work to the agent, ringing until expires_at."""

    interaction_id: int
    agent_id: int
    expires_at: datetime
    again: bool = False  # to an agent who declined or missed it before (nobody else could)


@dataclass(frozen=True, slots=True)
class Overflow:
    """Move the work to another queue (it keeps its place in line)."""

    interaction_id: int
    to_queue: str
    reason: str  # step | max_wait | max_size


@dataclass(frozen=True, slots=True)
class Closed:
    """The queue is outside its business hours: tell the channel (once)."""

    interaction_id: int
    queue: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The work waited past the queue's limit with nowhere to overflow to."""

    interaction_id: int
    reason: str


Decision = Offer | Overflow | Closed | GiveUp


def waited(item: WorkItem, now: datetime) -> float:
    """Seconds the item has been in its current queue."""
    return (now - item.queue_entered_at).total_seconds()


def can_take(
    agent: AgentState,
    channel: Channel,
    policy: Policy,
    now: datetime,
    extra: Mapping[Channel, int] | None = None,
) -> bool:
    """Whether the agent can be offered one more interaction of the channel now."""
    return has_room(agent, channel, policy.capacity, policy.voice_exclusive, now, extra)


def has_room(
    agent: AgentState,
    channel: Channel,
    default_capacity: Mapping[Channel, int],
    voice_exclusive: bool,
    now: datetime,
    extra: Mapping[Channel, int] | None = None,
) -> bool:
    """The capacity rule itself; the state stores apply it again when they reserve."""
    if agent.presence is not Presence.AVAILABLE:
        return False
    if agent.wrap_up_until is not None and agent.wrap_up_until > now:
        return False
    extra = extra or {}
    load = agent.load.get(channel, 0) + extra.get(channel, 0)
    if load >= agent.capacity_for(channel, default_capacity):
        return False
    if voice_exclusive:
        total = agent.total_load() + sum(extra.values())
        voice = agent.load.get(Channel.VOICE, 0) + extra.get(Channel.VOICE, 0)
        if channel is Channel.VOICE and total > 0:
            return False  # a call needs the agent's whole attention
        if voice > 0:
            return False
    return True


def idle_order(agent: AgentState) -> tuple[datetime, int]:
    """Longest idle first (the earliest ``idle_since``), then by id: the default ranking."""
    return (agent.idle_since, agent.agent_id)


def _rank(agent: AgentState, queue: QueuePolicy, policy: Policy) -> tuple[float, datetime, int]:
    if queue.agent_order == "least_occupied":
        return (agent.occupancy(policy.capacity), agent.idle_since, agent.agent_id)
    if queue.agent_order == "highest_proficiency" and queue.skill is not None:
        return (-agent.skills.get(queue.skill, 0), agent.idle_since, agent.agent_id)
    return (0, agent.idle_since, agent.agent_id)  # longest idle: the earliest idle_since


def reoffer_allowed(item: WorkItem, agent: AgentState, policy: Policy, now: datetime) -> bool:
    """Whether an agent the item was taken from (declined, rang out) may be offered it again.

    Only when nobody else can take it (the caller asks that first), and only once the agent
    has made themselves available since, or ``reoffer_after_seconds`` have passed: a single
    agent who declines is not rung again at once, yet work never waits for good on them.
    """
    at = item.excluded.get(agent.agent_id)
    if at is None:
        return True
    return agent.presence_since > at or (now - at).total_seconds() >= policy.reoffer_after_seconds


def choose_agent(
    item: WorkItem,
    agents: Iterable[AgentState],
    policy: Policy,
    now: datetime,
    reserved: Mapping[int, Counter[Channel]] | None = None,
    *,
    idle_ordered: bool = False,
) -> AgentState | None:
    """The best agent to offer the item to now, or None if nobody eligible has room.

    Eligible: in the queue's team, room on the channel, and matching the target of the step
    the item's wait has reached. Agents who declined it or let it ring out come last: they
    are offered it again only when no other eligible agent has room (``reoffer_allowed``).
    Sticky work waits for its last agent, if that agent is logged in, until sticky_seconds
    have passed. ``idle_ordered``: the agents come longest idle first (``idle_order``), so
    where that is the queue's ranking the first eligible one who has not passed on it wins,
    and the rest are not looked at.
    """
    queue = policy.queues.get(item.queue)
    if queue is None:
        return None
    step = queue.step_at(waited(item, now))
    if step.overflow is not None:
        return None
    reserved = reserved or {}
    candidates: Iterable[AgentState] = (a for a in agents if queue.team in a.teams)
    if (
        queue.sticky_seconds
        and item.last_agent_id is not None
        and waited(item, now) < queue.sticky_seconds
    ):
        team = list(candidates)
        last = [a for a in team if a.agent_id == item.last_agent_id]
        candidates = last if last and last[0].presence is not Presence.OFFLINE else team
    view = item.view()
    anyone = step.target is TRUE
    first_wins = idle_ordered and queue.agent_order == "longest_idle"
    best: AgentState | None = None
    best_rank: tuple[bool, float, datetime, int] | None = None
    for agent in candidates:
        again = agent.agent_id in item.excluded
        if best_rank is not None and again and not best_rank[0]:
            continue  # someone who has not passed on it is found already
        if again and not reoffer_allowed(item, agent, policy, now):
            continue
        if not can_take(agent, item.channel, policy, now, reserved.get(agent.agent_id)):
            continue
        if not anyone and not step.target(agent.view(), view):
            continue
        if first_wins and not again:
            return agent
        rank = (again, *_rank(agent, queue, policy))
        if best_rank is None or rank < best_rank:
            best, best_rank = agent, rank
    return best


def choose_work(
    agent: AgentState,
    waiting: Sequence[WorkItem],
    policy: Policy,
    now: datetime,
) -> WorkItem | None:
    """The work a newly free agent should be offered: the first in line they may take.

    ``waiting`` is every waiting item of the agent's queues; the first by priority and place
    in line whose current step admits the agent wins.
    """
    for item in sorted(waiting, key=WorkItem.sort_key):
        if item.offered_to is not None:
            continue
        queue = policy.queues.get(item.queue)
        if queue is None or not _open(queue, now):
            continue
        if choose_agent(item, [agent], policy, now) is not None:
            return item
    return None


def _open(queue: QueuePolicy, now: datetime) -> bool:
    return queue.calendar is None or queue.calendar.is_open(now)


def plan(
    waiting: Sequence[WorkItem],
    agents: Sequence[AgentState],
    policy: Policy,
    now: datetime,
) -> list[Decision]:
    """A full pass over everything waiting: offers, overflows, closed notices, give-ups.

    Items are taken by priority and place in line; each offer reserves capacity locally so
    one pass never offers an agent more than they can hold.
    """
    decisions: list[Decision] = []
    # Only agents who could take anything now; a team with none is skipped at once, which
    # keeps a pass over a long backlog cheap while everyone is busy or away.
    by_team: dict[str, list[AgentState]] = {}
    for agent in agents:
        if agent.presence is Presence.AVAILABLE and (
            agent.wrap_up_until is None or agent.wrap_up_until <= now
        ):
            for team in agent.teams:
                by_team.setdefault(team, []).append(agent)
    reserved: dict[int, Counter[Channel]] = {}
    for item in sorted(waiting, key=WorkItem.sort_key):
        if item.offered_to is not None:
            continue
        queue = policy.queues.get(item.queue)
        if queue is None:
            fallback = policy.queue_for(item.channel, None)
            if fallback is not None:
                decisions.append(Overflow(item.interaction_id, fallback.name, "queue_removed"))
            continue
        if not _open(queue, now):
            if not item.closed_told:
                decisions.append(Closed(item.interaction_id, queue.name))
            continue
        seconds = waited(item, now)
        step = queue.step_at(seconds)
        if step.overflow is not None:
            decisions.append(Overflow(item.interaction_id, step.overflow, "step"))
            continue
        if queue.max_wait_seconds is not None and seconds >= queue.max_wait_seconds:
            if queue.overflow is not None:
                decisions.append(Overflow(item.interaction_id, queue.overflow, "max_wait"))
            else:
                decisions.append(GiveUp(item.interaction_id, "max_wait"))
            continue
        candidates = by_team.get(queue.team)
        if not candidates:
            continue
        chosen = choose_agent(item, candidates, policy, now, reserved)
        if chosen is not None:
            reserved.setdefault(chosen.agent_id, Counter())[item.channel] += 1
            again = chosen.agent_id in item.excluded
            decisions.append(
                Offer(item.interaction_id, chosen.agent_id, offer_expiry(queue, now), again)
            )
    return decisions


def offer_expiry(queue: QueuePolicy, now: datetime) -> datetime:
    """When an offer made now stops ringing."""
    return now + timedelta(seconds=queue.ring_seconds)
