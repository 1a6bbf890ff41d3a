"""Call controls through the API, as the Twilio simulator sees them, on SQLite and PostgreSQL."""

from __future__ import annotations

from xml.etree import ElementTree

from hub.bootstrap import Hub
from hub.dev.twilio_sim import TwilioSimulator
from hub.domain.interaction import OPEN_STATES, InteractionState
from tests.channels.sms.conftest import OUR_NUMBER
from tests.channels.voice.helpers import (
    CALLER,
    Client,
    accepted_call,
    joined_call,
    requests_to,
    timeline,
)
from tests.conftest import make_team

AGENT_PHONE = "+14155550177"


async def legs(client: Client, path: str, headers: dict[str, str]) -> list[dict[str, object]]:
    response = await client.get(path, headers=headers)
    assert response.status == 200
    return list((await response.json())["legs"])


async def customer_with_phone(
    client: Client, headers: dict[str, str], name: str, phone: str
) -> int:
    created = await client.post(
        "/api/v1/customers",
        json={"name": name, "identities": [{"kind": "phone", "value": phone}]},
        headers=headers,
    )
    assert created.status == 201
    return int((await created.json())["id"])


async def state_of(hub: Hub, interaction: int) -> str:
    async with hub.store.unit_of_work() as uow:
        found = await uow.interactions.get(interaction)
    assert found is not None
    return found.state.value


