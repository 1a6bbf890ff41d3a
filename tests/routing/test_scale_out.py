"""Several hub processes on one PostgreSQL and one Redis share the queues safely."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.config import Settings
from hub.crm_store.tables import InteractionRow, TimelineEventRow
from tests.agent_console.test_realtime import Listener
from tests.agent_console.test_work_and_sessions import _ended
from tests.conftest import REDIS_URL, FrozenClock, Team, empty_tables, eventually, make_team

Client = TestClient[Any, Any]


@pytest.fixture
async def two_hubs(
    migrated_databases: dict[str, str],
) -> AsyncIterator[tuple[list[Hub], list[Client]]]:
    url = migrated_databases["postgresql"]
    await empty_tables(url)
    prefix = f"hub-test:{secrets.token_hex(4)}:"
    settings = Settings(
        database_url=url, redis_url=REDIS_URL, redis_prefix=prefix, log_level="WARNING"
    )
    clock = FrozenClock()
    hubs = [await build_hub(settings, run_migrations=False, clock=clock) for _ in range(2)]
    clients = [TestClient(TestServer(build_app(h))) for h in hubs]
    for client in clients:
        await client.start_server()
    yield hubs, clients
    for client in clients:
        await client.close()
    redis = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def states(hub: Hub) -> dict[str, int]:
    async with hub.store.unit_of_work() as uow:
        rows = await uow.session.execute(
            select(InteractionRow.state, func.count()).group_by(InteractionRow.state)
        )
    return {state: count for state, count in rows}


async def offers(client: Client, team: Team, role: str) -> list[int]:
    response = await client.get("/api/v1/me/offers", headers=team.headers(role))
    return [o["interaction_id"] for o in (await response.json())["offers"]]


async def test_two_processes_never_offer_or_assign_anything_twice(
    two_hubs: tuple[list[Hub], list[Client]],
) -> None:
    hubs, clients = two_hubs
    team = await make_team(hubs[0], "support")
    # The agent works through the first process, the supervisor through the second.
    for client, role in zip(clients, ("agent", "supervisor"), strict=True):
        response = await client.post(
            "/api/v1/me/state", json={"state": "available"}, headers=team.headers(role)
        )
        assert response.status == 200, await response.text()

    async def push(n: int) -> int:
        response = await clients[n % 2].post(
            "/api/v1/inbound",
            json={"from": f"+1415555{n:04d}", "body": f"contact {n}"},
            headers=team.headers("admin"),
        )
        assert response.status == 201
        return int((await response.json())["interaction_id"])

    interactions = await asyncio.gather(*(push(n) for n in range(14)))
    # Two agents with room for 5 API contacts each: 10 ring, 4 wait.
    for _ in range(100):
        rung = await offers(clients[0], team, "agent") + await offers(
            clients[1], team, "supervisor"
        )
        if len(rung) == 10:
            break
        await asyncio.sleep(0.1)
    assert len(rung) == 10
    assert len(set(rung)) == 10
    assert set(rung) <= set(interactions)

    # Everyone accepts everything offered, through either process.
    accepts = []
    for client, role in zip(clients, ("agent", "supervisor"), strict=True):
        for interaction in await offers(client, team, role):
            for via in clients:  # a double click through both processes
                accepts.append(
                    via.post(
                        f"/api/v1/interactions/{interaction}/accept", headers=team.headers(role)
                    )
                )
    statuses = [r.status for r in await asyncio.gather(*accepts)]
    assert statuses.count(204) == 10
    assert statuses.count(409) == 10

    # The bus delivers events asynchronously: wait until every contact has been routed.
    for _ in range(100):
        counts = await states(hubs[0])
        if counts.get("new", 0) == 0 and sum(counts.values()) == 14:
            break
        await asyncio.sleep(0.1)
    assert counts == {"assigned": 10, "queued": 4}
    async with hubs[0].store.unit_of_work() as uow:
        notes = await uow.session.scalar(
            select(func.count())
            .select_from(TimelineEventRow)
            .where(TimelineEventRow.kind == "assignment")
        )
    assert notes == 10
    state = hubs[1].routing.state  # type: ignore[union-attr]
    for user in ("agent", "supervisor"):
        agent = await state.agent(team.user_ids[user])
        assert agent is not None
        assert sum(agent.load.values()) == 5


async def test_a_logout_through_one_process_ends_the_sockets_on_the_other_within_2_s(
    two_hubs: tuple[list[Hub], list[Client]],
) -> None:
    hubs, clients = two_hubs
    team = await make_team(hubs[0], "support")
    far = Listener("/agent")
    await far.connect(str(clients[1].make_url("")), team.tokens["agent"])
    await far.next("hello")
    try:
        out = await clients[0].post("/api/v1/auth/logout", headers=team.headers("agent"))
        assert out.status == 204
        assert await _ended(far) == "logged out"  # the other process saw it by itself
    finally:
        await far.client.disconnect()


async def test_a_revoked_token_is_refused_at_once_by_every_process(
    two_hubs: tuple[list[Hub], list[Client]],
) -> None:
    """Each process keeps the grants it read for a few seconds; a revocation through one
    process reaches the other's at once (Redis pub/sub), not when the grant would expire."""
    hubs, clients = two_hubs
    team = await make_team(hubs[0], "support")
    for role in ("agent", "supervisor"):
        for client in clients:  # both processes now hold the grants
            assert (await client.get("/api/v1/me", headers=team.headers(role))).status == 200
    out = await clients[0].post("/api/v1/auth/logout", headers=team.headers("agent"))
    assert out.status == 204
    deactivated = await clients[0].post(
        "/api/v1/users/supervisor/active", json={"active": False}, headers=team.headers("admin")
    )
    assert deactivated.status == 200, await deactivated.text()

    async def refused(role: str) -> bool:
        answer = await clients[1].get("/api/v1/me", headers=team.headers(role))
        return answer.status == 401

    for role in ("agent", "supervisor"):
        await eventually(lambda r=role: refused(r), seconds=1, what=f"the {role}'s token refused")
    assert (await clients[1].get("/api/v1/me", headers=team.headers("admin"))).status == 200
