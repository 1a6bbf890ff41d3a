"""`hub bench routing`: how fast the ACD decides, at the scale of a large contact centre.

Setup: 5,000 agents in 100 teams of 50, 500 queues (5 per team), each queue with widening
steps over a skill of its own (proficiency >= 4, then >= 2 after 30 s, then anyone). Agents
hold random skills 1-5 on their team's queues, capacity 3 chats, and are available.

A *decision* is routing one new contact: the router picks the best eligible agent with room
(the pure engine over the team's snapshots) and reserves the offer atomically in the state.
Offers are accepted and the work finished outside the timed part, so agents stay free and
every decision does the full work. Also timed: one full tick (every waiting item, every
agent) with a backlog, and the simulator's speed.
"""

from __future__ import annotations

import random
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.bench.figures import percentile
from hub.domain.interaction import Channel
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.policy import Policy, parse_policy
from hub.routing.router import NoEffects, Router
from hub.routing.simulator import simulate
from hub.routing.state.base import RoutingState
from hub.routing.state.memory import MemoryRoutingState
from hub.routing.state.redis import RedisRoutingState

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def bench_policy(teams: int, queues_per_team: int) -> Policy:
    """A policy of teams * queues_per_team queues with three widening steps each."""
    lines = ["ring_seconds = 30", "wrap_up_seconds = 0", "[capacity]", "webchat = 3"]
    for team in range(teams):
        for q in range(queues_per_team):
            name = f"q{team}_{q}"
            lines += [
                "[[queues]]", f'name = "{name}"', f'team = "t{team}"',
                "[[queues.steps]]", "after_seconds = 0",
                f"target = \"agent.skills['{name}'] >= 4\"",
                "[[queues.steps]]", "after_seconds = 30",
                f"target = \"agent.skills['{name}'] >= 2\"",
                "[[queues.steps]]", "after_seconds = 90",
            ]  # fmt: skip
    return parse_policy("\n".join(lines), source="<bench>")


async def _seed_agents(
    state: RoutingState, agents: int, teams: int, queues_per_team: int, rng: random.Random
) -> None:
    per_team = agents // teams
    for n in range(agents):
        team = min(n // per_team, teams - 1)
        skills = {f"q{team}_{q}": rng.randint(1, 5) for q in range(queues_per_team)}
        await state.put_agent(
            AgentState(
                agent_id=n + 1,
                teams=frozenset({f"t{team}"}),
                presence=Presence.AVAILABLE,
                presence_since=START,
                idle_since=START - timedelta(seconds=rng.randint(0, 3600)),
                skills=skills,
            )
        )


async def _decisions(
    state: RoutingState,
    policy: Policy,
    *,
    decisions: int,
    teams: int,
    queues_per_team: int,
    rng: random.Random,
) -> dict[str, Any]:
    clock_now = [START]
    router = Router(state, policy, NoEffects(), lambda: clock_now[0])
    latencies: list[float] = []
    offered = 0
    for n in range(1, decisions + 1):
        clock_now[0] = START + timedelta(milliseconds=10 * n)
        queue = f"q{rng.randrange(teams)}_{rng.randrange(queues_per_team)}"
        item = WorkItem(
            interaction_id=n,
            customer_id=n,
            channel=Channel.WEBCHAT,
            queue=queue,
            priority=0,
            enqueued_at=clock_now[0],
            queue_entered_at=clock_now[0],
        )
        started = time.perf_counter()
        await router.route(item)
        latencies.append(time.perf_counter() - started)
        queued = await state.item(n)
        if queued is not None and queued.offered_to is not None:
            offered += 1
            agent = queued.offered_to
            await state.accept(n, agent)
            await state.finish(agent, Channel.WEBCHAT, clock_now[0], None)
        elif queued is not None:
            await state.remove_item(n)
    total = sum(latencies)
    return {
        "decisions": decisions,
        "offered_at_once": offered,
        "decisions_per_second": round(decisions / total, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
    }


async def _tick_with_backlog(
    state: RoutingState,
    policy: Policy,
    *,
    backlog: int,
    teams: int,
    queues_per_team: int,
    rng: random.Random,
) -> dict[str, Any]:
    """A full pass with every agent busy and a backlog waiting (the worst tick)."""
    for agent in await state.agents():
        await state.set_presence(agent.agent_id, Presence.AWAY, "bench", START)
    for n in range(backlog):
        at = START + timedelta(milliseconds=n)
        await state.add_item(
            WorkItem(
                interaction_id=1_000_000 + n,
                customer_id=n,
                channel=Channel.WEBCHAT,
                queue=f"q{rng.randrange(teams)}_{rng.randrange(queues_per_team)}",
                priority=rng.choice((0, 0, 0, 5)),
                enqueued_at=at,
                queue_entered_at=at,
            )
        )
    router = Router(state, policy, NoEffects(), lambda: START + timedelta(minutes=5))
    started = time.perf_counter()
    await router.tick(full=True)
    full = time.perf_counter() - started
    started = time.perf_counter()
    await router.tick()  # the other nine ticks in ten: nobody free, nothing to read
    light = time.perf_counter() - started
    return {
        "backlog": backlog,
        "tick_ms": round(full * 1000, 1),
        "tick_nobody_free_ms": round(light * 1000, 2),
    }


async def run_routing_bench(
    *,
    agents: int,
    queues: int,
    decisions: int,
    backlog: int,
    redis_url: str | None,
    progress: Callable[[str], None],
    sim_contacts: int = 100_000,
) -> dict[str, Any]:
    """Run the benchmark on the memory state, and on Redis when a URL is given."""
    teams = max(1, agents // 50)
    queues_per_team = max(1, queues // teams)
    policy = bench_policy(teams, queues_per_team)
    result: dict[str, Any] = {
        "agents": agents,
        "teams": teams,
        "queues": teams * queues_per_team,
    }
    stores: list[tuple[str, Callable[[], RoutingState]]] = [("memory", MemoryRoutingState)]
    if redis_url:
        prefix = f"hub-bench:{secrets.token_hex(4)}:"
        stores.append(("redis", lambda: RedisRoutingState(redis_url, prefix=prefix)))
    for name, make in stores:
        state = make()
        await state.start()
        try:
            rng = random.Random(7)
            progress(f"{name}: seeding {agents} agents")
            await _seed_agents(state, agents, teams, queues_per_team, rng)
            progress(f"{name}: timing {decisions} decisions")
            figures = await _decisions(
                state,
                policy,
                decisions=decisions,
                teams=teams,
                queues_per_team=queues_per_team,
                rng=rng,
            )
            progress(f"{name}: timing one tick over a backlog of {backlog}")
            figures.update(
                await _tick_with_backlog(
                    state,
                    policy,
                    backlog=backlog,
                    teams=teams,
                    queues_per_team=queues_per_team,
                    rng=rng,
                )
            )
            result[name] = figures
        finally:
            if isinstance(state, RedisRoutingState):
                await state.clear()
            await state.close()
    if "redis" in result:
        result["redis_over_memory_decisions"] = round(
            result["redis"]["decisions_per_second"] / result["memory"]["decisions_per_second"], 3
        )
    progress("timing the simulator")
    simulated = await simulate(
        arrivals_per_hour=600,
        aht_seconds=240,
        agents=45,
        contacts=sim_contacts,
        sl_seconds=20,
        patience_seconds=120,
        seed=1,
    )
    result["simulator"] = {
        "agents": 45,
        "contacts": sim_contacts,
        "wall_seconds": round(simulated.wall_seconds, 2),
        "simulated_contacts_per_second": round(sim_contacts / simulated.wall_seconds, 1),
    }
    return result
