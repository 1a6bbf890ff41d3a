"""Agents replying by SMS through Twilio (the simulator, at the wire), on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.dev.twilio_sim import TwilioSimulator
from hub.domain.identity import IdentityKind, IdentityRef
from tests.agent_console.test_realtime import Listener
from tests.channels.sms.conftest import OUR_NUMBER, PUBLIC
from tests.conftest import Team, make_team

Client = TestClient[Any, Any]
CUSTOMER = "+14155550123"


async def taken(client: Client, team: Team, twilio: TwilioSimulator, text: str = "help") -> int:
    """The customer texts; the agent goes available and takes it. Returns the interaction."""
    await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body=text)
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    offers = await (await client.get("/api/v1/me/offers", headers=agent)).json()
    interaction = int(offers["offers"][0]["interaction_id"])
    response = await client.post(f"/api/v1/interactions/{interaction}/accept", headers=agent)
    assert response.status == 204
    return interaction


async def reply(client: Client, team: Team, interaction: int, text: str) -> tuple[int, Any]:
    response = await client.post(
        f"/api/v1/interactions/{interaction}/reply",
        json={"body": text},
        headers=team.headers("agent"),
    )
    return response.status, await response.json()


async def event_status(hub: Hub, event_id: int) -> dict[str, Any]:
    async with hub.store.unit_of_work() as uow:
        event = await uow.timeline.event(event_id)
    assert event is not None
    return event.data


async def test_a_reply_goes_out_and_comes_back_delivered(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    interaction = await taken(client, team, twilio)
    status, event = await reply(client, team, interaction, "It ships today.")
    assert status == 201, event
    assert event["direction"] == "outbound"
    assert event["provider"] == "twilio"
    assert event["provider_ref"].startswith("SM")
    assert event["data"]["status"] == "queued"
    (sent,) = [form for method, _, form in twilio.requests if method == "POST"]
    assert (sent["To"], sent["From"], sent["Body"]) == (CUSTOMER, OUR_NUMBER, "It ships today.")
    assert sent["StatusCallback"] == PUBLIC + "/webhooks/twilio/sms/status"
    await twilio.settle()  # the simulator reports sent, then delivered, signed
    assert (await event_status(sms_hub, event["id"]))["status"] == "delivered"
    assert [code for _, _, code in twilio.callbacks] == [204, 204]
    # A late "sent" never moves a delivered message back.
    params = {"MessageSid": event["provider_ref"], "MessageStatus": "sent"}
    headers = {
        "X-Twilio-Signature": twilio.signature(PUBLIC + "/webhooks/twilio/sms/status", params)
    }
    response = await client.post("/webhooks/twilio/sms/status", data=params, headers=headers)
    assert response.status == 204
    assert (await event_status(sms_hub, event["id"]))["status"] == "delivered"
    forged = await client.post(
        "/webhooks/twilio/sms/status", data=params, headers={"X-Twilio-Signature": "nope"}
    )
    assert forged.status == 403


async def test_twilio_busy_is_retried_and_a_lasting_failure_is_on_the_timeline(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    interaction = await taken(client, team, twilio)
    twilio.fail_next(429, 2)
    status, event = await reply(client, team, interaction, "First try")
    assert status == 201
    assert len([r for r in twilio.requests if r[0] == "POST"]) == 3
    twilio.fail_next(500, 4)
    status, error = await reply(client, team, interaction, "Second try")
    assert status == 503
    assert error["error"]["code"] == "channel_not_ready"
    async with sms_hub.store.unit_of_work() as uow:
        page = await uow.timeline.page(event["customer_id"], limit=5)
    failed = next(e for e in page if e.body == "Second try")
    assert failed.data["status"] == "failed"
    assert "500" in failed.data["error"]


async def test_an_opted_out_customer_is_never_sent_to(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    interaction = await taken(client, team, twilio)
    await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body="STOP")
    status, error = await reply(client, team, interaction, "Are you there?")
    assert status == 409
    assert error["error"]["code"] == "sms_opted_out"
    assert [r for r in twilio.requests if r[0] == "POST"] == []


async def test_a_number_twilio_knows_unsubscribed_is_marked_opted_out_on_error_21610(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    """The hub never saw the STOP (another app, or Twilio's handling alone): Twilio's 21610."""
    team = await make_team(sms_hub, "support")
    interaction = await taken(client, team, twilio)
    twilio.unsubscribed.add(CUSTOMER)
    status, error = await reply(client, team, interaction, "Are you there?")
    assert status == 409
    assert error["error"]["code"] == "sms_opted_out"
    async with sms_hub.store.unit_of_work() as uow:
        assert await uow.customers.is_opted_out(IdentityRef(IdentityKind.PHONE, CUSTOMER))
    posts = len([r for r in twilio.requests if r[0] == "POST"])
    status, _ = await reply(client, team, interaction, "Still there?")
    assert status == 409
    assert len([r for r in twilio.requests if r[0] == "POST"]) == posts  # not tried again


async def test_statuses_twilio_documents_are_kept_in_order(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    interaction = await taken(client, team, twilio)
    status, sent = await reply(client, team, interaction, "Your code is 1234")
    assert status == 201
    sid = sent["provider_ref"]
    await twilio.settle()
    for reported in ("read", "delivered", "partially_delivered"):  # read last, late ones after
        params = {"MessageSid": sid, "MessageStatus": reported, "AccountSid": twilio.account_sid}
        assert (await twilio.post_to_hub("/webhooks/twilio/sms/status", params))[0] == 204
    async with sms_hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", sid)
    assert event is not None
    assert event.data["status"] == "read"


async def test_advanced_opt_out_says_what_a_message_was(
    sms_hub: Hub, twilio: TwilioSimulator
) -> None:
    """With Advanced Opt-Out, Twilio's OptOutType is the verdict (a keyword of the account's)."""
    params = {
        "MessageSid": "SMaoo1", "AccountSid": twilio.account_sid, "From": CUSTOMER,
        "To": OUR_NUMBER, "Body": "ARRÊT", "NumMedia": "0", "OptOutType": "STOP",
    }  # fmt: skip
    assert (await twilio.post_to_hub("/webhooks/twilio/sms", params))[0] == 200
    async with sms_hub.store.unit_of_work() as uow:
        assert await uow.customers.is_opted_out(IdentityRef(IdentityKind.PHONE, CUSTOMER))


async def test_only_the_agent_who_has_it_replies(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body="hello")
    async with sms_hub.store.unit_of_work() as uow:
        from hub.domain.interaction import InteractionState

        (waiting,) = await uow.interactions.in_states(frozenset({InteractionState.QUEUED}))
    status, _ = await reply(client, team, waiting.id, "too early")
    assert status == 409
    response = await client.post(
        f"/api/v1/interactions/{waiting.id}/reply", json={"body": ""}, headers=team.headers("agent")
    )
    assert response.status == 422
    response = await client.post(
        f"/api/v1/interactions/{waiting.id}/reply",
        json={"body": "x"},
        headers=team.headers("marketer"),
    )
    assert response.status == 403


async def test_the_agent_console_hears_each_delivery_status(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    team = await make_team(sms_hub, "support")
    interaction = await taken(client, team, twilio)
    console = Listener("/agent")
    await console.connect(str(client.make_url("")), team.tokens["agent"])
    try:
        status, event = await reply(client, team, interaction, "On its way.")
        assert status == 201, event

        def status_of(wanted: str) -> Callable[[Any], bool]:
            return lambda m: (
                m["event"]["id"] == event["id"] and m["event"]["data"]["status"] == wanted
            )

        # The same event id, pushed again as Twilio reports it: sent, then delivered.
        pushed = await console.next("message", status_of("delivered"))
        assert pushed["interaction_id"] == interaction
        assert await console.next("message", status_of("sent"))
    finally:
        await console.client.disconnect()
