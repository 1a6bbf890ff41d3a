"""MMS media fetched from Twilio (the simulator) and kept, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub, build_hub
from hub.channels.sms import SmsChannel
from hub.config import Settings
from hub.dev.twilio_sim import TwilioSimulator
from tests.channels.sms.conftest import OUR_NUMBER, kept
from tests.conftest import FrozenClock, make_team

Client = TestClient[Any, Any]
PICTURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture(autouse=True)
def data_dir(sms_hub: Hub, tmp_path: Path) -> Path:
    sms_hub.settings.data_dir = str(tmp_path / "data")
    return tmp_path / "data"


async def test_mms_media_is_fetched_kept_and_served_to_those_who_may_see_it(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, data_dir: Path
) -> None:
    url = twilio.host_media("photo", PICTURE, "image/png")
    status, _ = await twilio.send_sms(
        sender="+14155550123",
        to=OUR_NUMBER,
        body="see photo",
        media=[(url, "image/png")],
        sid="MM1",
    )
    assert status == 200
    event_id, attachments = await kept(sms_hub, "MM1")
    (photo,) = attachments
    assert photo.size == len(PICTURE)
    assert photo.path is not None
    assert Path(photo.path).is_relative_to(data_dir)
    team = await make_team(sms_hub, "support")
    response = await client.get(
        f"/api/v1/events/{event_id}/attachments/0", headers=team.headers("agent")
    )
    assert response.status == 200
    assert await response.read() == PICTURE
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    response = await client.get(
        f"/api/v1/events/{event_id}/attachments/0", headers=team.headers("marketer")
    )
    assert response.status == 403
    response = await client.get(
        f"/api/v1/events/{event_id}/attachments/1", headers=team.headers("agent")
    )
    assert response.status == 404
    other = await make_team(sms_hub, "sales", suffix="-s")
    response = await client.get(
        f"/api/v1/events/{event_id}/attachments/0", headers=other.headers("agent")
    )
    assert response.status == 404


async def test_a_flaky_media_link_is_retried(sms_hub: Hub, twilio: TwilioSimulator) -> None:
    twilio.fail_media(2)
    url = twilio.host_media("flaky", PICTURE, "image/png")
    await twilio.send_sms(
        sender="+14155550123", to=OUR_NUMBER, body="", media=[(url, "image/png")], sid="MM2"
    )
    _, (photo,) = await kept(sms_hub, "MM2")
    assert photo.size == len(PICTURE)
    assert photo.error is None


async def test_a_dead_media_link_is_reported_and_the_message_kept(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    url = twilio.url + "/media/gone"
    status, _ = await twilio.send_sms(
        sender="+14155550123",
        to=OUR_NUMBER,
        body="lost photo",
        media=[(url, "image/jpeg")],
        sid="MM3",
    )
    assert status == 200
    event_id, (photo,) = await kept(sms_hub, "MM3")
    assert photo.path is None
    assert photo.error is not None
    assert "404" in photo.error
    team = await make_team(sms_hub, "support")
    response = await client.get(
        f"/api/v1/events/{event_id}/attachments/0", headers=team.headers("agent")
    )
    assert response.status == 404
    assert "not kept" in (await response.json())["error"]["message"]


async def test_media_not_fetched_when_the_hub_died_is_fetched_at_its_next_start(
    sms_hub: Hub,
    twilio: TwilioSimulator,
    settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (sms,) = [c for c in sms_hub.channels if isinstance(c, SmsChannel)]
    # The process dies right after the webhook's commit: the fetch it owed never runs.
    monkeypatch.setattr(sms, "spawn", lambda work: work.close())
    url = twilio.host_media("late", PICTURE, "image/png")
    status, _ = await twilio.send_sms(
        sender="+14155550123", to=OUR_NUMBER, body="photo", media=[(url, "image/png")], sid="MM9"
    )
    assert status == 200
    async with sms_hub.store.unit_of_work() as uow:
        event = await uow.timeline.by_provider_ref("twilio", "MM9")
    assert event is not None
    assert event.attachments[0].path is None
    assert event.attachments[0].error is None  # owed

    restarted = await build_hub(settings, run_migrations=False, clock=clock)
    await restarted.start()
    try:
        _, attachments = await kept(restarted, "MM9")
        assert attachments[0].size == len(PICTURE)
    finally:
        await restarted.stop()
