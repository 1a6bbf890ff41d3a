"""Routing's upkeep: mend what leaked between the store and the routing state, say when it lags.

Routing is built to keep the store and its state in step (compare-and-set transitions, atomic
scripts, rebuilds), yet a process killed between two writes, an event delivered very late or
a bug can still leave work the store says waits and routing does not hold, an offer the store
shows that rings nowhere, or an agent's load that no longer matches their work. The
reconciler finds those and mends them, on one hub process per period, so routing recovers by
itself whatever leaked. The health check says when routing falls behind (events not yet
handled, work an available agent could take waiting long), for the supervisor's board, the
API and Prometheus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from hub.domain.interaction import Channel, Interaction, InteractionState
from hub.routing.engine import can_take, choose_agent, waited

if TYPE_CHECKING:
    from hub.routing.service import RoutingService

log = structlog.get_logger(__name__)
S = InteractionState

RECONCILE_SECONDS = 15.0  # how often one process looks for leaks
HEALTH_SECONDS = 5.0  # how often each process checks how far behind routing is
SETTLED_SECONDS = 30.0  # work changed more recently than this may still be on its way
BACKLOG_BEHIND = 500  # events waiting for a handler beyond this: routing is behind
PAGE = 500  # open interactions read at a time by the reconciler
OPEN_WORK = frozenset({S.NEW, S.QUEUED, S.OFFERED, S.ASSIGNED})
STUCK_SECONDS = 30.0  # work an available agent could take, waiting longer: behind


@dataclass(frozen=True, slots=True)
class Mended:
    """What one reconciliation found and put right."""

    rerouted: int = 0  # waiting in the store, unknown to routing: routed again
    requeued: int = 0  # offered in the store, ringing nowhere: back in line
    loads: int = 0  # agents' loads that did not match their work, twice running


@dataclass(frozen=True, slots=True)
class Health:
    """How routing keeps up, as of checked_at."""

    checked_at: datetime
    bus_backlog: int  # events published, not yet handled
    waiting: int  # work in line (queued or ringing)
    free_agents: int  # available, not in wrap-up, with room on some channel
    stuck: int  # work a free agent could take now that has waited over STUCK_SECONDS
    oldest_stuck_seconds: float
    behind: bool
    mended: dict[str, int] = field(default_factory=dict)  # the last reconciliation's finds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def figures(self) -> dict[str, float]:
        """The numbers, for Prometheus."""
        return {
            "bus_backlog": self.bus_backlog,
            "waiting": self.waiting,
            "free_agents": self.free_agents,
            "stuck": self.stuck,
            "behind": float(self.behind),
        }


class Upkeep:
    """The reconciler and the health check of one hub process's routing."""

    def __init__(self, service: RoutingService) -> None:
        self._service = service
        self.on_health: list[Callable[[Health], None]] = []  # metrics, told of each check
        self._next_reconcile: datetime | None = None
        self._next_health: datetime | None = None
        self._suspect: set[tuple[int, Channel, int, int]] = set()
        self.mended = Mended()
        self.health: Health | None = None

    async def due(self) -> None:
        """Run what is due this tick."""
        now = self._service.clock()
        if self._next_reconcile is None or now >= self._next_reconcile:
            self._next_reconcile = now + timedelta(seconds=RECONCILE_SECONDS)
            if await self._service.state.claim_duty("reconcile", RECONCILE_SECONDS - 1):
                self.mended = await self.reconcile()
        if self._next_health is None or now >= self._next_health:
            self._next_health = now + timedelta(seconds=HEALTH_SECONDS)
            self.health = await self.check()
            for listener in self.on_health:
                listener(self.health)

    async def reconcile(self) -> Mended:
        """Find work and loads the routing state lost track of, and put them right."""
        service, state = self._service, self._service.state
        now = service.clock()
        open_work = [i async for i in self._open_work()]
        settled = now - timedelta(seconds=SETTLED_SECONDS)
        rerouted = requeued = 0
        expected: Counter[tuple[int, Channel]] = Counter()
        for interaction in open_work:
            if interaction.state is S.ASSIGNED:
                if interaction.assigned_user_id is not None:
                    expected[(interaction.assigned_user_id, interaction.channel)] += 1
                continue
            if interaction.updated_at > settled:
                continue  # on its way (its event may still be in the bus)
            item = await state.item(interaction.id)
            if item is None:
                await service.requeue_lost(interaction)
                rerouted += 1
            elif interaction.state is S.OFFERED and item.offered_to is None:
                await service.offer_lost(interaction.id)
                requeued += 1
        for item in await state.expired_offers(now + timedelta(days=3650)):
            if item.offered_to is not None:
                expected[(item.offered_to, item.channel)] += 1
        loads = await self._mend_loads(expected)
        mended = Mended(rerouted, requeued, loads)
        if rerouted or requeued or loads:
            log.warning("routing mended what leaked", **asdict(mended))
        return mended

    async def _open_work(self) -> AsyncIterator[Interaction]:
        """Every open interaction, a page at a time: the hub's other work goes on between
        pages (on SQLite a read runs on the event loop's own thread)."""
        after = 0
        while True:
            async with self._service.store.reading() as uow:
                page = await uow.interactions.in_states(OPEN_WORK, after=after, limit=PAGE)
            for interaction in page:
                yield interaction
            if len(page) < PAGE:
                return
            after = page[-1].id

    async def _mend_loads(self, expected: Counter[tuple[int, Channel]]) -> int:
        """Set loads that disagree with the work held; only a disagreement seen twice running
        (an accept in flight between two reads disagrees once)."""
        state = self._service.state
        suspect: set[tuple[int, Channel, int, int]] = set()
        fixed = 0
        for agent in await state.agents():
            channels = set(agent.load) | {c for (a, c) in expected if a == agent.agent_id}
            for channel in channels:
                actual, wanted = agent.load.get(channel, 0), expected[(agent.agent_id, channel)]
                if actual == wanted:
                    continue
                key = (agent.agent_id, channel, actual, wanted)
                if key in self._suspect:
                    await state.set_load(agent.agent_id, channel, wanted)
                    fixed += 1
                else:
                    suspect.add(key)
        self._suspect = suspect
        return fixed

    async def check(self) -> Health:
        """How far behind routing is: the bus backlog, and work a free agent could take."""
        service, state = self._service, self._service.state
        now = service.clock()
        policy = service.policy
        agents = await state.agents()
        free = [a for a in agents if any(can_take(a, c, policy, now) for c in policy.capacity)]
        stuck = [
            item
            for item in await state.waiting(limit=10)
            if waited(item, now) > STUCK_SECONDS
            and choose_agent(item, free, policy, now) is not None
        ]
        backlog = await service.store.outbox.pending()
        oldest = max((waited(i, now) for i in stuck), default=0.0)
        sizes = await state.queue_sizes()
        health = Health(
            checked_at=now,
            bus_backlog=backlog,
            waiting=sum(sizes.values()),
            free_agents=len(free),
            stuck=len(stuck),
            oldest_stuck_seconds=round(oldest, 1),
            behind=backlog > BACKLOG_BEHIND or bool(stuck),
            mended=asdict(self.mended),
        )
        if health.behind:
            log.warning("routing is behind", backlog=backlog, stuck=len(stuck), oldest=oldest)
        return health
