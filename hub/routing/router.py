"""The router: carries out the engine's decisions against the routing state.

It reacts to events (new work, an agent freed, an offer declined) with targeted decisions, and
runs a full pass on every ``tick`` (offers that rang out, steps that widened, overflows,
business hours). What it does is reported through ``RouterEffects``: the hub persists and
notifies, the simulator keeps statistics, the benchmark ignores it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from hub.domain.interaction import Channel
from hub.errors import Conflict, RoutingError
from hub.routing.engine import (
    Closed,
    GiveUp,
    Offer,
    Overflow,
    choose_agent,
    choose_work,
    offer_expiry,
    plan,
    waited,
)
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.policy import Policy, QueuePolicy
from hub.routing.state.base import Limits, RoutingState

RESERVE_ATTEMPTS = 3  # a lost race re-reads and tries again, then leaves it to the next tick
HEAD = 10  # a freed agent looks at this many of each of its queues first
FULL_PASS_EVERY = 10  # ticks: in between, a tick without time rules reads only the heads


@dataclass(frozen=True, slots=True)
class Reserved:
    """An offer made in the routing state, to be recorded (the item carries its offer)."""

    item: WorkItem
    agent_id: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Requeued:
    """An offer withdrawn in the routing state (the work waits again), to be recorded."""

    item: WorkItem
    agent_id: int
    reason: str


# Puts queued work in the routing state and makes offers for it: the offers made.
Enter = Callable[[list[WorkItem]], Awaitable[list[Reserved]]]


class RouterEffects(Protocol):
    """What the router tells the rest of the hub."""

    async def offered(self, item: WorkItem, agent_id: int, expires_at: datetime) -> None: ...

    async def offered_many(self, offers: Sequence[Reserved]) -> None:
        """Offers made together (a batch of arrivals, a tick), recorded in one go."""
        ...

    async def assigned(self, item: WorkItem, agent_id: int) -> bool:
        """The accept recorded; False when the work moved on meanwhile (closed, taken)."""
        ...

    async def requeued(self, item: WorkItem, agent_id: int, reason: str) -> None: ...

    async def requeued_many(self, released: Sequence[Requeued]) -> None:
        """Offers withdrawn together (a tick's ring-outs), recorded in one go."""
        ...

    async def queued(self, item: WorkItem) -> bool:
        """Work queued; False when it is no longer new or waiting (taken meanwhile)."""
        ...

    async def queued_and_offered(
        self,
        items: Sequence[WorkItem],
        enter: Enter,
    ) -> None:
        """New work queued, and the offers made for it, recorded in one go: ``enter`` is
        given the items that were still new (so are queued) and returns the offers it made."""
        ...

    async def overflowed(self, item: WorkItem, from_queue: str, reason: str) -> None: ...

    async def closed(self, item: WorkItem, queue: QueuePolicy) -> None: ...

    async def gave_up(self, item: WorkItem, reason: str) -> None: ...

    async def presence_changed(self, agent: AgentState, reason: str) -> None: ...


class NoEffects:
    """Effects that do nothing (benchmarks)."""

    async def offered(self, item: WorkItem, agent_id: int, expires_at: datetime) -> None:
        return None

    async def offered_many(self, offers: Sequence[Reserved]) -> None:
        for offer in offers:
            await self.offered(offer.item, offer.agent_id, offer.expires_at)

    async def assigned(self, item: WorkItem, agent_id: int) -> bool:
        return True

    async def requeued(self, item: WorkItem, agent_id: int, reason: str) -> None:
        return None

    async def requeued_many(self, released: Sequence[Requeued]) -> None:
        for each in released:
            await self.requeued(each.item, each.agent_id, each.reason)

    async def queued(self, item: WorkItem) -> bool:
        return True

    async def queued_and_offered(
        self,
        items: Sequence[WorkItem],
        enter: Enter,
    ) -> None:
        await self.offered_many(await enter(list(items)))

    async def overflowed(self, item: WorkItem, from_queue: str, reason: str) -> None:
        return None

    async def closed(self, item: WorkItem, queue: QueuePolicy) -> None:
        return None

    async def gave_up(self, item: WorkItem, reason: str) -> None:
        return None

    async def presence_changed(self, agent: AgentState, reason: str) -> None:
        return None


class Router:
    """Routes work to agents with one routing state, one policy and an injected clock."""

    def __init__(
        self,
        state: RoutingState,
        policy: Policy,
        effects: RouterEffects,
        clock: Callable[[], datetime],
    ) -> None:
        self.state = state
        self.effects = effects
        self.clock = clock
        self._policy = policy
        self._ticks = 0
        state.use_limits(self.limits)

    @property
    def policy(self) -> Policy:
        """The policy in force."""
        return self._policy

    def reload(self, policy: Policy) -> None:
        """Put a new (already checked) policy in force; waiting work keeps its place."""
        self._policy = policy
        self.state.use_limits(self.limits)

    @property
    def limits(self) -> Limits:
        """The capacity rule's settings for the state's atomic checks."""
        return Limits(self._policy.capacity, self._policy.voice_exclusive)

    def queue_of(self, channel: Channel, named: str | None) -> QueuePolicy:
        """The queue work goes to, or RoutingError if the policy has none for it."""
        queue = self._policy.queue_for(channel, named)
        if queue is None:
            wanted = f"queue {named!r}" if named else f"a queue for {channel.value}"
            raise RoutingError(f"the routing policy has no {wanted}")
        return queue

    def priority_in(self, queue: QueuePolicy, item: WorkItem, base: int = 0) -> int:
        """The item's priority in a queue: the queue's, plus the VIP boost, plus its own."""
        return queue.priority + (queue.vip_priority if item.vip else 0) + base

    # -- work arriving -----------------------------------------------------------------------

    async def route(self, item: WorkItem, *, base_priority: int = 0) -> WorkItem | None:
        """Queue new work and offer it at once if someone can take it.

        Returns the queued item, or None when it was refused (queue full, nowhere to go).
        """
        placed = await self._place([(item, base_priority)])
        if not placed:
            return None
        queued = placed[0]
        # Record it as queued before other processes can see (and offer) it in the state;
        # work taken meanwhile (a stale look at it: the reconciler's) is left alone.
        if not await self.effects.queued(queued):
            return None
        if not await self.state.add_item(queued):
            return await self.state.item(item.interaction_id)
        await self.offer_item(queued.interaction_id)
        return queued

    async def route_many(self, arrivals: Sequence[tuple[WorkItem, int]]) -> list[WorkItem]:
        """Queue a batch of new work (item, base priority) and offer each, recorded together
        (``RouterEffects.queued_and_offered``: one transaction in the store).

        Work no longer new is left alone. The store holds the queued rows (locked, on
        PostgreSQL) from before the work enters the state until the offers are recorded, so
        another process offering it meanwhile waits for them, then finds it queued.
        """
        entered: list[WorkItem] = []

        async def enter(queued: list[WorkItem]) -> list[Reserved]:
            entered.extend([item for item in queued if await self.state.add_item(item)])
            offers: list[Reserved] = []
            for item in entered:
                await self.offer_item(item.interaction_id, into=offers)
            return offers

        await self.effects.queued_and_offered(await self._place(arrivals), enter)
        return entered

    async def _place(self, arrivals: Sequence[tuple[WorkItem, int]]) -> list[WorkItem]:
        """Each item in the queue it goes to (overflowing full ones) with its priority; work
        with nowhere to go is given up."""
        limited = any(q.max_size is not None for q in self._policy.queues.values())
        sizes = dict(await self.state.queue_sizes()) if limited else {}
        placed = []
        for item, base_priority in arrivals:
            queue = self.queue_of(item.channel, item.queue or None)
            seen: set[str] = set()
            while queue.max_size is not None and sizes.get(queue.name, 0) >= queue.max_size:
                seen.add(queue.name)
                if queue.overflow is None or queue.overflow in seen:
                    await self.effects.gave_up(replace(item, queue=queue.name), "max_size")
                    break
                queue = self.queue_of(item.channel, queue.overflow)
            else:
                sizes[queue.name] = sizes.get(queue.name, 0) + 1
                placed.append(
                    replace(
                        item,
                        queue=queue.name,
                        priority=self.priority_in(queue, item, base_priority),
                    )
                )
        return placed

    async def offer_item(self, interaction_id: int, *, into: list[Reserved] | None = None) -> bool:
        """Offer one waiting item to the best agent who can take it now.

        With ``into``, the offer is added there for the caller to record with others
        (``RouterEffects.offered_many``) instead of being recorded at once.
        """
        for _ in range(RESERVE_ATTEMPTS):
            item = await self.state.item(interaction_id)
            if item is None or item.offered_to is not None:
                return False
            queue = self._policy.queues.get(item.queue)
            if queue is None or (
                queue.calendar is not None and not queue.calendar.is_open(self.clock())
            ):
                return False  # the tick handles closed and removed queues
            now = self.clock()
            sticky = (
                queue.sticky_seconds
                and item.last_agent_id is not None
                and waited(item, now) < queue.sticky_seconds
            )
            if sticky:  # it waits for its last agent, busy or not: the whole team is looked at
                agent = choose_agent(item, await self.state.agents(queue.team), self._policy, now)
            else:
                agent = choose_agent(
                    item,
                    await self.state.candidates(queue.team, item.channel, now),
                    self._policy,
                    now,
                    idle_ordered=True,
                )
            if agent is None:
                return False
            again = agent.agent_id in item.excluded
            if await self._reserve(item, agent.agent_id, queue, now, again=again, into=into):
                return True
        return False

    async def offer_agent(self, agent_id: int) -> int:
        """Offer a newly free agent the work they should take next; how many offers were made.

        It reads the heads of the agent's queues once and offers from them until the agent is
        full; the whole line is read only when none of the heads fits the agent.
        """
        made = 0
        heads: list[WorkItem] | None = None
        for _ in range(32):  # bounded: no agent holds more than this at once
            agent = await self.state.agent(agent_id)
            if agent is None or agent.presence is not Presence.AVAILABLE:
                return made
            queues = frozenset(
                q.name for q in self._policy.queues.values() if q.team in agent.teams
            )
            if not queues:
                return made
            now = self.clock()
            if heads is None:
                heads = await self.state.waiting(queues, limit=HEAD)
            work = choose_work(agent, heads, self._policy, now)
            if work is None and len(heads) >= HEAD:
                heads = await self.state.waiting(queues)
                work = choose_work(agent, heads, self._policy, now)
            if work is None:
                return made
            heads = [h for h in heads if h.interaction_id != work.interaction_id]
            queue = self._policy.queues[work.queue]
            if await self._reserve(work, agent_id, queue, now, again=agent_id in work.excluded):
                made += 1
            else:
                heads = None  # someone else changed the line: read it again
        return made

    async def _reserve(
        self,
        item: WorkItem,
        agent_id: int,
        queue: QueuePolicy,
        now: datetime,
        *,
        again: bool = False,
        into: list[Reserved] | None = None,
    ) -> bool:
        expires = offer_expiry(queue, now)
        if not await self.state.reserve(
            item.interaction_id, agent_id, expires, self.limits, now, again=again
        ):
            return False
        offered = replace(item, offered_to=agent_id, offer_expires=expires)
        if into is not None:
            into.append(Reserved(offered, agent_id, expires))
        else:
            await self.effects.offered(offered, agent_id, expires)
        return True

    # -- agents answering --------------------------------------------------------------------

    async def accept(self, agent_id: int, interaction_id: int) -> WorkItem:
        """The agent takes the offered work: it is theirs (and nobody else's) now."""
        item = await self.state.accept(interaction_id, agent_id)
        if item is None:
            raise Conflict(f"interaction {interaction_id} is not being offered to you")
        if not await self.effects.assigned(item, agent_id):
            # The store says it moved on (closed, abandoned, or another agent's after a stale
            # requeue): not the agent's, so the room the offer held is freed for other work.
            await self.state.finish(agent_id, item.channel, self.clock(), None)
            await self.offer_agent(agent_id)
            raise Conflict(f"interaction {interaction_id} is no longer waiting for an agent")
        return item

    async def decline(
        self, agent_id: int, interaction_id: int, *, reason: str = "declined"
    ) -> WorkItem:
        """The agent says no (or let it ring out): the work goes to the next agent."""
        item = await self.state.release_offer(
            interaction_id, agent_id, exclude=True, now=self.clock()
        )
        if item is None:
            raise Conflict(f"interaction {interaction_id} is not being offered to you")
        await self.effects.requeued(item, agent_id, reason)
        await self.offer_item(interaction_id)
        return item

    async def finish(self, agent_id: int, channel: Channel, *, wrap_up: bool = True) -> None:
        """The agent is done with assigned work; after wrap-up they get more."""
        now = self.clock()
        seconds = self._policy.wrap_up_seconds if wrap_up else 0
        until = now + timedelta(seconds=seconds) if seconds else None
        await self.state.finish(agent_id, channel, now, until)
        if until is None:
            await self.offer_agent(agent_id)

    async def set_presence(
        self, agent_id: int, presence: Presence, reason: str | None = None
    ) -> AgentState:
        """Available, away or offline; leaving returns the agent's ringing offers to the queue."""
        agent = await self.state.set_presence(agent_id, presence, reason, self.clock())
        if agent is None:
            raise RoutingError(f"agent {agent_id} is not known to routing")
        if presence is Presence.AVAILABLE:
            await self.offer_agent(agent_id)
            return await self.state.agent(agent_id) or agent
        for item in await self.offers_of(agent_id):
            released = await self.state.release_offer(
                item.interaction_id, agent_id, exclude=False, now=self.clock()
            )
            if released is not None:
                await self.effects.requeued(released, agent_id, "agent_left")
                await self.offer_item(item.interaction_id)
        return await self.state.agent(agent_id) or agent

    async def rang(self, interaction_id: int, agent_id: int) -> datetime | None:
        """The agent's console was told of the offer: it rings the queue's full time from now.

        None when it is not (or no longer) ringing at them.
        """
        item = await self.state.item(interaction_id)
        if item is None or item.offered_to != agent_id:
            return None
        queue = self._policy.queues.get(item.queue)
        until = self.clock() + timedelta(seconds=queue.ring_seconds if queue else 20)
        return until if await self.state.ring(interaction_id, agent_id, until) else None

    async def missed(self, agent_id: int) -> None:
        """An offer rang out at an available agent: they are offered nothing until they are back.

        Their other ringing offers move on at once: whoever let one ring out is not there.
        """
        agent = await self.state.agent(agent_id)
        if agent is None or agent.presence is not Presence.AVAILABLE:
            return  # they went away or offline meanwhile: that says more than "missed"
        changed = await self.set_presence(agent_id, Presence.MISSED, None)
        await self.effects.presence_changed(changed, "an offer rang out")

    async def offers_of(self, agent_id: int) -> list[WorkItem]:
        """The work ringing at an agent now."""
        ringing = await self.state.expired_offers(self.clock() + timedelta(days=3650))
        return [item for item in ringing if item.offered_to == agent_id]

    # -- moving work -------------------------------------------------------------------------

    async def abandon(self, interaction_id: int) -> WorkItem | None:
        """The customer left while waiting (or ringing): take the work out."""
        return await self.state.remove_item(interaction_id)

    async def transfer_to_queue(
        self, agent_id: int, item: WorkItem, queue_name: str
    ) -> WorkItem | None:
        """An agent hands assigned work to a queue; it keeps its original place in line."""
        queue = self.queue_of(item.channel, queue_name)
        now = self.clock()
        moved = replace(
            item,
            queue=queue.name,
            queue_entered_at=now,
            offered_to=None,
            offer_expires=None,
            excluded={**item.excluded, agent_id: now},
            last_agent_id=agent_id,
        )
        await self.state.finish(agent_id, item.channel, now, None)
        queued = await self.route(moved)
        await self.offer_agent(agent_id)  # the freed capacity takes the next work at once
        return queued

    async def move(self, interaction_id: int, queue_name: str, reason: str) -> WorkItem:
        """A supervisor moves waiting work to another queue; it keeps its place in line."""
        current = await self.state.item(interaction_id)
        if current is None:
            raise Conflict(f"interaction {interaction_id} is not waiting in a queue")
        if current.offered_to is not None:
            raise Conflict(f"interaction {interaction_id} is ringing at an agent; try again")
        target = self.queue_of(current.channel, queue_name)
        moved = await self.state.move_item(
            interaction_id, target.name, self.priority_in(target, current, self._base(current)),
            self.clock(),
        )  # fmt: skip
        if moved is None:
            raise Conflict(f"interaction {interaction_id} left the queue meanwhile")
        await self.effects.overflowed(moved, current.queue, reason)
        await self.offer_item(interaction_id)
        return moved

    async def transfer_to_agent(self, agent_id: int, item: WorkItem, to_agent: int) -> None:
        """An agent hands assigned work straight to a colleague, if they have room now."""
        now = self.clock()
        queue = self.queue_of(item.channel, item.queue)
        staged = replace(
            item,
            queue=queue.name,
            queue_entered_at=now,
            offered_to=None,
            offer_expires=None,
            excluded={},
            last_agent_id=agent_id,
        )
        if not await self.state.add_item(staged):
            raise Conflict(f"interaction {item.interaction_id} is already being routed")
        if not await self._reserve(staged, to_agent, queue, now):
            await self.state.remove_item(item.interaction_id)
            raise Conflict(f"agent {to_agent} cannot take this now (not available, or full)")
        await self.state.finish(agent_id, item.channel, now, None)
        await self.offer_agent(agent_id)

    # -- the clock ---------------------------------------------------------------------------

    async def tick(self, *, full: bool = False) -> None:
        """Ring out expired offers, then a pass: widened steps, overflow, hours, offers.

        The pass reads what ``_pass_limit`` says it needs, or everything when full.
        """
        now = self.clock()
        missed: set[int] = set()
        rang_out: list[Requeued] = []
        for item in await self.state.expired_offers(now):
            if item.offered_to is None:
                continue
            # Rang out at the agent, or expired before the agent was even told (the hub fell
            # behind): that is not the agent's doing, so nothing counts against them.
            released = await self.state.release_offer(
                item.interaction_id, item.offered_to, exclude=item.rung, now=now
            )
            if released is not None:
                reason = "timeout" if item.rung else "not_delivered"
                rang_out.append(Requeued(released, item.offered_to, reason))
                if item.rung:
                    missed.add(item.offered_to)
        await self.effects.requeued_many(rang_out)
        if self._policy.missed_on_ring_out:
            for agent_id in sorted(missed):
                await self.missed(agent_id)
        agents = await self.state.agents()
        limit = None if full else await self._pass_limit(agents, now)
        if limit == 0:
            return
        waiting = await self.state.waiting(limit=limit)
        offers: list[Reserved] = []
        for decision in plan(waiting, agents, self._policy, now):
            await self._apply(decision, now, offers)
        await self.effects.offered_many(offers)

    async def _pass_limit(self, agents: list[AgentState], now: datetime) -> int | None:
        """How much of each queue a tick must read: all, its heads, or nothing at all.

        Overflow steps, waiting limits, business hours and removed queues are about every
        item's time, so the whole line is read. Without them a tick only offers work, and
        only free agents take it: the heads of the queues are enough, and nothing at all when
        nobody is free. A full pass every ``FULL_PASS_EVERY`` ticks still looks at everything
        (work deep in line that only some agent's skills fit).
        """
        self._ticks += 1
        policy = self._policy
        timed = any(
            q.calendar is not None
            or q.max_wait_seconds is not None
            or any(step.overflow is not None for step in q.steps)
            for q in policy.queues.values()
        )
        if timed or self._ticks % FULL_PASS_EVERY == 0:
            return None
        if any(name not in policy.queues for name in await self.state.queue_sizes()):
            return None  # work in a removed queue moves to its channel's queue
        free = [
            a
            for a in agents
            if a.presence is Presence.AVAILABLE
            and (a.wrap_up_until is None or a.wrap_up_until <= now)
        ]
        if not free:
            return 0
        return max(HEAD, 4 * len(free))

    async def _apply(
        self,
        decision: Offer | Overflow | Closed | GiveUp,
        now: datetime,
        offers: list[Reserved],
    ) -> None:
        """Carry out one decision of a pass; offers are added to ``offers`` to record at once."""
        if isinstance(decision, Offer):
            item = await self.state.item(decision.interaction_id)
            if item is not None:
                queue = self._policy.queues[item.queue]
                await self._reserve(
                    item, decision.agent_id, queue, now, again=decision.again, into=offers
                )
        elif isinstance(decision, Overflow):
            current = await self.state.item(decision.interaction_id)
            if current is None:
                return
            target = self._policy.queues[decision.to_queue]
            moved = await self.state.move_item(
                decision.interaction_id,
                target.name,
                self.priority_in(target, current, self._base(current)),
                now,
            )
            if moved is not None:
                await self.effects.overflowed(moved, current.queue, decision.reason)
                await self.offer_item(moved.interaction_id)
        elif isinstance(decision, Closed):
            item = await self.state.item(decision.interaction_id)
            if item is not None:
                await self.state.mark_closed_told(decision.interaction_id)
                await self.effects.closed(item, self._policy.queues[decision.queue])
        else:
            removed = await self.state.remove_item(decision.interaction_id)
            if removed is not None:
                await self.effects.gave_up(removed, decision.reason)

    def _base(self, item: WorkItem) -> int:
        """The item's own priority, without its queue's and the VIP boost."""
        queue = self._policy.queues.get(item.queue)
        if queue is None:
            return 0
        return item.priority - queue.priority - (queue.vip_priority if item.vip else 0)
