"""The ACD inside the running hub, over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.config import Settings
from hub.domain.events import (
    InteractionQueued,
    InteractionReceived,
    OfferMade,
    TimelineEventAdded,
)
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel
from tests.agent_console.test_api import push
from tests.conftest import FrozenClock, Team, settled, statements_run

Client = TestClient[Any, Any]


async def call(
    client: Client, team: Team, role: str, method: str, path: str, status: int = 200, **json: Any
) -> Any:
    response = await client.request(method, path, json=json or None, headers=team.headers(role))
    body = await response.json() if response.content_type == "application/json" else None
    assert response.status == status, (method, path, response.status, body)
    await settled(client)
    return body


async def timeline(client: Client, team: Team, customer: int) -> list[str]:
    page = await call(client, team, "admin", "GET", f"/api/v1/customers/{customer}/timeline")
    return [e["body"] for e in reversed(page["events"]) if e["kind"] != "message"]


async def test_inbound_work_is_offered_accepted_wrapped_up_and_closed(
    client: Client, team: Team, clock: FrozenClock
) -> None:
    created = await push(client, team, **{"from": "+14155550100", "body": "help"})
    interaction, customer = created["interaction_id"], created["customer_id"]
    path = f"/api/v1/interactions/{interaction}"
    assert (await call(client, team, "agent", "GET", path))["state"] == "queued"

    me = await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    assert me["activity"] == "busy"  # the waiting work rang at once
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [interaction]
    assert (await call(client, team, "agent", "GET", path))["state"] == "offered"

    await call(client, team, "supervisor", "POST", f"{path}/accept", status=409)
    await call(client, team, "agent", "POST", f"{path}/accept", status=204)
    taken = await call(client, team, "agent", "GET", path)
    assert taken["state"] == "assigned"
    assert taken["assigned_user_id"] == team.user_ids["agent"]
    assert taken["answered_at"] is not None
    await call(client, team, "agent", "POST", f"{path}/accept", status=409)

    clock.advance(120)
    await call(client, team, "agent", "POST", f"{path}/end", status=204)
    assert (await call(client, team, "agent", "GET", path))["state"] == "wrap_up"
    agents = (await call(client, team, "supervisor", "GET", "/api/v1/agents"))["agents"]
    mine = next(a for a in agents if a["id"] == team.user_ids["agent"])
    assert mine["activity"] == "wrap_up"
    assert mine["load"] == {}
    closed = await call(client, team, "agent", "POST", f"{path}/close", disposition="resolved")
    assert closed["state"] == "closed"
    assert await timeline(client, team, customer) == [
        "Queued in support",
        "Assigned to agent",
        "Wrap-up",
        "Closed (resolved)",
    ]

    stats = await call(client, team, "agent", "GET", "/api/v1/queues")
    support = next(q for q in stats["queues"] if q["name"] == "support")
    assert support["windows"]["15m"]["offered"] == 1
    assert support["windows"]["15m"]["answered"] == 1
    assert support["windows"]["15m"]["service_level"] == 1.0
    assert support["windows"]["15m"]["aht_seconds"] == 120.0
    detail = await call(
        client,
        team,
        "supervisor",
        "GET",
        f"/api/v1/queues/{support['id']}/stats?windows=15,60&interval=15&count=4",
    )
    assert set(detail["windows"]) == {"15m", "60m"}
    assert len(detail["intervals"]) == 4
    assert sum(i["answered"] for i in detail["intervals"]) == 1
    response = await client.get(
        f"/api/v1/queues/{support['id']}/stats?interval=30&format=csv",
        headers=team.headers("supervisor"),
    )
    assert response.status == 200
    assert (await response.text()).startswith("start,end,offered,answered")
    await call(client, team, "marketer", "GET", "/api/v1/queues", status=403)
    await call(client, team, "agent", "GET", "/api/v1/agents", status=403)


async def test_declined_work_goes_to_the_next_agent(client: Client, team: Team) -> None:
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    await call(client, team, "supervisor", "POST", "/api/v1/me/state", state="available")
    created = await push(client, team, **{"from": "+14155550100"})
    path = f"/api/v1/interactions/{created['interaction_id']}"
    first = None
    for role in ("agent", "supervisor"):
        if (await call(client, team, role, "GET", "/api/v1/me/offers"))["offers"]:
            first = role
    assert first is not None
    second = "supervisor" if first == "agent" else "agent"
    await call(client, team, first, "POST", f"{path}/decline", status=204)
    assert (await call(client, team, first, "GET", "/api/v1/me/offers"))["offers"] == []
    offers = (await call(client, team, second, "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [created["interaction_id"]]


async def test_closing_waiting_work_takes_it_out_of_line(client: Client, team: Team) -> None:
    created = await push(client, team, **{"from": "+14155550100"})
    path = f"/api/v1/interactions/{created['interaction_id']}"
    await call(client, team, "agent", "POST", f"{path}/close", disposition="customer left")
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    assert (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"] == []


async def test_profiles_transfer_and_bad_requests(hub: Hub, client: Client, team: Team) -> None:
    agent_id = team.user_ids["agent"]
    profile = await call(
        client,
        team,
        "supervisor",
        "PUT",
        f"/api/v1/agents/{agent_id}/profile",
        skills={"billing": 4},
        languages=["en", "de"],
        capacity={"api": 1},
    )
    assert profile["skills"] == {"billing": 4}
    assert profile["capacity"] == {"api": 1}
    await call(
        client,
        team,
        "supervisor",
        "PUT",
        f"/api/v1/agents/{agent_id}/profile",
        status=422,
        skills={"billing": 9},
    )
    await call(client, team, "agent", "POST", "/api/v1/me/state", status=422, state="dancing")
    await call(client, team, "marketer", "POST", "/api/v1/me/state", status=403, state="away")

    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    first = await push(client, team, **{"from": "+14155550100"})
    second = await push(client, team, **{"from": "+14155550101"})
    path = f"/api/v1/interactions/{first['interaction_id']}"
    await call(client, team, "agent", "POST", f"{path}/accept", status=204)
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert offers == []  # capacity for api is 1
    await call(client, team, "agent", "POST", f"{path}/transfer", status=422, queue=None)
    # the agent's supervisor may move the agent's work on too (the rule)
    await call(client, team, "supervisor", "POST", f"{path}/transfer", status=204, queue="support")
    # The freed capacity went to the work waiting longest: the second contact.
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [second["interaction_id"]]
    moved = await call(client, team, "agent", "GET", path)
    assert moved["state"] == "queued"
    assert moved["assigned_user_id"] is None


async def test_a_restarted_hub_rebuilds_the_lines_from_the_store(
    settings: Settings, hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    ringing = await push(client, team, **{"from": "+14155550100"})
    clock.advance(5)
    waiting = await push(client, team, **{"from": "+14155550101"})  # capacity 5: rings too
    path = f"/api/v1/interactions/{waiting['interaction_id']}"
    await call(client, team, "agent", "POST", f"{path}/accept", status=204)

    restarted = await build_hub(settings, run_migrations=False, clock=clock)
    async with TestClient(TestServer(build_app(restarted))) as again:
        item = await restarted.routing.state.item(ringing["interaction_id"])  # type: ignore[union-attr]
        assert item is not None  # the offer died with the old process; back in line
        shown = await call(
            again, team, "agent", "GET", f"/api/v1/interactions/{ringing['interaction_id']}"
        )
        assert item.enqueued_at.isoformat() == shown["queued_at"]  # at its place in line
        agent = await restarted.routing.state.agent(team.user_ids["agent"])  # type: ignore[union-attr]
        assert agent is not None
        assert agent.presence.value == "available"  # kept by the store: consoles reconnect
        # the accepted work is still theirs, and the lost offer rings at them again
        assert agent.load == {"api": 2}
        offers = (await call(again, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
        assert [o["interaction_id"] for o in offers] == [ringing["interaction_id"]]
        # an agent whose console never comes back is signed out after the grace period
        clock.advance(restarted.settings.agent_disconnect_grace_seconds + 1)
        await restarted.routing._sign_out_lost_agents()  # type: ignore[union-attr]
        gone = await restarted.routing.state.agent(team.user_ids["agent"])  # type: ignore[union-attr]
        assert gone is not None
        assert gone.presence.value == "offline"


async def test_policy_reload_refuses_a_bad_file_and_keeps_the_old_one(
    hub: Hub, client: Client, team: Team, tmp_path: Path
) -> None:
    policy = tmp_path / "routing.toml"
    policy.write_text('[[queues]]\nname = "support"\nteam = "support"\n')
    hub.settings.routing_policy = str(policy)
    reloaded = await call(client, team, "admin", "POST", "/api/v1/routing/reload")
    assert reloaded["queues"] == ["support"]
    policy.write_text('[[queues]]\nname = "support"\nteam = "support"\noverflow = "nowhere"\n')
    error = await call(client, team, "admin", "POST", "/api/v1/routing/reload", status=422)
    assert "line 4" in error["error"]["message"]
    assert "old one stays" in error["error"]["message"]
    assert hub.routing is not None
    assert hub.routing.router is not None
    assert hub.routing.router.policy.queues["support"].overflow is None
    await call(client, team, "supervisor", "POST", "/api/v1/routing/reload", status=403)


async def test_supervisors_see_the_agents_of_their_own_teams(
    hub: Hub, client: Client, team: Team
) -> None:
    from tests.conftest import make_team

    other = await make_team(hub, "sales", suffix="-sales")
    for who, role in ((team, "agent"), (other, "agent")):
        await call(client, who, role, "POST", "/api/v1/me/state", state="away", reason="lunch")
    mine = await call(client, team, "supervisor", "GET", "/api/v1/agents")
    assert {a["id"] for a in mine["agents"]} == {
        team.user_ids["agent"],
        team.user_ids["supervisor"],
    }
    everyone = await call(client, team, "admin", "GET", "/api/v1/agents")
    assert other.user_ids["agent"] in {a["id"] for a in everyone["agents"]}
    away = next(a for a in mine["agents"] if a["id"] == team.user_ids["agent"])
    assert (away["presence"], away["reason"], away["activity"]) == ("away", "lunch", "away")


async def test_a_caller_who_hangs_up_while_waiting_is_abandoned(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    created = await push(client, team, **{"from": "+14155550100"})
    interaction = created["interaction_id"]
    clock.advance(45)
    assert hub.routing is not None
    await hub.routing.abandon(interaction, "caller hung up")
    found = await call(client, team, "agent", "GET", f"/api/v1/interactions/{interaction}")
    assert found["state"] == "abandoned"
    assert found["abandoned_at"] is not None
    assert await hub.routing.state.item(interaction) is None
    assert (await timeline(client, team, created["customer_id"]))[-1] == "Abandoned: caller hung up"
    board = await call(client, team, "supervisor", "GET", "/api/v1/queues")
    support = next(q for q in board["queues"] if q["name"] == "support")
    assert support["windows"]["15m"]["abandoned"] == 1
    assert support["windows"]["15m"]["service_level"] == 0.0
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    assert (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"] == []


async def test_without_a_policy_file_every_stored_queue_routes_whatever_its_name(
    settings: Settings, hub: Hub, client: Client, clock: FrozenClock
) -> None:
    async with hub.store.unit_of_work() as uow:
        team = await uow.accounts.ensure_team('Bob\'s "A" team', clock())
        await uow.accounts.ensure_queue("Bob's queue", team.id, clock())
        await uow.commit()
    restarted = await build_hub(settings, run_migrations=False, clock=clock)
    async with TestClient(TestServer(build_app(restarted))):
        assert restarted.routing is not None
        assert restarted.routing.router is not None
        queue = restarted.routing.router.policy.queues["Bob's queue"]
        assert queue.team == 'Bob\'s "A" team'


async def test_a_supervisor_sets_an_agents_state(client: Client, team: Team) -> None:
    agent_id = team.user_ids["agent"]
    response = await client.post(
        f"/api/v1/agents/{agent_id}/state",
        json={"state": "away", "reason": "coaching"},
        headers=team.headers("supervisor"),
    )
    assert response.status == 200
    assert (await response.json())["presence"] == "away"
    me = await (await client.get("/api/v1/me/offers", headers=team.headers("agent"))).json()
    assert me == {"offers": []}
    response = await client.post(
        f"/api/v1/agents/{agent_id}/state",
        json={"state": "offline"},
        headers=team.headers("agent"),
    )
    assert response.status == 403
    response = await client.post(
        "/api/v1/agents/99999/state", json={"state": "offline"}, headers=team.headers("admin")
    )
    assert response.status == 404
    audit = await (await client.get("/api/v1/audit", headers=team.headers("admin"))).json()
    assert "agent.state" in [entry["action"] for entry in audit["entries"]]


async def test_a_supervisor_moves_waiting_work_to_another_queue(
    hub: Hub, client: Client, team: Team, tmp_path: Path
) -> None:
    policy = tmp_path / "routing.toml"
    policy.write_text(
        '[[queues]]\nname = "support"\nteam = "support"\n'
        '[[queues]]\nname = "billing"\nteam = "support"\n'
    )
    hub.settings.routing_policy = str(policy)
    await call(client, team, "admin", "POST", "/api/v1/routing/reload")
    waiting = await push(
        client, team, **{"from": "+14155550190", "body": "refund?", "queue": "support"}
    )
    path = f"/api/v1/interactions/{waiting['interaction_id']}/move"
    moved = await call(client, team, "supervisor", "POST", path, queue="billing")
    assert moved["queue"] == "billing"
    lines = await timeline(client, team, waiting["customer_id"])
    assert "Moved from support to billing (moved by supervisor)" in lines
    await call(client, team, "supervisor", "POST", path, status=422, queue="nowhere")
    await call(client, team, "agent", "POST", path, status=403, queue="support")


async def test_processes_starting_together_both_take_the_policy_file(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    """Both import the same file at once: the loser of the race reads the winner's version."""
    policy = tmp_path / "routing.toml"
    policy.write_text('[[queues]]\nname = "support"\nteam = "support"\n')
    settings.routing_policy = str(policy)
    hubs = [await build_hub(settings, run_migrations=False, clock=clock) for _ in range(3)]
    try:
        await asyncio.gather(*(h.start() for h in hubs))
        versions = {h.routing.version.version for h in hubs if h.routing is not None}
        assert len(versions) == 1  # one import, read by all
    finally:
        for h in hubs:
            await h.stop()


