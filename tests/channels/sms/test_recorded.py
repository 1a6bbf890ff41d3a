"""Payloads as Twilio's documentation shows them (fixtures/), replayed signed at the hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.bootstrap import Hub
from hub.dev.twilio_sim import TwilioSimulator
from hub.domain.identity import IdentityKind, IdentityRef
from tests.channels.sms.test_outbound import (
    CUSTOMER,
    Client,
    event_status,
    reply,
    taken,
)
from tests.conftest import make_team

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str, **values: str) -> dict[str, str]:
    """A fixture's form, its placeholders ({sid}) filled in; its _source note dropped."""
    form = json.loads((FIXTURES / name).read_text())
    return {k: str(v).format(**values) for k, v in form.items() if not k.startswith("_")}


@pytest.mark.parametrize(
    ("fixture", "status", "error", "opted_out"),
    [
        ("status_delivered.json", "delivered", None, False),
        ("status_read.json", "read", None, False),
        ("status_undelivered_30003.json", "undelivered", "30003", False),
        ("status_failed_21610.json", "failed", "21610", True),
    ],
)
async def test_a_recorded_status_callback_is_kept(
    sms_hub: Hub,
    client: Client,
    twilio: TwilioSimulator,
    fixture: str,
    status: str,
    error: str | None,
    opted_out: bool,
) -> None:
    twilio.deliver = ()  # only the recorded callback reports on the message
    team = await make_team(sms_hub, "support")
    interaction = await taken(client, team, twilio)
    code, sent = await reply(client, team, interaction, "Your parcel left the depot")
    assert code == 201
    params = recorded(fixture, sid=sent["provider_ref"])
    assert (await twilio.post_to_hub("/webhooks/twilio/sms/status", params))[0] == 204
    data = await event_status(sms_hub, sent["id"])
    assert data["status"] == status
    assert str(data.get("error_code") or "") == (error or "")
    async with sms_hub.store.unit_of_work() as uow:
        known = await uow.customers.is_opted_out(IdentityRef(IdentityKind.PHONE, CUSTOMER))
    assert known is opted_out


async def test_a_recorded_advanced_opt_out_stop_opts_the_number_out(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    params = recorded("inbound_stop_advanced_opt_out.json")
    assert (await twilio.post_to_hub("/webhooks/twilio/sms", params))[0] == 200
    async with sms_hub.store.unit_of_work() as uow:
        assert await uow.customers.is_opted_out(IdentityRef(IdentityKind.PHONE, params["From"]))
        event = await uow.timeline.by_provider_ref("twilio", params["MessageSid"])
    assert event is not None
    assert event.body == "Arrêter"
