"""Inbound SMS through Twilio's signed webhook, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from hub.bootstrap import Hub
from hub.crm_store.customers import CustomerRepository
from hub.crm_store.tables import CustomerRow, TimelineEventRow
from hub.dev.twilio_sim import TwilioSimulator
from hub.domain.identity import IdentityKind, IdentityRef
from hub.errors import StoreError
from tests.channels.sms.conftest import OUR_NUMBER, PUBLIC

FIXTURES = Path(__file__).parent / "fixtures"
Client = TestClient[Any, Any]
CUSTOMER = "+14155550123"


async def count(hub: Hub, table: Any) -> int:
    async with hub.store.unit_of_work() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(table)) or 0)


async def events(hub: Hub) -> list[tuple[str, str | None, dict[str, Any], int | None]]:
    async with hub.store.unit_of_work() as uow:
        customer = await uow.customers.verified_owner(IdentityRef(IdentityKind.PHONE, CUSTOMER))
        assert customer is not None
        page = await uow.timeline.page(customer, limit=20)
    return [(e.kind.value, e.body, e.data, e.interaction_id) for e in reversed(page)]


async def test_a_signed_sms_lands_on_the_timeline_and_is_queued(
    sms_hub: Hub, twilio: TwilioSimulator
) -> None:
    status, body = await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body="Where is my order?")
    assert status == 200
    assert body.strip().endswith("<Response />")
    timeline = await events(sms_hub)
    assert timeline[0][:2] == ("message", "Where is my order?")
    assert timeline[0][2]["to"] == OUR_NUMBER
    assert timeline[1][1] == "Queued in support"


async def test_a_retried_webhook_is_stored_once(sms_hub: Hub, twilio: TwilioSimulator) -> None:
    for _ in range(3):
        status, _ = await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body="hi", sid="SM1")
        assert status == 200
    assert await count(sms_hub, TimelineEventRow) == 2  # the message and "Queued in support"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "forged"},
        {"X-Twilio-Signature": "signed-for-another-url"},
    ],
)
async def test_unsigned_or_forged_webhooks_are_refused_and_store_nothing(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, headers: dict[str, str]
) -> None:
    params = {"MessageSid": "SM9", "From": CUSTOMER, "To": OUR_NUMBER, "Body": "hi"}
    if headers.get("X-Twilio-Signature") == "signed-for-another-url":
        headers = {"X-Twilio-Signature": twilio.signature("https://evil.example.com/x", params)}
    response = await client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "bad_signature"
    assert await count(sms_hub, CustomerRow) == 0


async def test_a_signed_but_malformed_webhook_gets_a_reason(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    params = {"Body": "no sender"}
    headers = {"X-Twilio-Signature": twilio.signature(PUBLIC + "/webhooks/twilio/sms", params)}
    response = await client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["details"]["missing"] == ["From", "To", "MessageSid"]
    long_id = {"From": "+14155550100", "To": OUR_NUMBER, "Body": "hi", "MessageSid": "SM" * 40}
    headers = {"X-Twilio-Signature": twilio.signature(PUBLIC + "/webhooks/twilio/sms", long_id)}
    response = await client.post("/webhooks/twilio/sms", data=long_id, headers=headers)
    assert response.status == 400  # never a 503 from a column too short for it
    assert "MessageSid is not a Twilio id" in (await response.json())["error"]["message"]
    assert await count(sms_hub, CustomerRow) == 0


async def test_stop_and_start_change_consent_and_create_no_work(
    sms_hub: Hub, twilio: TwilioSimulator
) -> None:
    await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body=" stop ")
    timeline = await events(sms_hub)
    assert [(kind, body) for kind, body, _, _ in timeline] == [
        ("message", " stop "),
        ("status_change", f"{CUSTOMER} opted out of SMS"),
    ]
    assert timeline[0][2]["keyword"] == "opt_out"
    assert timeline[0][3] is None  # no interaction: nothing for an agent to do
    async with sms_hub.store.unit_of_work() as uow:
        assert await uow.customers.is_opted_out(IdentityRef(IdentityKind.PHONE, CUSTOMER))
    await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body="START")
    async with sms_hub.store.unit_of_work() as uow:
        assert not await uow.customers.is_opted_out(IdentityRef(IdentityKind.PHONE, CUSTOMER))


async def test_a_stop_is_never_lost_when_the_hub_fails_while_storing_it(
    sms_hub: Hub, twilio: TwilioSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault between storing the message and its consent, then Twilio's retry (TCPA)."""
    real = CustomerRepository.set_opt_out
    faults = [StoreError("the database went away (injected)")] * 2  # the batch, then alone

    async def failing_once(self: CustomerRepository, ref: IdentityRef, at: Any) -> None:
        if faults:
            raise faults.pop()
        await real(self, ref, at)

    monkeypatch.setattr(CustomerRepository, "set_opt_out", failing_once)
    status, _ = await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body="STOP", sid="SMstop")
    assert status == 503  # not answered 200: Twilio retries
    status, _ = await twilio.send_sms(sender=CUSTOMER, to=OUR_NUMBER, body="STOP", sid="SMstop")
    assert status == 200
    async with sms_hub.store.unit_of_work() as uow:
        assert await uow.customers.is_opted_out(IdentityRef(IdentityKind.PHONE, CUSTOMER))
    assert [body for _, body, _, _ in await events(sms_hub)] == [
        "STOP",
        f"{CUSTOMER} opted out of SMS",
    ]  # once each