async def test_new_work_announced_by_an_older_hub_is_read_and_routed(
    hub: Hub, client: Client, team: Team
) -> None:
    """An outbox row written before events carried ``opened_at``: routing reads the work."""
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    now = hub.clock()
    async with hub.store.unit_of_work() as uow:
        customer = await uow.customers.create(display_name="Older", team_id=None, now=now)
        interaction = await uow.interactions.create(
            customer_id=customer.id,
            channel=Channel.SMS,
            now=now,
            queue_id=hub.routing.queue_id(hub.routing.policy.default_queue),
        )
        uow.record(
            InteractionReceived(
                interaction.id, customer.id, 0, Channel.SMS, interaction.queue_id, opened=True
            )
        )
        await uow.commit()
    await settled(client)
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [interaction.id]


async def test_events_of_work_nobody_holds_say_so_and_held_work_s_do_not(
    hub: Hub, client: Client, team: Team
) -> None:
    """New work's message and its "Queued in" note are ``unheld`` (no console is told of
    them); a message on work an agent holds is not."""
    added: list[TimelineEventAdded] = []

    async def keep(event: TimelineEventAdded) -> None:
        added.append(event)

    hub.store.bus.subscribe(TimelineEventAdded, keep)
    created = await push(client, team, **{"from": "+14155550100", "body": "help"})
    assert [e.unheld for e in added if e.interaction_id == created["interaction_id"]] == [
        True,
        True,
    ]
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    path = f"/api/v1/interactions/{created['interaction_id']}"
    await call(client, team, "agent", "POST", f"{path}/accept", status=204)
    added.clear()
    await push(client, team, **{"from": "+14155550100", "body": "still there?"})
    assert [e.unheld for e in added if e.interaction_id == created["interaction_id"]] == [False]


