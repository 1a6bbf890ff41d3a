"""Routing mends what leaked and says when it falls behind, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.config import Settings
from hub.domain.interaction import Channel
from hub.domain.interaction import InteractionState as S
from hub.routing.model import Presence
from hub.routing.service import RoutingService
from tests.agent_console.test_api import push
from tests.conftest import FrozenClock, Team
from tests.routing.test_routing_api import call, timeline

Client = TestClient[Any, Any]


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The ticker waits a minute between passes: the tests run the upkeep themselves.
    return Settings(database_url=database_url, log_level="WARNING", routing_tick_seconds=60)


def routing(hub: Hub) -> RoutingService:
    assert hub.routing is not None
    return hub.routing


async def ringing_at_the_agent(client: Client, team: Team) -> int:
    """The agent available, then a contact: it rings at them at once; its interaction id."""
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    created = await push(client, team, **{"from": "+14155550100"})
    interaction_id: int = created["interaction_id"]
    return interaction_id


async def test_work_routing_lost_track_of_is_found_and_routed_again(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    service = routing(hub)
    created = await push(client, team, **{"from": "+14155550100"})
    lost = created["interaction_id"]
    assert await service.state.remove_item(lost) is not None  # the leak: the store says queued
    clock.advance(10)
    assert (await service.upkeep.reconcile()).rerouted == 0  # too recent: maybe on its way
    clock.advance(30)
    mended = await service.upkeep.reconcile()
    assert mended.rerouted == 1
    assert await service.state.item(lost) is not None
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [lost]


async def test_an_offer_ringing_nowhere_goes_back_in_line_and_loads_are_put_right(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    service = routing(hub)
    agent_id = team.user_ids["agent"]
    ringing = await ringing_at_the_agent(client, team)
    shown = await call(client, team, "agent", "GET", f"/api/v1/interactions/{ringing}")
    assert shown["state"] == "offered"
    # The leak: the offer is gone from routing (its process died), the store still says so.
    await service.state.release_offer(ringing, agent_id, exclude=False, now=clock())
    await service.state.add_load(agent_id, Channel.SMS, 2)  # and a load nobody holds
    clock.advance(40)
    first = await service.upkeep.reconcile()
    assert first.requeued == 1
    assert first.loads == 0  # seen once: maybe an accept in flight
    shown = await call(client, team, "agent", "GET", f"/api/v1/interactions/{ringing}")
    assert shown["state"] == "queued"
    second = await service.upkeep.reconcile()
    assert second.loads == 1
    agent = await service.state.agent(agent_id)
    assert agent is not None
    assert agent.load.get(Channel.SMS, 0) == 0


async def test_work_a_free_agent_could_take_waiting_long_says_routing_is_behind(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    service = routing(hub)
    created = await push(client, team, **{"from": "+14155550100"})
    calm = await service.upkeep.check()
    assert not calm.behind
    assert calm.waiting == 1
    # An agent is free, the work has waited, and nothing offered it (no pass ran): behind.
    await service.refresh_agent(team.user_ids["agent"])
    await service.state.set_presence(team.user_ids["agent"], Presence.AVAILABLE, None, clock())
    clock.advance(60)
    health = await service.upkeep.check()
    assert health.behind
    assert (health.stuck, health.free_agents) == (1, 1)
    assert health.oldest_stuck_seconds >= 60
    shown = await call(client, team, "supervisor", "GET", "/api/v1/routing/health")
    assert shown["behind"] is True
    assert created["interaction_id"]


async def test_a_stale_look_at_work_taken_since_does_not_put_it_back_in_line(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    # The reconciler reads a page of open work, then asks routing about each: an agent may
    # take the work in between. Its stale look (offered, or waiting) must change nothing.
    service = routing(hub)
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    created = await push(client, team, **{"from": "+14155550100"})
    taken, customer = created["interaction_id"], created["customer_id"]
    async with hub.store.reading() as uow:
        offered = await uow.interactions.get(taken)
    assert offered is not None
    assert offered.state is S.OFFERED
    await call(client, team, "agent", "POST", f"/api/v1/interactions/{taken}/accept", status=204)
    clock.advance(40)
    await service.requeue_lost(offered)
    await service.requeue_lost(replace(offered, state=S.QUEUED))
    shown = await call(client, team, "agent", "GET", f"/api/v1/interactions/{taken}")
    assert (shown["state"], shown["assigned_user_id"]) == ("assigned", team.user_ids["agent"])
    assert await service.state.item(taken) is None
    lines = await timeline(client, team, customer)
    assigned = [n for n, line in enumerate(lines) if line.startswith("Assigned to")]
    assert len(assigned) == 1
    assert lines[assigned[0] + 1 :] == []  # not queued, offered or assigned again


async def test_an_accept_the_store_refuses_is_a_conflict_and_frees_the_agents_room(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    service = routing(hub)
    agent_id = team.user_ids["agent"]
    ringing = await ringing_at_the_agent(client, team)
    # Meanwhile the store moved on without routing hearing of it yet (the caller hung up).
    assert await service.transition(ringing, S.ABANDONED, expected=S.OFFERED)
    await call(client, team, "agent", "POST", f"/api/v1/interactions/{ringing}/accept", status=409)
    shown = await call(client, team, "agent", "GET", f"/api/v1/interactions/{ringing}")
    assert shown["state"] == "abandoned"
    assert shown["assigned_user_id"] is None
    agent = await service.state.agent(agent_id)
    assert agent is not None
    assert agent.load.get(Channel.SMS, 0) == 0
    # The room is the agent's again: the next contact rings at once.
    following = await push(client, team, **{"from": "+14155550101"})
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [following["interaction_id"]]


REFUSE_OFFERS = {  # the database itself refuses to store an offer: a fault, not a mock
    "sqlite": [
        "CREATE TRIGGER refuse_offers BEFORE INSERT ON outbox WHEN NEW.type = 'OfferMade'"
        " BEGIN SELECT RAISE(ABORT, 'offers refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_offers() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.type = 'OfferMade' THEN RAISE EXCEPTION 'offers refused'; END IF;"
        " RETURN NEW; END $$",
        "CREATE TRIGGER refuse_offers BEFORE INSERT ON outbox"
        " FOR EACH ROW EXECUTE FUNCTION refuse_offers()",
    ],
}


async def test_work_whose_routing_the_store_refused_leaves_routing_and_is_routed_later(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    """Queued and offered are one transaction: when it fails, the work entered into routing
    (and the agent reserved for it) are taken back; the store still says new, and the
    reconciler routes it once the store takes offers again."""
    from sqlalchemy import text

    service = routing(hub)
    agent_id = team.user_ids["agent"]
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    async with hub.store.engine.begin() as connection:
        for statement in REFUSE_OFFERS[hub.store.dialect]:
            await connection.execute(text(statement))
    created = await push(client, team, **{"from": "+14155550100"})
    work = created["interaction_id"]
    await hub.settle()
    shown = await call(client, team, "agent", "GET", f"/api/v1/interactions/{work}")
    assert shown["state"] == "new"
    assert await service.state.item(work) is None
    agent = await service.state.agent(agent_id)
    assert agent is not None
    assert agent.load.get(Channel.SMS, 0) == 0
    async with hub.store.engine.begin() as connection:
        await connection.execute(text("DROP TRIGGER refuse_offers ON outbox")
                                 if hub.store.dialect == "postgresql"
                                 else text("DROP TRIGGER refuse_offers"))  # fmt: skip
    clock.advance(40)
    assert (await service.upkeep.reconcile()).rerouted == 1
    await hub.settle()
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [work]


async def test_an_offer_left_by_a_process_killed_before_its_commit_is_refused_then_routed(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    """A routing batch enters work in the routing state (Redis, when scaled out) before its
    transaction commits. Killed in between, the process leaves an offer ringing in the state
    for work the store says is new. Accepting it is refused (the store decides), the agent's
    room comes back, and the work is routed again."""
    from sqlalchemy import text

    service = routing(hub)
    agent_id = team.user_ids["agent"]
    created = await push(client, team, **{"from": "+14155550100"})
    work = created["interaction_id"]
    async with hub.store.engine.begin() as connection:  # the killed transaction's rollback
        await connection.execute(
            text("UPDATE interactions SET state = 'new' WHERE id = :id"), {"id": work}
        )
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [work]  # rings in the state only
    await call(client, team, "agent", "POST", f"/api/v1/interactions/{work}/accept", status=409)
    shown = await call(client, team, "agent", "GET", f"/api/v1/interactions/{work}")
    assert (shown["state"], shown["assigned_user_id"]) == ("new", None)
    agent = await service.state.agent(agent_id)
    assert agent is not None
    assert agent.load.get(Channel.SMS, 0) == 0
    clock.advance(40)
    assert (await service.upkeep.reconcile()).rerouted == 1
    await hub.settle()
    await call(client, team, "agent", "POST", f"/api/v1/interactions/{work}/accept", status=204)
    shown = await call(client, team, "agent", "GET", f"/api/v1/interactions/{work}")
    assert (shown["state"], shown["assigned_user_id"]) == ("assigned", agent_id)


async def test_an_offer_made_while_another_process_queues_the_work_is_recorded_late(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    """Scaled out, a process sees work another process's routing batch has put in the state
    before that batch commits its queued move: its offer's compare-and-set finds the row new.
    It waits for that transaction and records the offer then, instead of leaving it to ring
    at an agent who was never told (until it rings out, 20 s later)."""
    from sqlalchemy import text

    if hub.store.dialect != "postgresql":
        pytest.skip("one writer on SQLite: no other transaction can hold the row")
    created = await push(client, team, **{"from": "+14155550100"})
    work = created["interaction_id"]
    move = text("UPDATE interactions SET state = :state WHERE id = :id")
    async with hub.store.engine.begin() as connection:
        await connection.execute(move, {"state": "new", "id": work})
    async with hub.store.engine.connect() as other:  # the other process's routing batch
        transaction = await other.begin()
        await other.execute(move, {"state": "queued", "id": work})
        available = asyncio.ensure_future(
            call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
        )
        await asyncio.sleep(0.5)
        assert not available.done()  # waiting for the other transaction
        await transaction.commit()
    await available
    shown = await call(client, team, "agent", "GET", f"/api/v1/interactions/{work}")
    assert shown["state"] == "offered"
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [work]
