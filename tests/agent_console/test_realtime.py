"""The realtime protocol over a real socket.io connection, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.domain.identity import IdentityKind, IdentityRef
from tests.conftest import Team, connections_opened

Client = TestClient[Any, Any]


class Listener:
    """A socket.io client that keeps what each event brought."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: dict[str, list[Any]] = {}
        self._arrived = asyncio.Event()

        @self.client.on("*", namespace=namespace)  # type: ignore[misc]
        async def anything(event: str, data: Any) -> None:
            self.received.setdefault(event, []).append(data)
            self._arrived.set()

    async def connect(self, url: str, token: str) -> None:
        await self.client.connect(
            url,
            namespaces=[self.namespace],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=10,  # python-socketio's default is 1 s: too short on a loaded machine
        )

    async def next(self, event: str, when: Callable[[Any], bool] = lambda _: True) -> Any:
        """Wait for an event (that satisfies when); the newest such."""
        for _ in range(200):
            found = [data for data in self.received.get(event, []) if when(data)]
            if found:
                return found[-1]
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.05)
        raise AssertionError(f"no {event} event arrived")

    async def call(self, event: str, data: Any) -> Any:
        return await self.client.call(event, data, namespace=self.namespace, timeout=10)


@pytest.fixture
async def listeners() -> AsyncIterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        await listener.client.disconnect()


async def contact(client: Client, team: Team, ref: str, body: str) -> int:
    response = await client.post(
        "/api/v1/inbound",
        json={"from": "+14155550100", "body": body, "provider_ref": ref, "queue": "support"},
        headers=team.headers("admin"),
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["interaction_id"])


async def test_an_agent_gets_the_offer_with_the_record_accepts_and_wraps_up(
    hub: Hub, client: Client, team: Team, listeners: list[Listener]
) -> None:
    url = str(client.make_url(""))
    earlier = await contact(client, team, "first", "My parcel is late")
    response = await client.post(
        f"/api/v1/interactions/{earlier}/close", json={}, headers=team.headers("admin")
    )
    assert response.status == 200
    agent = Listener("/agent")
    listeners.append(agent)
    await agent.connect(url, team.tokens["agent"])
    hello = await agent.next("hello")
    assert hello["offers"] == []
    answer = await agent.call("state", {"state": "available"})
    assert answer["ok"] is True
    assert answer["agent"]["presence"] == "available"
    interaction = await contact(client, team, "second", "Still nothing")
    offer = await agent.next("offer")
    assert offer["interaction"]["id"] == interaction
    bodies = [e["body"] for e in offer["customer"]["latest_events"]]
    assert "My parcel is late" in bodies  # the earlier contact, on the record that pops
    assert offer["customer"]["identities"][0]["value"] == "+14155550100"
    # A reconnect in the middle of the ring loses nothing: hello carries the offer.
    await agent.client.disconnect()
    again = Listener("/agent")
    listeners.append(again)
    await again.connect(url, team.tokens["agent"])
    assert [o["interaction"]["id"] for o in (await again.next("hello"))["offers"]] == [interaction]
    assert (await again.call("accept", {"interaction_id": interaction}))["ok"] is True
    assert (await again.next("assigned"))["interaction_id"] == interaction
    await contact(client, team, "third", "Hello?")  # the customer writes again
    message = await again.next("message", lambda m: m["event"]["body"] == "Hello?")
    assert message["event"]["direction"] == "inbound"
    assert message["interaction_id"] == interaction
    done = await again.call("wrapup", {"interaction_id": interaction, "disposition": "resolved"})
    assert done["ok"] is True
    assert done["interaction"]["state"] == "closed"
    refused = await again.call("accept", {"interaction_id": interaction})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "conflict"
    bad = await again.call("state", {"state": "asleep"})
    assert bad["error"]["code"] == "invalid_input"


async def test_connecting_needs_a_token_and_the_role(
    client: Client, team: Team, listeners: list[Listener]
) -> None:
    url = str(client.make_url(""))
    for namespace, token in (
        ("/agent", "hub_not-a-token"),
        ("/agent", team.tokens["marketer"]),
        ("/supervisor", team.tokens["agent"]),
    ):
        listener = Listener(namespace)
        listeners.append(listener)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await listener.connect(url, token)


