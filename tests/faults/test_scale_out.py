"""Two hub processes on PostgreSQL and one Redis, 60 agents, 2,000 contacts: all routed, once.

The run the issue measured: 60 agents on /agent sockets (capacity 2, accepting every offer at
once, wrapping up at once), 2,000 signed SMS from distinct numbers sent over 26 s to both
processes. Every contact must be assigned, to one agent, never more than an agent can hold,
and routing must recover by itself from whatever the load does. Then the same with one of the
processes killed (kill -9) in the middle: its agents reconnect to the other, no work is stuck.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub.bus import EventBus
from hub.crm_store.database import create_engine
from hub.crm_store.tables import InteractionRow, TimelineEventRow
from hub.crm_store.unit_of_work import Store
from hub.domain.timeline import EventKind
from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.faults.conftest import MakeOrganisation
from tests.faults.harness import (
    Agent,
    AgentCounts,
    HubProcess,
    hub_environment,
    send_sms_load,
)

AGENTS = 60
CONTACTS = 2000
SECONDS = 26
SETTLE = 240  # after the load, by when every contact must have been assigned and wrapped up


async def _tally(url: str) -> dict[str, int]:
    """What the store says: interactions by state, assignments, messages."""
    store = Store(create_engine(url), EventBus())
    try:
        async with store.unit_of_work() as uow:
            session = uow.session
            states = dict(
                (
                    await session.execute(
                        select(InteractionRow.state, func.count()).group_by(InteractionRow.state)
                    )
                ).all()
            )
            assignments = (
                await session.execute(
                    select(TimelineEventRow.interaction_id, func.count())
                    .where(TimelineEventRow.kind == EventKind.ASSIGNMENT.value)
                    .group_by(TimelineEventRow.interaction_id)
                )
            ).all()
            messages = await session.scalar(
                select(func.count())
                .select_from(TimelineEventRow)
                .where(TimelineEventRow.provider == "twilio")
            )
    finally:
        await store.close()
    return {
        **{f"state_{k}": int(v) for k, v in states.items()},
        "interactions": sum(int(v) for v in states.values()),
        "assigned_once": sum(1 for _, n in assignments if n == 1),
        "assigned_twice_or_more": sum(1 for _, n in assignments if n > 1),
        "messages": int(messages or 0),
    }


async def _run(
    make_organisation: MakeOrganisation,
    processes: list[HubProcess],
    tmp_path: Path,
    redis_prefix: str,
    *,
    kill_one: bool,
) -> dict[str, object]:
    org = await make_organisation(POSTGRES_URL, AGENTS)
    env = hub_environment(
        org.database_url,
        tmp_path / "data",
        HUB_REDIS_URL=REDIS_URL,
        HUB_REDIS_PREFIX=redis_prefix,
        HUB_ROUTING_POLICY=str(org.policy),
    )
    for n in range(2):
        processes.append(HubProcess(env, tmp_path / f"hub-{n}.log"))
    await asyncio.gather(*(p.start() for p in processes))
    urls = [p.url for p in processes]
    counts = AgentCounts()
    agents = [Agent(t, urls, n, 2, counts) for n, t in enumerate(org.tokens)]
    await asyncio.gather(*(a.start() for a in agents))
    started = time.monotonic()
    try:
        load = asyncio.create_task(send_sms_load(urls, CONTACTS, SECONDS))
        if kill_one:
            await asyncio.sleep(SECONDS / 2)
            await processes[1].kill()  # mid-run; its agents and senders move to the other
        sent = await load
        sending = time.monotonic() - started
        deadline = time.monotonic() + SETTLE
        tally = await _tally(org.database_url)
        while time.monotonic() < deadline and tally.get("state_closed", 0) < CONTACTS:
            await asyncio.sleep(2)
            tally = await _tally(org.database_url)
        settled = time.monotonic() - started
    finally:
        await asyncio.gather(*(a.stop() for a in agents))
    figures: dict[str, object] = {
        "sent": sent.sent,
        "attempts": sent.attempts,
        "retried": sent.retried,
        "never_answered": len(sent.failed),
        "sending_seconds": round(sending, 1),
        "all_closed_after_seconds": round(settled, 1),
        "offers": counts.offers,
        "accepted": counts.accepted,
        "accept_conflicts": counts.conflicts,
        "withdrawn": counts.withdrawn,
        "missed": counts.missed,
        "reconnects": counts.reconnects,
        "agents_over_capacity": counts.over_capacity,
        "max_held": max(a.max_held for a in agents),
        **tally,
    }
    print("scale-out run:", figures)
    if tally.get("state_closed", 0) < CONTACTS:
        for process in processes:
            print(f"--- {process.log.name}\n{process.tail()}")
    return figures


async def _check(figures: dict[str, object]) -> None:
    assert figures["never_answered"] == 0
    assert figures["messages"] == CONTACTS  # none lost, none stored twice
    assert figures["interactions"] == CONTACTS
    assert figures["state_closed"] == CONTACTS  # every contact assigned and wrapped up
    assert figures["assigned_once"] == CONTACTS
    assert figures["assigned_twice_or_more"] == 0
    assert figures["agents_over_capacity"] == 0


@pytest.mark.postgres
async def test_two_processes_route_every_contact_once_under_load(
    make_organisation: MakeOrganisation,
    processes: list[HubProcess],
    tmp_path: Path,
    redis_prefix: str,
) -> None:
    figures = await _run(make_organisation, processes, tmp_path, redis_prefix, kill_one=False)
    await _check(figures)


@pytest.mark.postgres
async def test_killing_one_process_mid_run_leaves_no_work_stuck(
    make_organisation: MakeOrganisation,
    processes: list[HubProcess],
    tmp_path: Path,
    redis_prefix: str,
) -> None:
    figures = await _run(make_organisation, processes, tmp_path, redis_prefix, kill_one=True)
    await _check(figures)