async def test_offers_that_ring_out_together_go_back_in_line_in_one_statement(
    hub: Hub, client: Client, team: Team, clock: FrozenClock
) -> None:
    """A tick's ring-outs are recorded together: one compare-and-set back to queued, each
    with its withdrawal, however many there are."""
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    pushed = [await push(client, team, **{"from": f"+1415555010{n}"}) for n in range(3)]
    ids = [p["interaction_id"] for p in pushed]
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert sorted(o["interaction_id"] for o in offers) == sorted(ids)  # capacity 5: all ring
    with statements_run(hub.store) as statements:
        clock.advance(hub.routing.policy.queues[hub.routing.policy.default_queue].ring_seconds + 1)
        await hub.routing.router.tick()  # type: ignore[union-attr]
    await settled(client)
    assert len([s for s in statements if s.startswith("UPDATE interactions SET state")]) == 1
    for interaction_id in ids:
        path = f"/api/v1/interactions/{interaction_id}"
        assert (await call(client, team, "agent", "GET", path))["state"] == "queued"


async def test_new_work_is_queued_and_offered_in_one_transaction(
    hub: Hub, client: Client, team: Team
) -> None:
    """A routing batch records its queued transitions and its offers together: one write of
    the outbox for the message, one for routing it (before, routing wrote twice)."""
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    queued: list[InteractionQueued] = []
    offered: list[OfferMade] = []

    async def keep(event: InteractionQueued | OfferMade) -> None:
        (queued if isinstance(event, InteractionQueued) else offered).append(event)

    hub.store.bus.subscribe(InteractionQueued, keep)
    hub.store.bus.subscribe(OfferMade, keep)
    with statements_run(hub.store) as statements:
        pushed = await push(client, team, **{"from": "+14155550100", "body": "hello"})
        await settled(client)
    outbox_writes = [s for s in statements if "INSERT INTO outbox" in s]
    assert len(outbox_writes) == 2, outbox_writes
    assert [e.interaction_id for e in queued] == [pushed["interaction_id"]]
    assert [e.interaction_id for e in offered] == [pushed["interaction_id"]]
    path = f"/api/v1/interactions/{pushed['interaction_id']}"
    assert (await call(client, team, "agent", "GET", path))["state"] == "offered"