async def test_supervisors_see_queues_and_agents_change(
    hub: Hub, client: Client, team: Team, listeners: list[Listener]
) -> None:
    url = str(client.make_url(""))
    board = Listener("/supervisor")
    listeners.append(board)
    await board.connect(url, team.tokens["supervisor"])
    first = await board.next("queues")
    support = next(q for q in first if q["name"] == "support")
    waiting = support["live"]["waiting"]
    await contact(client, team, "board", "Anyone there?")
    await board.next(
        "queues",
        lambda queues: any(
            q["name"] == "support" and q["live"]["waiting"] == waiting + 1 for q in queues
        ),
    )
    await client.post(
        "/api/v1/me/state", json={"state": "away", "reason": "lunch"}, headers=team.headers("agent")
    )
    agents = await board.next("agents", lambda agents: any(a["presence"] == "away" for a in agents))
    assert next(a for a in agents if a["presence"] == "away")["reason"] == "lunch"


async def test_long_polling_answers_with_or_without_an_origin(client: Client) -> None:
    # socket.io-client opens with HTTP long-polling; browsers send no Origin on same-origin GETs.
    plain = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert plain.status == 200
    assert "Access-Control-Allow-Origin" not in plain.headers
    foreign = await client.get(
        "/socket.io/",
        params={"EIO": "4", "transport": "polling"},
        headers={"Origin": "https://evil.example.net"},
    )
    assert foreign.status == 400  # not an origin the hub or any chat site allows


async def test_work_offered_pops_its_customer_whichever_team_the_customer_is_in(
    hub: Hub, client: Client, team: Team, listeners: list[Listener]
) -> None:
    """A customer of another team writing to this team's queue: the agent offered the work
    sees the record (the screen pop is how they decide), though a search would not find it."""
    now = hub.clock()
    async with hub.store.unit_of_work() as uow:
        sales = await uow.accounts.ensure_team("sales", now)
        customer = await uow.customers.create(display_name="Ada Sales", team_id=sales.id, now=now)
        phone = IdentityRef(IdentityKind.PHONE, "+14155550100")
        await uow.customers.add_identity(customer.id, phone, verified=True, now=now)
        await uow.commit()
    agent = Listener("/agent")
    listeners.append(agent)
    await agent.connect(str(client.make_url("")), team.tokens["agent"])
    await agent.next("hello")
    assert (await agent.call("state", {"state": "available"}))["ok"] is True
    interaction = await contact(client, team, "cross-team", "Is my order on its way?")
    offer = await agent.next("offer")
    assert offer["interaction"]["id"] == interaction
    assert offer["customer"]["id"] == customer.id
    assert offer["customer"]["name"] == "Ada Sales"
    assert "Is my order on its way?" in [e["body"] for e in offer["customer"]["latest_events"]]
    found = await client.get(f"/api/v1/customers/{customer.id}", headers=team.headers("agent"))
    assert found.status == 404  # not theirs to browse until they take the work


async def test_a_shift_connecting_at_once_reads_on_the_pooled_connections_it_has(
    hub: Hub, client: Client, team: Team, listeners: list[Listener]
) -> None:
    """Connects read the store a few at a time (``HANDSHAKES``): sixty agents connecting
    together open no more connections than the pool keeps and the reads use. Before, their
    reads all at once overflowed the pool, whose overflow connections close on return."""
    from hub.agent_console.realtime import HANDSHAKES

    url = str(client.make_url(""))
    with connections_opened(hub.store) as opened:
        shift = [Listener("/agent") for _ in range(60)]
        listeners.extend(shift)
        await asyncio.gather(*(agent.connect(url, team.tokens["agent"]) for agent in shift))
        await asyncio.gather(*(agent.next("hello") for agent in shift))
    pool = hub.store.engine.sync_engine.pool.size()  # type: ignore[attr-defined]
    assert len(opened) <= pool + HANDSHAKES, len(opened)  # 28 on PostgreSQL, all at once
