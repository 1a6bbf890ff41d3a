"""Incoming calls through Twilio's signed voice webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.channels.twilio.setup import configure_twilio
from hub.dev.twilio_sim import TwilioSimulator
from tests.channels.sms.conftest import OUR_NUMBER, PUBLIC, kept
from tests.channels.voice.helpers import requests_to
from tests.conftest import make_team

Client = TestClient[Any, Any]
CALLER = "+14155550123"


async def timeline(hub: Hub, customer: int) -> list[tuple[str, str | None]]:
    async with hub.store.unit_of_work() as uow:
        page = await uow.timeline.page(customer, limit=20)
    return [(e.kind.value, e.body) for e in reversed(page)]


async def the_call(hub: Hub, sid: str) -> tuple[int, int]:
    async with hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", sid)
    assert event is not None
    assert event.interaction_id is not None
    return event.customer_id, event.interaction_id


async def test_a_caller_waits_in_the_interactions_conference(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    status, twiml = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA1")
    assert status == 200
    root = ElementTree.fromstring(twiml)
    customer, interaction = await the_call(sms_hub, "CA1")
    assert root.find("Say") is not None
    conference = root.find("Dial/Conference")
    assert conference is not None
    assert conference.text == f"interaction-{interaction}"
    assert conference.get("startConferenceOnEnter") == "false"
    assert (
        conference.get("waitUrl")
        == f"{PUBLIC}/webhooks/twilio/voice/wait?interaction={interaction}"
    )
    assert [c.sid for c in twilio.voice.in_conference(f"interaction-{interaction}")] == ["CA1"]
    assert await timeline(sms_hub, customer) == [
        ("call", "Incoming call"),
        ("status_change", "Queued in support"),
    ]
    # Twilio retrying the webhook answers the same and stores nothing twice.
    again, twiml_again = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA1")
    assert (again, twiml_again) == (200, twiml)
    assert len(await timeline(sms_hub, customer)) == 2
    team = await make_team(sms_hub, "support")
    response = await client.post(
        "/api/v1/me/state", json={"state": "available"}, headers=team.headers("agent")
    )
    assert (await response.json())["load"] == {"voice": 1}


async def test_a_caller_who_hangs_up_while_waiting_is_abandoned(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    """The number has no status callback (Twilio's default): the conference says they left."""
    await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA2")
    customer, interaction = await the_call(sms_hub, "CA2")
    await twilio.voice.end_call(sid="CA2", duration=35)
    await twilio.settle()
    assert not [c for c in twilio.callbacks if "CallStatus" in c[1]]  # none were sent
    assert (await timeline(sms_hub, customer))[-2:] == [
        ("call", "Call ended (completed, 35 s)"),
        ("status_change", "Abandoned: caller hung up"),
    ]
    team = await make_team(sms_hub, "support")
    board = await (await client.get("/api/v1/queues", headers=team.headers("supervisor"))).json()
    support = next(q for q in board["queues"] if q["name"] == "support")
    assert support["windows"]["15m"]["abandoned"] == 1
    assert sms_hub.routing is not None
    assert await sms_hub.routing.state.item(interaction) is None


async def test_a_numbers_status_callback_and_its_retry_note_the_hang_up_once(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    """Where the number's status callback is set, it reports the hang-up too: noted once."""
    await configure_twilio(sms_hub.settings, apply=True)
    await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA2")
    customer, _ = await the_call(sms_hub, "CA2")
    await twilio.voice.end_call(sid="CA2", duration=35)
    await twilio.settle()
    url, params, status = next(c for c in reversed(twilio.callbacks) if "CallStatus" in c[1])
    assert (url.partition("#")[0], params["CallStatus"], params["CallDuration"], status) == (
        PUBLIC + "/webhooks/twilio/voice/status",
        "completed",
        "35",
        204,
    )
    # Twilio may send the callback twice: the second is a no-op.
    assert (await twilio.post_to_hub("/webhooks/twilio/voice/status", params))[0] == 204
    lines = await timeline(sms_hub, customer)
    assert lines.count(("status_change", "Abandoned: caller hung up")) == 1
    assert len([line for line in lines if line[1] and line[1].startswith("Call ended")]) == 1


async def test_outside_hours_the_caller_can_leave_a_voicemail(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, tmp_path: Path
) -> None:
    policy = tmp_path / "routing.toml"
    policy.write_text(
        '[[calendars]]\nname = "late"\ntimezone = "UTC"\n[calendars.week]\nmon = ["18:00-20:00"]\n'
        '[[queues]]\nname = "support"\nteam = "support"\ncalendar = "late"\n'
        'closed_action = "voicemail"\nclosed_message = "We open at six."\n'
    )
    sms_hub.settings.routing_policy = str(policy)
    assert sms_hub.routing is not None
    await sms_hub.routing.reload()
    status, twiml = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA3")
    assert status == 200
    root = ElementTree.fromstring(twiml)
    assert root.findtext("Say") == "We open at six."
    record = root.find("Record")
    assert record is not None
    assert record.get("action") == PUBLIC + "/webhooks/twilio/voice/voicemail"
    # The audio is fetched when Twilio says it is processed, not when the caller stops.
    assert record.get("recordingStatusCallback") == record.get("action")
    twilio.voice.recording_seconds = 0.5
    status, answer = await twilio.voice.leave_voicemail(sid="CA3", seconds=12)
    assert status == 200
    assert "<Hangup />" in answer
    await asyncio.sleep(0.2)
    assert requests_to(twilio, "GET", ".mp3") == []  # nothing asked of a recording not ready
    customer, interaction = await the_call(sms_hub, "CA3")
    assert twilio.voice.calls["CA3"].status == "completed"  # the caller hung up after
    events = await timeline(sms_hub, customer)
    assert ("call", "Voicemail (12 s)") in events
    assert ("status_change", "Abandoned: caller hung up") not in events
    async with sms_hub.store.unit_of_work() as uow:
        owed = await uow.interactions.get(interaction)
    assert owed is not None
    assert owed.state.value == "queued"  # a voicemail is work: somebody calls back
    # The recording is downloaded and kept (Twilio's copy is not ours to keep).
    _, (voicemail,) = await kept(sms_hub, "CA3:voicemail")
    assert voicemail.path is not None
    assert (await asyncio.to_thread(Path(voicemail.path).read_bytes)).startswith(b"ID3")
    assert len(requests_to(twilio, "GET", ".mp3")) == 1  # ready when asked: once
    assert [r["RecordingStatus"] for r in twilio.voice.recordings] == ["completed"]


async def test_forged_call_webhooks_are_refused(client: Client, twilio: TwilioSimulator) -> None:
    params = {"CallSid": "CA9", "From": CALLER, "To": OUR_NUMBER}
    for path in (
        "/webhooks/twilio/voice",
        "/webhooks/twilio/voice/status",
        "/webhooks/twilio/voice/voicemail",
    ):
        response = await client.post(path, data=params, headers={"X-Twilio-Signature": "x"})
        assert response.status == 403, path


async def test_malformed_call_webhooks_get_a_reason_not_a_crash(
    client: Client, twilio: TwilioSimulator
) -> None:
    for path, params in (
        ("/webhooks/twilio/voice", {"CallSid": "CA9", "From": CALLER}),
        ("/webhooks/twilio/voice/status", {"CallSid": "CA9"}),
        ("/webhooks/twilio/voice/wait", {"CallSid": "CA9"}),  # no ?interaction=
        ("/webhooks/twilio/voice/recording?interaction=1", {"RecordingStatus": "completed"}),
        ("/webhooks/twilio/voice/voicemail", {"CallSid": "CA9"}),
        # an id no interaction can have: a reason, not the database's overflow (503)
        ("/webhooks/twilio/voice/wait?interaction=99999999999999999999", {"CallSid": "CA9"}),
    ):
        status, answer = await twilio.post_to_hub(path, params)
        assert status == 400, (path, answer)
        assert "error" in answer


@pytest.mark.parametrize(
    "withheld", ["anonymous", "Restricted", "+266696687", "+7378742833", "+2562533"]
)
async def test_a_caller_who_withholds_their_number_is_answered_and_queued(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, withheld: str
) -> None:
    """Twilio's placeholders for withheld caller ids: answered, queued, never merged."""
    for sid in ("CAhidden1", "CAhidden2"):
        status, twiml = await twilio.voice.start_call(caller=withheld, to=OUR_NUMBER, sid=sid)
        assert status == 200, twiml
        assert ElementTree.fromstring(twiml).find("Dial/Conference") is not None
    first, _ = await the_call(sms_hub, "CAhidden1")
    second, _ = await the_call(sms_hub, "CAhidden2")
    assert first != second  # two withheld callers are two contacts, not one customer
    team = await make_team(sms_hub, "support")
    record = await (
        await client.get(f"/api/v1/customers/{first}", headers=team.headers("agent"))
    ).json()
    assert record["name"] == "Withheld number"
    assert [(i["kind"], i["value"]) for i in record["identities"]] == [
        ("anonymous", "twilio:CAhidden1")
    ]
    assert await timeline(sms_hub, first) == [
        ("call", "Incoming call"),
        ("status_change", "Queued in support"),
    ]