async def test_a_first_contact_is_routed_without_reading_its_brand_new_customer(
    hub: Hub, client: Client, team: Team
) -> None:
    """A customer created with the message has no custom fields or tags: routing reads none.
    A customer known before is read (what routing rules match on may be there)."""
    now = hub.clock()
    async with hub.store.unit_of_work() as uow:
        known = await uow.customers.create(display_name="Known", team_id=None, now=now)
        await uow.customers.add_identity(
            known.id, IdentityRef(IdentityKind.PHONE, "+14155550177"), verified=True, now=now
        )
        await uow.customers.update(known.id, now, tags=["vip"])
        await uow.commit()
    received: list[InteractionReceived] = []

    async def keep(event: InteractionReceived) -> None:
        received.append(event)

    hub.store.bus.subscribe(InteractionReceived, keep)
    traits = "SELECT customers.id, customers.custom_fields"
    with statements_run(hub.store) as statements:
        first = await push(client, team, **{"from": "+14155550166", "body": "hello"})
        await settled(client)
        assert not [s for s in statements if s.startswith(traits)]
        again = await push(client, team, **{"from": "+14155550177", "body": "me again"})
        await settled(client)
        assert len([s for s in statements if s.startswith(traits)]) == 1
    by_work = {e.interaction_id: e.customer_created for e in received}
    assert by_work == {first["interaction_id"]: True, again["interaction_id"]: False}
    for pushed in (first, again):
        path = f"/api/v1/interactions/{pushed['interaction_id']}"
        assert (await call(client, team, "admin", "GET", path))["state"] == "queued"
