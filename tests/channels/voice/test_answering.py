"""How the hub answers a call: IVR menu, place in line, recording consent, callbacks."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from hub.bootstrap import Hub, build_hub
from hub.channels.twilio.setup import configure_twilio
from hub.channels.voice.adapter import VoiceChannel
from hub.config import Settings
from hub.dev.twilio_sim import TwilioSimulator
from tests.channels.sms.conftest import OUR_NUMBER, PUBLIC
from tests.channels.sms.conftest import kept as kept_media
from tests.channels.voice.helpers import CALLER, Client, joined_call, timeline
from tests.channels.voice.test_calls import the_call
from tests.conftest import FrozenClock, make_team

TWO_QUEUES = """
[[queues]]
name = "sales"
team = "support"

[[queues]]
name = "support"
team = "support"
"""


async def use_policy(hub: Hub, tmp_path: Path, text: str) -> None:
    policy = tmp_path / "routing.toml"
    policy.write_text(text)
    hub.settings.routing_policy = str(policy)
    assert hub.routing is not None
    await hub.routing.reload()


async def queue_of(hub: Hub, sid: str) -> str | None:
    async with hub.store.unit_of_work() as uow:
        leg = await uow.calls.by_sid(sid)
        assert leg is not None
        interaction = await uow.interactions.get(leg.interaction_id)
    assert interaction is not None
    assert hub.routing is not None
    return hub.routing.queue_name(interaction.queue_id or -1)


async def test_the_menu_sends_the_caller_to_the_queue_they_choose(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, tmp_path: Path
) -> None:
    await use_policy(sms_hub, tmp_path, TWO_QUEUES)
    sms_hub.settings.twilio.menu = {"1": "sales", "2": "support"}
    status, twiml = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA1")
    assert status == 200
    gather = ElementTree.fromstring(twiml).find("Gather")
    assert gather is not None
    assert gather.get("input") == "dtmf speech"
    assert gather.findtext("Say") == "For sales, press 1. For support, press 2."
    async with sms_hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", "CA1")
    assert event is not None
    assert event.interaction_id is None
    await twilio.voice.press("CA1", "1")
    assert await queue_of(sms_hub, "CA1") == "sales"
    assert twilio.voice.calls["CA1"].wait_url is not None  # waiting in the conference
    assert "Chose sales in the menu" in await timeline(sms_hub, event.customer_id)
    # Speech works too; a wrong key is asked again; nothing at all goes to the number's queue.
    await twilio.voice.start_call(caller="+14155550124", to=OUR_NUMBER, sid="CA2")
    await twilio.voice.press("CA2", speech="Support, please")
    assert await queue_of(sms_hub, "CA2") == "support"
    await twilio.voice.start_call(caller="+14155550125", to=OUR_NUMBER, sid="CA3")
    _, again = await twilio.voice.press("CA3", "9")
    assert "Sorry, I did not get that." in again
    await twilio.voice.press("CA3")
    assert await queue_of(sms_hub, "CA3") == "support"  # what +1 415 555 0000 feeds


async def test_hanging_up_in_the_menu_is_noted_without_work(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, tmp_path: Path
) -> None:
    """Only the number's status callback tells of it: `hub twilio configure` sets it."""
    await use_policy(sms_hub, tmp_path, TWO_QUEUES)
    sms_hub.settings.twilio.menu = {"1": "sales"}
    await configure_twilio(sms_hub.settings, apply=True)
    await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA4")
    await twilio.voice.end_call(sid="CA4", duration=7)
    async with sms_hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", "CA4")
        assert event is not None
        assert await uow.interactions.open_of_customer(event.customer_id) == []
    assert "Call ended in the menu (completed, 7 s)" in await timeline(sms_hub, event.customer_id)