async def test_the_agent_joins_in_the_browser_or_on_their_phone(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await accepted_call(sms_hub, client, twilio)
    agent = call.team.headers("agent")
    response = await client.post(call.path + "/join", json={}, headers=agent)
    assert response.status == 201
    joined = await response.json()
    assert joined["number"] == f"client:agent-{call.team.user_ids['agent']}"
    await twilio.settle()
    created = requests_to(
        twilio, "POST", f"/Conferences/interaction-{call.interaction}/Participants.json"
    )
    assert created[0]["From"] == OUR_NUMBER  # the number the customer called
    assert created[0]["To"] == f"client:agent-{call.team.user_ids['agent']}"
    assert created[0]["StartConferenceOnEnter"] == "true"
    assert [c.to for c in call.conference(twilio)] == [OUR_NUMBER, joined["number"]]
    on_call = await legs(client, call.path, agent)
    assert [(leg["role"], leg["status"], leg["live"]) for leg in on_call] == [
        ("customer", "in-progress", True),
        ("agent", "in-progress", True),
    ]
    assert "agent joined the call" in await timeline(sms_hub, call.customer)
    # Joining twice is refused; a colleague cannot join somebody else's call.
    response = await client.post(call.path + "/join", json={}, headers=agent)
    assert response.status == 409
    response = await client.post(
        call.path + "/join", json={"to": AGENT_PHONE}, headers=call.team.headers("supervisor")
    )
    assert response.status == 409
    response = await client.post(call.path + "/join", json={"to": "not a number"}, headers=agent)
    assert response.status in (409, 422)


async def test_hold_and_mute_reach_the_conference(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await joined_call(sms_hub, client, twilio, to=AGENT_PHONE)
    agent = call.team.headers("agent")
    customer, me = call.conference(twilio)
    assert me.to == AGENT_PHONE
    assert (await client.post(call.path + "/hold", json={"on": True}, headers=agent)).status == 204
    assert customer.hold
    music = ElementTree.fromstring(await twilio.voice.on_hold(customer.sid))
    play = music.find("Play")
    assert play is not None
    assert play.get("loop") == "0"  # looped until taken off hold, not played once
    assert (await client.post(call.path + "/mute", json={"on": True}, headers=agent)).status == 204
    assert me.muted
    await client.post(call.path + "/hold", json={"on": False}, headers=agent)
    await client.post(call.path + "/mute", json={"on": False}, headers=agent)
    await twilio.settle()
    assert not customer.hold
    assert not me.muted
    state = {leg["role"]: leg for leg in await legs(client, call.path, agent)}
    assert (state["customer"]["held"], state["agent"]["muted"]) == (False, False)
    lines = await timeline(sms_hub, call.customer)
    assert lines.count("Customer on hold") == 1
    assert lines.count("Customer off hold") == 1
    response = await client.post(call.path + "/hold", json={"on": "maybe"}, headers=agent)
    assert response.status == 422


async def test_hanging_up_ends_the_call_and_starts_wrap_up(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await joined_call(sms_hub, client, twilio)
    agent = call.team.headers("agent")
    assert (await client.post(call.path + "/hangup", headers=agent)).status == 204
    await twilio.settle()
    assert call.conference(twilio) == []
    assert all(c.status == "completed" for c in twilio.voice.calls.values())
    assert await state_of(sms_hub, call.interaction) == "wrap_up"
    lines = await timeline(sms_hub, call.customer)
    assert any(line.startswith("Call ended (completed") for line in lines)
    assert any(line.startswith("agent left the call") for line in lines)
    assert "Hung up" in lines
    assert "Caller hung up" not in lines  # the hub ended it, and knows it did
    assert "Agent hung up" not in lines


async def test_the_agent_hanging_up_their_phone_ends_the_call(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await joined_call(sms_hub, client, twilio, to=AGENT_PHONE)
    _, agent_leg = call.conference(twilio)
    await twilio.voice.hang_up(agent_leg.sid)
    await twilio.settle()
    assert call.conference(twilio) == []  # the customer is not left alone in silence
    assert await state_of(sms_hub, call.interaction) == "wrap_up"
    assert "Agent hung up" in await timeline(sms_hub, call.customer)


async def test_a_caller_hanging_up_on_the_agent_starts_wrap_up(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await joined_call(sms_hub, client, twilio)
    await twilio.voice.end_call(sid="CA100", duration=61)
    await twilio.settle()
    assert await state_of(sms_hub, call.interaction) == "wrap_up"
    lines = await timeline(sms_hub, call.customer)
    assert "Call ended (completed, 61 s)" in lines
    assert "Caller hung up" in lines


async def test_warm_transfer_to_a_number(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await joined_call(sms_hub, client, twilio)
    agent = call.team.headers("agent")
    response = await client.post(
        call.path + "/transfer", json={"number": "(415) 555-0188", "mode": "warm"}, headers=agent
    )
    assert response.status == 201
    await twilio.settle()
    customer, me, colleague = call.conference(twilio)
    assert colleague.to == "+14155550188"
    assert customer.hold  # the customer waits while the agent introduces them
    assert await state_of(sms_hub, call.interaction) == "assigned"
    assert (await client.post(call.path + "/leave", headers=agent)).status == 204
    await twilio.settle()
    assert [c.sid for c in call.conference(twilio)] == [customer.sid, colleague.sid]
    assert not customer.hold
    assert me.status == "completed"
    assert await state_of(sms_hub, call.interaction) == "wrap_up"
    assert "Consulting +14155550188" in await timeline(sms_hub, call.customer)


async def test_cold_transfer_to_a_queue_then_the_next_agent_takes_over(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await joined_call(sms_hub, client, twilio)
    agent = call.team.headers("agent")
    response = await client.post(call.path + "/transfer", json={"queue": "support"}, headers=agent)
    assert response.status == 204
    await twilio.settle()
    [customer] = call.conference(twilio)
    assert customer.hold  # hold music until the next agent is on
    # The next agent takes the offer and joins: the customer comes off hold.
    other = await make_team(sms_hub, "support", suffix="2")
    second = other.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=second)
    offers = (await (await client.get("/api/v1/me/offers", headers=second)).json())["offers"]
    assert [o["interaction_id"] for o in offers] == [call.interaction]
    await client.post(f"/api/v1/interactions/{call.interaction}/accept", headers=second)
    response = await client.post(call.path + "/join", json={}, headers=second)
    assert response.status == 201
    await twilio.settle()
    assert not customer.hold
    assert [c.to for c in call.conference(twilio)] == [
        OUR_NUMBER,
        f"client:agent-{other.user_ids['agent']}",
    ]
    # The first agent no longer controls the call.
    response = await client.post(call.path + "/hold", json={"on": True}, headers=agent)
    assert response.status == 409


async def test_supervisors_listen_whisper_and_barge(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await joined_call(sms_hub, client, twilio)
    boss = call.team.headers("supervisor")
    response = await client.post(call.path + "/monitor", json={"mode": "listen"}, headers=boss)
    assert response.status == 201
    await twilio.settle()
    _customer, agent_leg, supervisor = call.conference(twilio)
    assert supervisor.muted
    assert not supervisor.coaching
    assert not supervisor.start_on_enter
    response = await client.post(call.path + "/monitor", json={"mode": "whisper"}, headers=boss)
    assert response.status == 201
    assert supervisor.coaching
    assert supervisor.call_sid_to_coach == agent_leg.sid
    assert not supervisor.muted
    await client.post(call.path + "/monitor", json={"mode": "barge"}, headers=boss)
    assert not supervisor.coaching
    assert not supervisor.muted
    await twilio.settle()
    lines = await timeline(sms_hub, call.customer)
    assert "A supervisor joined the call" in lines
    assert "supervisor joined the call" not in lines  # listening in left no trace there
    audit = await (await client.get("/api/v1/audit", headers=call.team.headers("admin"))).json()
    actions = [entry["action"] for entry in audit["entries"]]
    assert {"call.listen", "call.whisper", "call.barge"} <= set(actions)
    calls = await (await client.get("/api/v1/calls", headers=boss)).json()
    [live] = calls["calls"]
    assert live["interaction_id"] == call.interaction
    assert live["agent_id"] == call.team.user_ids["agent"]
    assert sorted(leg["role"] for leg in live["legs"]) == ["agent", "customer", "supervisor"]
    response = await client.get("/api/v1/calls", headers=call.team.headers("agent"))
    assert response.status == 403
    # Agents cannot monitor.
    response = await client.post(
        call.path + "/monitor", json={"mode": "listen"}, headers=call.team.headers("agent")
    )
    assert response.status == 403


async def test_click_to_call_rings_the_agent_then_the_customer(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    agent = team.headers("agent")
    customer = await customer_with_phone(client, agent, "Ann", "415 555 0142")
    response = await client.post(f"/api/v1/customers/{customer}/call", json={}, headers=agent)
    assert response.status == 201
    interaction = (await response.json())["interaction_id"]
    await twilio.settle()
    # Both are rung at once; whoever answers first is in first.
    assert sorted(c.to for c in twilio.voice.in_conference(f"interaction-{interaction}")) == [
        "+14155550142",
        f"client:agent-{team.user_ids['agent']}",
    ]
    dialled = requests_to(
        twilio, "POST", f"/Conferences/interaction-{interaction}/Participants.json"
    )
    assert [form["To"] for form in dialled] == [
        f"client:agent-{team.user_ids['agent']}",  # the agent is rung first
        "+14155550142",
    ]
    assert await state_of(sms_hub, interaction) == "assigned"
    lines = await timeline(sms_hub, customer)
    assert lines[0] == "Outgoing call to +14155550142"
    assert "Ringing +14155550142" in lines
    assert "Customer answered" in lines
    me = await (
        await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    ).json()
    assert me["load"] == {"voice": 1}
    # A busy customer: the call is over, and says so.
    twilio.voice.answer_as("+14155550143", "busy")
    response = await client.post(
        f"/api/v1/customers/{customer}/call", json={"number": "+14155550143"}, headers=agent
    )
    second = (await response.json())["interaction_id"]
    await twilio.settle()
    assert await state_of(sms_hub, second) == "wrap_up"
    assert "Call not answered (busy)" in await timeline(sms_hub, customer)


async def test_twilio_failures_are_retried_or_reported(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await accepted_call(sms_hub, client, twilio)
    agent = call.team.headers("agent")
    twilio.fail_next(500, 2)  # two 500s, then it goes through
    response = await client.post(call.path + "/join", json={}, headers=agent)
    assert response.status == 201
    twilio.fail_next(500, 4)  # always failing: a clear error, and nothing half-done
    response = await client.post(call.path + "/hold", json={"on": True}, headers=agent)
    assert response.status == 503
    assert "500" in (await response.json())["error"]["message"]
    await twilio.settle()
    [customer, _] = call.conference(twilio)
    assert not customer.hold
    assert "Customer on hold" not in await timeline(sms_hub, call.customer)


async def test_call_controls_need_a_call_and_a_login(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    status, _ = await twilio.send_sms(sender=CALLER, to=OUR_NUMBER, body="hi")
    assert status == 200
    async with sms_hub.store.unit_of_work() as uow:
        [texted] = await uow.interactions.in_states(OPEN_STATES)
    path = f"/api/v1/interactions/{texted.id}/call"
    response = await client.post(path + "/hold", json={"on": True}, headers=team.headers("agent"))
    assert response.status == 409  # an SMS conversation has no call to hold
    assert (await client.post(path + "/hold", json={"on": True})).status == 401
    response = await client.post(path + "/join", json={}, headers=team.headers("marketer"))
    assert response.status == 403


async def test_a_click_to_call_twilio_refuses_ends_the_new_work(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    agent = team.headers("agent")
    customer = await customer_with_phone(client, agent, "Bo", "415 555 0150")
    twilio.fail_next(400)
    response = await client.post(f"/api/v1/customers/{customer}/call", json={}, headers=agent)
    assert response.status == 502
    assert "refused" in (await response.json())["error"]["message"]
    async with sms_hub.store.unit_of_work() as uow:
        [placed] = await uow.interactions.in_states(frozenset(InteractionState))
    assert placed.state.value == "wrap_up"  # not left assigned with no call
    assert any(line.startswith("Call not placed") for line in await timeline(sms_hub, customer))


async def test_hold_before_any_conference_event_looks_the_conference_up(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    """Twilio takes only the conference's sid for participant updates; the join event that
    brings it to the hub is late here, so the hub asks Twilio for it by name."""
    twilio.voice.late_events = {"participant-join"}
    call = await accepted_call(sms_hub, client, twilio)
    async with sms_hub.store.unit_of_work() as uow:
        leg = await uow.calls.by_sid("CA100")
    assert leg is not None
    assert leg.conference_sid is None  # nothing has told the hub yet
    agent = call.team.headers("agent")
    assert (await client.post(call.path + "/hold", json={"on": True}, headers=agent)).status == 204
    assert twilio.voice.calls["CA100"].hold
    sid = twilio.voice.conferences[next(iter(twilio.voice.conferences))].sid
    assert ("GET", f"/2010-04-01/Accounts/{twilio.account_sid}/Conferences.json", {}) in (
        twilio.requests
    )
    async with sms_hub.store.unit_of_work() as uow:
        leg = await uow.calls.by_sid("CA100")
    assert leg is not None
    assert leg.conference_sid == sid  # kept: the next control needs no lookup
    assert (await client.post(call.path + "/hangup", headers=agent)).status == 204
    await twilio.settle()
    assert twilio.voice.calls["CA100"].status == "completed"


async def test_conference_events_out_of_order_are_applied_in_sequence(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    call = await joined_call(sms_hub, client, twilio, to=AGENT_PHONE)
    agent = call.team.headers("agent")
    twilio.voice.late_events = {"participant-hold"}  # arrives after the unhold
    await client.post(call.path + "/hold", json={"on": True}, headers=agent)
    await client.post(call.path + "/hold", json={"on": False}, headers=agent)
    await twilio.settle()
    arrived = [
        (params["StatusCallbackEvent"], params["SequenceNumber"])
        for _, params, _ in twilio.callbacks
        if params.get("StatusCallbackEvent", "").endswith("hold")
    ]
    assert [event for event, _ in arrived] == ["participant-unhold", "participant-hold"]
    assert int(arrived[0][1]) > int(arrived[1][1])
    state = {leg["role"]: leg for leg in await legs(client, call.path, agent)}
    assert state["customer"]["held"] is False  # the older hold event changed nothing
