"""A discrete-event simulation of one queue that drives the real router on a simulated clock.

Arrivals, handling times and patience are drawn from exponential distributions (seeded), so the
results can be set beside Erlang C and Erlang A (``hub.routing.erlang``), computed with the same
definitions. Agents answer offers at once; the router, its engine and the memory routing state
are the production code.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.domain.interaction import Channel
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.policy import parse_policy
from hub.routing.router import NoEffects, Router
from hub.routing.state.memory import MemoryRoutingState

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
SIM_POLICY = """
ring_seconds = 600
wrap_up_seconds = 0
[capacity]
voice = 1
[[queues]]
name = "sim"
team = "sim"
"""


@dataclass
class SimulationResult:
    """What the simulation measured (after the warm-up contacts)."""

    contacts: int
    p_wait: float
    service_level: float
    asa_seconds: float
    abandon_rate: float
    occupancy: float
    simulated_seconds: float
    wall_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "p_wait": round(self.p_wait, 5),
            "service_level": round(self.service_level, 5),
            "asa_seconds": round(self.asa_seconds, 3),
            "abandon_rate": round(self.abandon_rate, 5),
            "occupancy": round(self.occupancy, 5),
            "simulated_hours": round(self.simulated_seconds / 3600, 2),
            "wall_seconds": round(self.wall_seconds, 3),
            "contacts_per_wall_second": round(self.contacts / max(self.wall_seconds, 1e-9), 1),
        }


@dataclass
class _Contact:
    arrived: float
    waited_at_arrival: bool = False
    answered: float | None = None
    abandoned: bool = False


@dataclass
class _Simulation(NoEffects):
    """The simulated world: a clock, a timetable of events, and what happened to each contact.

    It is also the router's effects: agents answer at once, so an offer is an answer.
    """

    now: float = 0.0
    events: list[tuple[float, int, str, int]] = field(default_factory=list)
    sequence: int = 0
    contacts: dict[int, _Contact] = field(default_factory=dict)
    busy_seconds: float = 0.0
    handle: dict[int, float] = field(default_factory=dict)  # interaction -> handling time
    router: Router | None = None

    def clock(self) -> datetime:
        return START + timedelta(seconds=self.now)

    def schedule(self, at: float, kind: str, key: int) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at, self.sequence, kind, key))

    async def offered(self, item: WorkItem, agent_id: int, expires_at: datetime) -> None:
        self.schedule(self.now, "accept", item.interaction_id * 100_000 + agent_id)

    async def assigned(self, item: WorkItem, agent_id: int) -> bool:
        contact = self.contacts[item.interaction_id]
        contact.answered = self.now
        handling = self.handle[item.interaction_id]
        self.busy_seconds += handling
        self.schedule(self.now + handling, "finish", agent_id)
        return True


async def simulate(
    *,
    arrivals_per_hour: float,
    aht_seconds: float,
    agents: int,
    contacts: int,
    sl_seconds: float,
    patience_seconds: float | None = None,
    seed: int = 1,
    warmup_fraction: float = 0.1,
) -> SimulationResult:
    """Simulate ``contacts`` arrivals; statistics leave out the first warmup_fraction of them."""
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311  (a simulation, not a secret)
    sim = _Simulation()
    state = MemoryRoutingState()
    router = Router(state, parse_policy(SIM_POLICY, source="<simulator>"), sim, sim.clock)
    sim.router = router
    for agent_id in range(1, agents + 1):
        await state.put_agent(
            AgentState(
                agent_id=agent_id,
                teams=frozenset({"sim"}),
                presence=Presence.AVAILABLE,
                presence_since=START,
                idle_since=START,
            )
        )
    rate = arrivals_per_hour / 3600.0
    at = 0.0
    for interaction_id in range(1, contacts + 1):
        at += rng.expovariate(rate)
        sim.schedule(at, "arrive", interaction_id)
        sim.handle[interaction_id] = rng.expovariate(1.0 / aht_seconds)
        if patience_seconds is not None:
            sim.schedule(at + rng.expovariate(1.0 / patience_seconds), "patience", interaction_id)
    first_counted = int(contacts * warmup_fraction) + 1
    counted_from = 0.0
    last_event = 0.0
    busy_before = 0.0
    while sim.events:
        sim.now, _, kind, key = heapq.heappop(sim.events)
        last_event = sim.now
        if kind == "arrive":
            if key == first_counted:
                counted_from, busy_before = sim.now, sim.busy_seconds
            sim.contacts[key] = _Contact(arrived=sim.now)
            item = WorkItem(
                interaction_id=key,
                customer_id=key,
                channel=Channel.VOICE,
                queue="sim",
                priority=0,
                enqueued_at=sim.clock(),
                queue_entered_at=sim.clock(),
            )
            await router.route(item)
            # Offers are answered in the same instant; work not offered at once has to wait.
            queued = await state.item(key)
            if queued is not None and queued.offered_to is None:
                sim.contacts[key].waited_at_arrival = True
        elif kind == "accept":
            interaction_id, agent_id = divmod(key, 100_000)
            await router.accept(agent_id, interaction_id)
        elif kind == "finish":
            await router.finish(key, Channel.VOICE, wrap_up=False)
        elif kind == "patience":
            contact = sim.contacts.get(key)
            waiting = contact is not None and contact.answered is None and not contact.abandoned
            if waiting and contact is not None and await router.abandon(key) is not None:
                contact.abandoned = True
    counted = [c for i, c in sim.contacts.items() if i >= first_counted]
    answered = [c for c in counted if c.answered is not None]
    waits = [c.answered - c.arrived for c in answered if c.answered is not None]
    within = sum(1 for w in waits if w <= sl_seconds)
    span = max(last_event - counted_from, 1e-9)
    # Busy time of contacts answered before the window started spills in; the window is long.
    busy = sim.busy_seconds - busy_before
    return SimulationResult(
        contacts=len(counted),
        p_wait=sum(c.waited_at_arrival for c in counted) / len(counted),
        service_level=within / len(counted),
        asa_seconds=sum(waits) / len(waits) if waits else 0.0,
        abandon_rate=sum(c.abandoned for c in counted) / len(counted),
        occupancy=min(1.0, busy / (agents * span)),
        simulated_seconds=last_event,
        wall_seconds=time.perf_counter() - started,
    )


def run_simulation(**kwargs: Any) -> SimulationResult:
    """simulate() for callers without an event loop (the CLI)."""
    return asyncio.run(simulate(**kwargs))