async def test_waiting_callers_hear_their_place_in_line_and_the_wait(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA5")
    await twilio.voice.start_call(caller="+14155550124", to=OUR_NUMBER, sid="CA6")
    first = ElementTree.fromstring(await twilio.voice.hold_music("CA5"))
    assert first.findtext("Say") == "You are next in line."
    assert first.find("Play") is not None
    assert ElementTree.fromstring(await twilio.voice.hold_music("CA6")).findtext("Say") == (
        "You are number 2 in line."  # nobody signed in: no estimate to give
    )
    team = await make_team(sms_hub, "support")
    await client.post(
        "/api/v1/me/state", json={"state": "away", "reason": "lunch"}, headers=team.headers("agent")
    )
    # One agent signed in, no handled calls yet: 2 rounds of the 5-minute default.
    assert ElementTree.fromstring(await twilio.voice.hold_music("CA6")).findtext("Say") == (
        "You are number 2 in line. Your estimated wait is about 10 minutes."
    )


async def test_the_wait_repeats_with_a_fresh_place_in_line(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA15")
    wait = ElementTree.fromstring(await twilio.voice.hold_music("CA15"))
    again = wait.find("Redirect")
    assert again is not None  # the music does not just stop: the wait comes round again
    assert again.get("method") == "POST"
    assert again.text is not None
    assert "/webhooks/twilio/voice/wait?interaction=" in again.text


async def test_static_wait_music_is_fetched_with_get_and_a_failure_never_drops_the_caller(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    sms_hub.settings.twilio.announce_wait = False  # the waitUrl is a plain MP3
    sms_hub.settings.twilio.hold_music_url = "https://static.example.com/music.mp3"
    status, twiml = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA16")
    assert status == 200
    room = ElementTree.fromstring(twiml).find("Dial/Conference")
    assert room is not None
    assert room.get("waitMethod") == "GET"  # static hosts refuse Twilio's default POST
    heard = ElementTree.fromstring(await twilio.voice.hold_music("CA16"))
    assert heard.findtext("Play") == "https://static.example.com/music.mp3"
    # Had the wait failed anyway (here: made to, as a POST would), Twilio ends the Dial: the
    # Dial's action puts the caller back in line rather than the call ending.
    twilio.voice.calls["CA16"].wait_method = "POST"
    assert await twilio.voice.hold_music("CA16") == ""
    call = twilio.voice.calls["CA16"]
    assert call.status != "completed"
    assert call.conference is not None  # back in the conference
    _, interaction = await the_call(sms_hub, "CA16")
    assert [c.sid for c in twilio.voice.in_conference(f"interaction-{interaction}")] == ["CA16"]


async def test_recording_is_announced_and_kept_on_the_timeline(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    sms_hub.settings.twilio.recording = "announce"
    call = await joined_call(sms_hub, client, twilio)
    assert (
        "This call may be recorded for quality and training." in twilio.voice.calls["CA100"].heard
    )
    await twilio.voice.end_call(sid="CA100", duration=30)
    await twilio.settle()
    [recording] = twilio.voice.recordings
    assert recording["RecordingStatus"] == "completed"
    async with sms_hub.store.unit_of_work() as uow:
        kept = await uow.timeline.by_provider_ref("twilio", recording["RecordingSid"])
    assert kept is not None
    assert kept.interaction_id == call.interaction
    assert kept.body is not None
    assert kept.body.startswith("Call recording")
    # The MP3, not the WAV the bare RecordingUrl gives (8 times the size).
    assert kept.attachments[0].url == recording["RecordingUrl"] + ".mp3"
    assert kept.attachments[0].content_type == "audio/mpeg"
    _, (audio,) = await kept_media(sms_hub, recording["RecordingSid"])
    assert audio.size is not None
    assert audio.size > 800
    # Twilio retrying the callback keeps one.
    path = f"/webhooks/twilio/voice/recording?interaction={call.interaction}"
    assert (await twilio.post_to_hub(path, recording))[0] == 204
    assert (await timeline(sms_hub, call.customer)).count(kept.body) == 1


async def test_asking_to_record_records_only_with_consent(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    sms_hub.settings.twilio.recording = "ask"
    _, twiml = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA7")
    assert "To allow recording, press 1." in (
        ElementTree.fromstring(twiml).findtext("Gather/Say") or ""
    )
    _, agreed = await twilio.voice.press("CA7", "1")
    conference = ElementTree.fromstring(agreed).find("Dial/Conference")
    assert conference is not None
    assert conference.get("record") == "record-from-start"
    await twilio.voice.start_call(caller="+14155550124", to=OUR_NUMBER, sid="CA8")
    _, declined = await twilio.voice.press("CA8")  # no key at all
    conference = ElementTree.fromstring(declined).find("Dial/Conference")
    assert conference is not None
    assert conference.get("record") is None
    async with sms_hub.store.unit_of_work() as uow:
        yes = await uow.timeline.by_provider_ref("twilio", "CA7:consent")
        no = await uow.timeline.by_provider_ref("twilio", "CA8:consent")
    assert yes is not None
    assert yes.body == "Caller agreed to recording"
    assert no is not None
    assert no.body == "Caller declined recording"


async def test_after_hours_a_callback_keeps_the_place_in_line(
    sms_hub: Hub,
    client: Client,
    twilio: TwilioSimulator,
    tmp_path: Path,
    clock: FrozenClock,
) -> None:
    await use_policy(
        sms_hub,
        tmp_path,
        '[[calendars]]\nname = "late"\ntimezone = "UTC"\n[calendars.week]\nmon = ["10:00-18:00"]\n'
        '[[queues]]\nname = "support"\nteam = "support"\ncalendar = "late"\n'
        'closed_action = "callback"\nclosed_message = "We open at ten."\n',
    )
    _, twiml = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA9")
    root = ElementTree.fromstring(twiml)
    assert root.findtext("Say") == "We open at ten."
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("action", "").startswith(PUBLIC + "/webhooks/twilio/voice/callback")
    _, thanks = await twilio.voice.press("CA9", "1")
    assert "You keep your place in line." in thanks
    await twilio.settle()
    assert twilio.voice.calls["CA9"].status == "completed"  # the caller hung up, as asked
    async with sms_hub.store.unit_of_work() as uow:
        leg = await uow.calls.by_sid("CA9")
        assert leg is not None
        interaction = await uow.interactions.get(leg.interaction_id)
    assert interaction is not None
    assert interaction.state.value == "queued"
    assert f"Callback requested to {CALLER}" in await timeline(sms_hub, interaction.customer_id)
    # At ten the queue opens: an agent takes it, and joining rings the customer back.
    clock.advance(3600)
    team = await make_team(sms_hub, "support")
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    offers = (await (await client.get("/api/v1/me/offers", headers=agent)).json())["offers"]
    assert [o["interaction_id"] for o in offers] == [interaction.id]
    await client.post(f"/api/v1/interactions/{interaction.id}/accept", headers=agent)
    path = f"/api/v1/interactions/{interaction.id}/call/join"
    assert (await client.post(path, json={}, headers=agent)).status == 201
    await twilio.settle()
    on_the_call = twilio.voice.in_conference(f"interaction-{interaction.id}")
    assert sorted(c.to for c in on_the_call) == sorted(
        [f"client:agent-{team.user_ids['agent']}", CALLER]  # rung together: either answers first
    )


async def test_a_recording_owed_when_the_hub_died_is_fetched_at_its_next_start(
    sms_hub: Hub,
    client: Client,
    twilio: TwilioSimulator,
    settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sms_hub.settings.twilio.recording = "announce"
    (voice,) = [c for c in sms_hub.channels if isinstance(c, VoiceChannel)]
    # The process dies right after the recording callback's commit: the fetch never runs.
    monkeypatch.setattr(voice, "spawn", lambda work: work.close())
    await joined_call(sms_hub, client, twilio)
    await twilio.voice.end_call(sid="CA100", duration=30)
    await twilio.settle()
    [recording] = twilio.voice.recordings
    async with sms_hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", recording["RecordingSid"])
    assert event is not None
    assert (event.attachments[0].path, event.attachments[0].error) == (None, None)  # owed
    restarted = await build_hub(settings, run_migrations=False, clock=clock)
    restarted.settings.twilio.api_base_url = twilio.url
    await restarted.start()
    try:
        _, (audio,) = await kept_media(restarted, recording["RecordingSid"])
        assert audio.content_type == "audio/mpeg"
        assert audio.size is not None
    finally:
        await restarted.stop()
