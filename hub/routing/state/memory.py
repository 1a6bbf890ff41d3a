"""Routing state in the hub's own process (the embedded default).

Every method runs without awaiting anything in between, so on one event loop each is atomic.
Reads return copies, as Redis does, so no caller's snapshot changes under it, except
``candidates``: the live agents, read before the caller's next await (the router's decision).

Agents who can be offered more are indexed as they change: for each team and channel, the
available agents with room on it (by the policy's capacity rule, ``use_limits``), longest idle
first. A decision reads those few, not the whole team; wrap-up, which ends with time rather
than with a change, is checked as they are read.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from hub.domain.interaction import Channel
from hub.routing.engine import has_room, idle_order
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.state.base import Limits, RoutingState

CHANNELS = tuple(Channel)
NEVER = datetime.max.replace(tzinfo=UTC)  # "now" for the index: wrap-up is checked on reading
Ready = list[tuple[datetime, int]]  # (idle since, agent id), in order


class MemoryRoutingState(RoutingState):
    """Agents and work in dictionaries."""

    def __init__(self) -> None:
        self._agents: dict[int, AgentState] = {}
        self._teams: dict[str, dict[int, AgentState]] = {}  # team -> its agents, by id
        self._items: dict[int, WorkItem] = {}
        self._seen: dict[int, datetime] = {}
        self._claimed = False
        self._ready: dict[tuple[str, Channel], Ready] = {}  # (team, channel) -> who can take one
        self._indexed: dict[int, tuple[tuple[datetime, int], frozenset[tuple[str, Channel]]]] = {}

    def use_limits(self, limits: Limits) -> None:
        super().use_limits(limits)
        for agent in self._agents.values():
            self._index(agent)

    def _index(self, agent: AgentState) -> None:
        """Put the agent where they belong in the index now (after any change to them)."""
        key = idle_order(agent)
        limits = self.limits
        wanted: frozenset[tuple[str, Channel]] = frozenset()
        if limits is not None and agent.presence is Presence.AVAILABLE:
            rule = (limits.capacity, limits.voice_exclusive, NEVER)
            wanted = frozenset(
                (team, channel)
                for channel in CHANNELS
                if has_room(agent, channel, *rule)
                for team in agent.teams
            )
        old_key, old = self._indexed.get(agent.agent_id, (key, frozenset()))
        for place in old - wanted if old_key == key else old:
            ready = self._ready[place]
            del ready[bisect_left(ready, old_key)]
        for place in wanted - old if old_key == key else wanted:
            insort(self._ready.setdefault(place, []), key)
        self._indexed[agent.agent_id] = (key, wanted)

    def _forget(self, agent_id: int) -> None:
        key, places = self._indexed.pop(agent_id, ((NEVER, 0), frozenset()))
        for place in places:
            ready = self._ready[place]
            del ready[bisect_left(ready, key)]

    async def candidates(self, team: str, channel: Channel, now: datetime) -> Iterable[AgentState]:
        if self.limits is None:
            return await super().candidates(team, channel, now)
        agents = self._agents
        return (
            agents[agent_id]
            for _, agent_id in self._ready.get((team, channel), ())
            if (until := agents[agent_id].wrap_up_until) is None or until <= now
        )

    async def put_agent(self, agent: AgentState) -> None:
        known = self._agents.get(agent.agent_id)
        load = dict(known.load) if known is not None else dict(agent.load)
        kept = self._agents[agent.agent_id] = replace(agent, load=load)
        for team in known.teams if known is not None else ():
            self._teams.get(team, {}).pop(agent.agent_id, None)
        for team in kept.teams:
            self._teams.setdefault(team, {})[agent.agent_id] = kept
        self._forget(agent.agent_id)  # its teams may have changed
        self._index(kept)

    async def agent(self, agent_id: int) -> AgentState | None:
        agent = self._agents.get(agent_id)
        return None if agent is None else _copy_agent(agent)

    async def agents(self, team: str | None = None) -> list[AgentState]:
        members = self._agents if team is None else self._teams.get(team, {})
        return [_copy_agent(a) for a in members.values()]

    async def set_presence(
        self, agent_id: int, presence: Presence, reason: str | None, now: datetime
    ) -> AgentState | None:
        agent = self._agents.get(agent_id)
        if agent is None:
            return None
        if presence is Presence.AVAILABLE and agent.presence is not Presence.AVAILABLE:
            agent.idle_since = now
        agent.presence = presence
        agent.away_reason = reason if presence is Presence.AWAY else None
        agent.presence_since = now
        self._index(agent)
        return _copy_agent(agent)

    async def add_load(self, agent_id: int, channel: Channel, count: int) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None:
            agent.load[channel] = agent.load.get(channel, 0) + count
            self._index(agent)

    async def finish(
        self, agent_id: int, channel: Channel, now: datetime, wrap_up_until: datetime | None
    ) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        _decrement(agent, channel)
        if wrap_up_until is not None:
            agent.wrap_up_until = wrap_up_until
        if agent.total_load() == 0:
            agent.idle_since = wrap_up_until or now
        self._index(agent)

    async def add_item(self, item: WorkItem) -> bool:
        if item.interaction_id in self._items:
            return False
        self._items[item.interaction_id] = replace(item)
        return True

    async def item(self, interaction_id: int) -> WorkItem | None:
        item = self._items.get(interaction_id)
        return None if item is None else replace(item)

    async def waiting(
        self, queues: frozenset[str] | None = None, *, limit: int | None = None
    ) -> list[WorkItem]:
        found = sorted(
            (
                i
                for i in self._items.values()
                if i.offered_to is None and (queues is None or i.queue in queues)
            ),
            key=WorkItem.sort_key,
        )
        if limit is not None:
            taken: dict[str, int] = {}
            heads = []
            for item in found:
                if taken.get(item.queue, 0) < limit:
                    taken[item.queue] = taken.get(item.queue, 0) + 1
                    heads.append(item)
            found = heads
        return [replace(i) for i in found]

    async def queue_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for item in self._items.values():
            sizes[item.queue] = sizes.get(item.queue, 0) + 1
        return sizes

    async def remove_item(self, interaction_id: int) -> WorkItem | None:
        item = self._items.pop(interaction_id, None)
        if item is not None and item.offered_to is not None:
            self._unload(item.offered_to, item.channel)
        return item

    async def move_item(
        self, interaction_id: int, queue: str, priority: int, now: datetime
    ) -> WorkItem | None:
        item = self._items.get(interaction_id)
        if item is None or item.offered_to is not None:
            return None
        item.queue, item.priority, item.queue_entered_at = queue, priority, now
        item.closed_told = False
        return replace(item)

    async def mark_closed_told(self, interaction_id: int) -> None:
        item = self._items.get(interaction_id)
        if item is not None:
            item.closed_told = True

    async def reserve(
        self,
        interaction_id: int,
        agent_id: int,
        expires_at: datetime,
        limits: Limits,
        now: datetime,
        *,
        again: bool = False,
    ) -> bool:
        item = self._items.get(interaction_id)
        agent = self._agents.get(agent_id)
        if item is None or agent is None or item.offered_to is not None:
            return False
        if agent_id in item.excluded and not again:
            return False
        if not has_room(agent, item.channel, limits.capacity, limits.voice_exclusive, now):
            return False
        item.offered_to, item.offer_expires = agent_id, expires_at
        agent.load[item.channel] = agent.load.get(item.channel, 0) + 1
        self._index(agent)
        return True

    async def release_offer(
        self, interaction_id: int, agent_id: int, *, exclude: bool, now: datetime
    ) -> WorkItem | None:
        item = self._items.get(interaction_id)
        if item is None or item.offered_to != agent_id:
            return None
        item.offered_to = item.offer_expires = None
        item.rung = False
        if exclude:
            item.excluded = {**item.excluded, agent_id: now}  # a new dict: copies share the old
        self._unload(agent_id, item.channel)
        return replace(item)

    async def ring(self, interaction_id: int, agent_id: int, until: datetime) -> bool:
        item = self._items.get(interaction_id)
        if item is None or item.offered_to != agent_id:
            return False
        item.offer_expires, item.rung = until, True
        return True

    async def accept(self, interaction_id: int, agent_id: int) -> WorkItem | None:
        item = self._items.get(interaction_id)
        if item is None or item.offered_to != agent_id:
            return None
        del self._items[interaction_id]  # the agent keeps the load: it is theirs now
        return item

    async def expired_offers(self, now: datetime) -> list[WorkItem]:
        return [
            replace(i)
            for i in self._items.values()
            if i.offer_expires is not None and i.offer_expires <= now
        ]

    async def seen(self, agent_ids: Collection[int], now: datetime) -> None:
        for agent_id in agent_ids:
            self._seen[agent_id] = now

    async def take_unseen(self, before: datetime) -> list[int]:
        lost = [agent_id for agent_id, at in self._seen.items() if at < before]
        for agent_id in lost:
            del self._seen[agent_id]
        return lost

    async def set_load(self, agent_id: int, channel: Channel, count: int) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None:
            if count > 0:
                agent.load[channel] = count
            else:
                agent.load.pop(channel, None)
            self._index(agent)

    async def claim_duty(self, name: str, seconds: float) -> bool:
        return True  # one process: always this one

    async def claim_rebuild(self) -> bool:
        claimed, self._claimed = self._claimed, True
        return not claimed

    def _unload(self, agent_id: int, channel: Channel) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None:
            _decrement(agent, channel)
            self._index(agent)


def _copy_agent(agent: AgentState) -> AgentState:
    # Field by field: dataclasses.replace costs several times as much, on every decision.
    return AgentState(
        agent.agent_id,
        agent.teams,
        agent.presence,
        agent.presence_since,
        agent.idle_since,
        agent.skills,
        agent.languages,
        agent.capacity,
        agent.away_reason,
        agent.wrap_up_until,
        dict(agent.load),
    )


def _decrement(agent: AgentState, channel: Channel) -> None:
    """One fewer on the channel; a channel with nothing on it is not listed."""
    left = agent.load.get(channel, 0) - 1
    if left > 0:
        agent.load[channel] = left
    else:
        agent.load.pop(channel, None)
