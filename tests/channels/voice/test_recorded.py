"""Payloads as Twilio's documentation shows them (fixtures/), replayed signed at the hub.

One call's life, in the order Twilio reports it (and one pair out of order, as it may):
the incoming call, the conference's events, the Dial's action, the hang-up's status callback
and the conference recording; and a caller who withholds their number.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

from hub.bootstrap import Hub
from hub.dev.twilio_sim import TwilioSimulator
from hub.domain.identity import IdentityKind
from tests.channels.voice.helpers import Client, timeline

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str, **values: object) -> dict[str, str]:
    """A fixture's form, its placeholders filled in; its _source note dropped."""
    form = json.loads((FIXTURES / name).read_text())
    return {k: str(v).format(**values) for k, v in form.items() if not k.startswith("_")}


async def replay(twilio: TwilioSimulator, url: str, name: str, **values: object) -> tuple[int, str]:
    """POST a fixture to one of the hub's URLs (as its TwiML named it), signed as Twilio does."""
    path = url.removeprefix(twilio.public_url)
    return await twilio.post_to_hub(path, recorded(name, **values))


async def test_a_recorded_call_is_answered_queued_abandoned_and_its_recording_kept(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    status, twiml = await replay(twilio, "/webhooks/twilio/voice", "incoming_call.json")
    assert status == 200
    room = ElementTree.fromstring(twiml).find("Dial/Conference")
    assert room is not None
    events_url = room.get("statusCallback", "")
    interaction = int(parse_qs(urlsplit(events_url).query)["interaction"][0])
    assert room.text == f"interaction-{interaction}"
    call = recorded("incoming_call.json")["CallSid"]

    # The join, then Twilio's events out of order: the unhold (5) before the hold (4).
    for name in ("join", "unhold", "hold"):
        fixture = f"conference_participant_{name}.json"
        assert (await replay(twilio, events_url, fixture, interaction=interaction))[0] == 204
    async with sms_hub.store.unit_of_work() as uow:
        leg = await uow.calls.by_sid(call)
    assert leg is not None
    assert (leg.conference_sid, leg.conference_sequence, leg.held) == (
        recorded("conference_participant_join.json", interaction=interaction)["ConferenceSid"],
        5,
        False,
    )

    # The Dial ended with the caller still there and the work still waiting: back in line.
    dial = ElementTree.fromstring(twiml).find("Dial")
    assert dial is not None
    status, again = await replay(twilio, dial.get("action", ""), "dial_action_completed.json")
    assert status == 200
    assert f">interaction-{interaction}</Conference>" in again

    # They hang up: the conference says they left, the number's status callback says how.
    leave = "conference_participant_leave.json"
    assert (await replay(twilio, events_url, leave, interaction=interaction))[0] == 204
    status_url = "/webhooks/twilio/voice/status"
    assert (await replay(twilio, status_url, "call_status_completed.json"))[0] == 204
    async with sms_hub.store.unit_of_work() as uow:
        found = await uow.interactions.get(interaction)
    assert found is not None
    assert found.state.value == "abandoned"
    lines = await timeline(sms_hub, found.customer_id)
    assert "Call ended (completed, 64 s)" in lines

    recording_url = f"/webhooks/twilio/voice/recording?interaction={interaction}"
    assert (await replay(twilio, recording_url, "recording_completed.json"))[0] == 204
    params = recorded("recording_completed.json")
    async with sms_hub.store.unit_of_work() as uow:
        kept = await uow.timeline.by_provider_ref("twilio", params["RecordingSid"])
    assert kept is not None
    assert kept.body == "Call recording (63 s)"
    assert kept.attachments[0].url == params["RecordingUrl"] + ".mp3"


async def test_a_recorded_withheld_caller_is_answered_as_a_contact_of_their_own(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    status, twiml = await replay(twilio, "/webhooks/twilio/voice", "incoming_call_withheld.json")
    assert status == 200
    assert "<Conference" in twiml
    sid = recorded("incoming_call_withheld.json")["CallSid"]
    async with sms_hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", sid)
        assert event is not None
        customer = await uow.customers.get(event.customer_id)
        identities = await uow.customers.identities_of([event.customer_id])
    assert customer is not None
    assert customer.display_name == "Withheld number"
    assert [i.kind for i in identities] == [IdentityKind.ANONYMOUS]
    assert event.data["from"] == "withheld"
