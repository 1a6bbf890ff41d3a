"""Agents never lose their work; sessions end everywhere when their token does (both stores)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.routing.model import Presence
from tests.agent_console.test_realtime import Listener, contact, listeners
from tests.conftest import FrozenClock, Team, eventually, make_team

Client = TestClient[Any, Any]
__all__ = ["listeners"]  # the fixture, shared with the realtime tests


async def arrive(client: Client, team: Team, sender: str, body: str) -> int:
    """A contact from its own customer (each sender opens its own interaction)."""
    response = await client.post(
        "/api/v1/inbound",
        json={"from": sender, "body": body, "provider_ref": sender, "queue": "support"},
        headers=team.headers("admin"),
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["interaction_id"])


async def test_held_work_comes_back_after_a_reload_and_from_the_api(
    client: Client, team: Team, listeners: list[Listener]
) -> None:
    url = str(client.make_url(""))
    agent = Listener("/agent")
    listeners.append(agent)
    await agent.connect(url, team.tokens["agent"])
    await agent.next("hello")
    await agent.call("state", {"state": "available"})
    first = await arrive(client, team, "+14155550101", "My parcel is late")
    second = await arrive(client, team, "+14155550102", "Wrong size")
    for interaction in (first, second):
        await agent.next("offer", lambda o, i=interaction: o["interaction"]["id"] == i)
        assert (await agent.call("accept", {"interaction_id": interaction}))["ok"] is True
    ended = await client.post(f"/api/v1/interactions/{second}/end", headers=team.headers("agent"))
    assert ended.status == 204  # in wrap-up: still the agent's to close

    await agent.client.disconnect()  # the browser reloads
    again = Listener("/agent")
    listeners.append(again)
    await again.connect(url, team.tokens["agent"])
    hello = await again.next("hello")
    held = {(w["id"], w["state"]) for w in hello["work"]}
    assert held == {(first, "assigned"), (second, "wrap_up")}

    listed = await client.get("/api/v1/me/interactions", headers=team.headers("agent"))
    assert listed.status == 200
    assert {w["id"] for w in (await listed.json())["interactions"]} == {first, second}
    others = await client.get("/api/v1/me/interactions", headers=team.headers("supervisor"))
    assert (await others.json())["interactions"] == []


async def test_only_the_assignee_or_a_supervisor_may_close_end_or_transfer(
    hub: Hub, client: Client, team: Team, listeners: list[Listener]
) -> None:
    colleague = await make_team(hub, "support", suffix="-2")
    url = str(client.make_url(""))
    agent = Listener("/agent")
    listeners.append(agent)
    await agent.connect(url, team.tokens["agent"])
    await agent.call("state", {"state": "available"})
    interaction = await contact(client, team, "mine", "Hello")
    await agent.next("offer")
    assert (await agent.call("accept", {"interaction_id": interaction}))["ok"] is True
    path = f"/api/v1/interactions/{interaction}"
    theirs = {"Authorization": f"Bearer {colleague.tokens['agent']}"}
    for action, body in (
        ("close", {"disposition": "x"}),
        ("end", None),
        ("transfer", {"queue": "support"}),
    ):
        refused = await client.post(f"{path}/{action}", json=body, headers=theirs)
        assert refused.status == 403, action
        assert (await refused.json())["error"]["code"] == "not_your_interaction"
    state = await (await client.get(path, headers=team.headers("agent"))).json()
    assert state["state"] == "assigned"  # nothing happened
    closed = await client.post(
        f"{path}/close", json={"disposition": "resolved"}, headers=team.headers("supervisor")
    )
    assert closed.status == 200  # the agent's supervisor may


async def _ended(listener: Listener, seconds: float = 2.5) -> str:
    """Wait for the hub to end the socket's session; its reason."""
    for _ in range(int(seconds / 0.05)):
        if listener.received.get("session_ended") and not listener.client.connected:
            return str(listener.received["session_ended"][-1]["reason"])
        await asyncio.sleep(0.05)
    raise AssertionError("the socket was not ended within 2.5 s")


