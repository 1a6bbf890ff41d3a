"""A call in progress for the call-control tests: a caller, and the agent who took it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.dev.twilio_sim import TwilioSimulator
from hub.dev.twilio_voice import SimCall
from tests.channels.sms.conftest import OUR_NUMBER
from tests.conftest import Team, make_team

Client = TestClient[Any, Any]
CALLER = "+14155550123"


@dataclass
class Call:
    """An accepted call: its interaction, the team, and the API path of its controls."""

    interaction: int
    customer: int
    team: Team
    path: str

    def conference(self, twilio: TwilioSimulator) -> list[SimCall]:
        return twilio.voice.in_conference(f"interaction-{self.interaction}")


async def accepted_call(
    hub: Hub,
    client: Client,
    twilio: TwilioSimulator,
    *,
    sid: str = "CA100",
    team: Team | None = None,
) -> Call:
    """A caller rings in, the team's agent goes available and accepts the offer."""
    team = team or await make_team(hub, "support")
    status, _ = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid=sid)
    assert status == 200
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    offers = (await (await client.get("/api/v1/me/offers", headers=agent)).json())["offers"]
    interaction = offers[0]["interaction_id"]
    response = await client.post(f"/api/v1/interactions/{interaction}/accept", headers=agent)
    assert response.status == 204
    async with hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", sid)
    assert event is not None
    return Call(interaction, event.customer_id, team, f"/api/v1/interactions/{interaction}/call")


async def timeline(hub: Hub, customer: int) -> list[str]:
    """The bodies of a customer's timeline, oldest first."""
    async with hub.store.unit_of_work() as uow:
        page = await uow.timeline.page(customer, limit=100)
    return [event.body or "" for event in reversed(page)]


def requests_to(twilio: TwilioSimulator, method: str, suffix: str) -> list[dict[str, str]]:
    """The forms of the REST requests the simulator took, by method and path ending."""
    return [form for m, path, form in twilio.requests if m == method and path.endswith(suffix)]


async def joined_call(
    hub: Hub, client: Client, twilio: TwilioSimulator, *, to: str | None = None
) -> Call:
    """An accepted call the agent has joined (in the browser, or on the phone ``to``)."""
    call = await accepted_call(hub, client, twilio)
    body = {"to": to} if to else {}
    agent = call.team.headers("agent")
    assert (await client.post(call.path + "/join", json=body, headers=agent)).status == 201
    await twilio.settle()
    return call