async def test_a_recorded_mms_is_replayed_with_its_media(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    params = json.loads((FIXTURES / "inbound_mms.json").read_text())
    headers = {"X-Twilio-Signature": twilio.signature(PUBLIC + "/webhooks/twilio/sms", params)}
    response = await client.post("/webhooks/twilio/sms", data=params, headers=headers)
    assert response.status == 200
    async with sms_hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", params["MessageSid"])
    assert event is not None
    assert event.body == "Here is a photo of the broken mug"
    assert [(a.content_type, a.url) for a in event.attachments] == [
        ("image/jpeg", params["MediaUrl0"])
    ]


async def test_a_number_we_do_not_know_still_lands_in_the_default_queue(
    sms_hub: Hub, twilio: TwilioSimulator
) -> None:
    status, _ = await twilio.send_sms(sender=CUSTOMER, to="+14155559999", body="hello?")
    assert status == 200
    timeline = await events(sms_hub)
    assert timeline[0][2]["unmapped_number"] is True
    assert timeline[1][1] == "Queued in support"


def twilio_routes(hub: Hub) -> list[str]:
    """Every Twilio webhook the hub serves (SMS and voice: fourteen of them)."""
    return sorted(
        route.path for channel in hub.channels for route in channel.routes()
        if isinstance(route, web.RouteDef) and route.path.startswith("/webhooks/twilio/")
    )  # fmt: skip


async def test_unreadable_bodies_on_every_twilio_route_get_a_4xx_never_a_500(
    sms_hub: Hub, client: Client
) -> None:
    routes = twilio_routes(sms_hub)
    assert len(routes) == 14
    bodies = [
        ("application/x-www-form-urlencoded", b"From=%2B1415&Body=Fr\xf6sche"),  # not UTF-8
        ("application/x-www-form-urlencoded", b"Body=%FF%FE"),  # escapes of non-UTF-8 bytes
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-dat"),
        ("multipart/form-data", b"no boundary at all"),
        ("application/json", b"[" * 50_000),
    ]
    for path in routes:
        for content_type, body in bodies:
            response = await client.post(
                path,
                data=body,
                headers={"Content-Type": content_type, "X-Twilio-Signature": "c2lnbmVk"},
            )
            assert response.status in (400, 403, 415), (path, content_type, response.status)
            assert "Traceback" not in await response.text()
    assert await count(sms_hub, TimelineEventRow) == 0