async def test_a_revoked_token_ends_its_open_sockets_within_two_seconds(
    hub: Hub, client: Client, team: Team, listeners: list[Listener]
) -> None:
    url = str(client.make_url(""))
    agent, board = Listener("/agent"), Listener("/supervisor")
    listeners += [agent, board]
    await agent.connect(url, team.tokens["agent"])
    await board.connect(url, team.tokens["supervisor"])
    await agent.next("hello")

    out = await client.post("/api/v1/auth/logout", headers=team.headers("agent"))
    assert out.status == 204
    assert await _ended(agent) == "logged out"
    assert board.client.connected  # other tokens are untouched

    deactivated = await client.post(
        "/api/v1/users/supervisor/active", json={"active": False}, headers=team.headers("admin")
    )
    assert deactivated.status == 200, await deactivated.text()
    await _ended(board)


async def test_an_expired_session_ends_its_socket(
    hub: Hub, client: Client, clock: FrozenClock, listeners: list[Listener]
) -> None:
    await make_team(hub, "support")
    login = await client.post(
        "/api/v1/auth/login", json={"username": "agent", "password": "correct horse battery"}
    )
    token = (await login.json())["token"]
    agent = Listener("/agent")
    listeners.append(agent)
    await agent.connect(str(client.make_url("")), token)
    await agent.next("hello")
    clock.advance(hub.settings.session_ttl_hours * 3600 + 1)
    assert await _ended(agent) == "logged out"


async def test_an_agent_whose_console_is_gone_goes_offline_after_the_grace_period(
    hub: Hub, client: Client, team: Team, clock: FrozenClock, listeners: list[Listener]
) -> None:
    hub.settings.agent_disconnect_grace_seconds = 10  # shorter than the offer's ring (20 s)
    url = str(client.make_url(""))
    agent = Listener("/agent")
    listeners.append(agent)
    await agent.connect(url, team.tokens["agent"])
    await agent.call("state", {"state": "available"})
    interaction = await contact(client, team, "ringing", "Anyone there?")
    await agent.next("offer")
    await agent.client.disconnect()  # the browser is closed while the offer rings
    assert hub.routing is not None
    state = hub.routing.state
    user_id = team.user_ids["agent"]

    clock.advance(5)
    await asyncio.sleep(1.5)  # ticks run: still within the grace period (a reload would do)
    found = await state.agent(user_id)
    assert found is not None
    assert found.presence is Presence.AVAILABLE

    clock.advance(6)

    async def offline() -> bool:
        seen = await state.agent(user_id)
        return seen is not None and seen.presence is Presence.OFFLINE

    await eventually(offline, seconds=5, what="the agent offline")
    item = await state.item(interaction)
    assert item is not None
    assert item.offered_to is None  # the offer ringing at nobody moved on


async def test_a_missed_offer_is_shown_and_the_work_comes_back_when_the_agent_is_back(
    hub: Hub, client: Client, team: Team, clock: FrozenClock, listeners: list[Listener]
) -> None:
    """The demo's case: one agent, who lets an offer ring out."""
    agent = Listener("/agent")
    listeners.append(agent)
    await agent.connect(str(client.make_url("")), team.tokens["agent"])
    await agent.call("state", {"state": "available"})
    interaction = await contact(client, team, "ring", "Hello?")
    await agent.next("offer")
    assert hub.routing is not None
    clock.advance(hub.routing.policy.queues["support"].ring_seconds + 1)
    state = await agent.next("state", lambda s: s["presence"] == "missed")
    assert state["reason"] == "an offer rang out"
    await agent.next("offer_withdrawn")
    clock.advance(1)
    before = len(agent.received["offer"])
    assert (await agent.call("state", {"state": "available"}))["ok"] is True
    await agent.next("offer", lambda o: len(agent.received["offer"]) > before)
    assert agent.received["offer"][-1]["interaction"]["id"] == interaction
    refused = await agent.call("state", {"state": "missed"})
    assert refused["ok"] is False  # routing's to set, not the agent's
