"""A hub with the SMS channel, and the Twilio simulator pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.config import Settings, TwilioSettings
from hub.dev.twilio_sim import TwilioSimulator
from hub.domain.timeline import Attachment
from tests.conftest import FrozenClock

ACCOUNT = "AC00000000000000000000000000000000"
TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://hub.example.com"
OUR_NUMBER = "+14155550000"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        public_url=PUBLIC,
        log_level="WARNING",
        twilio=TwilioSettings(
            account_sid=ACCOUNT, auth_token=TOKEN, numbers={"(415) 555-0000": "support"}
        ),
    )


@pytest.fixture
async def sms_hub(settings: Settings, clock: FrozenClock) -> Hub:
    """The hub; the app's cleanup (client fixture) stops it."""
    return await build_hub(settings, run_migrations=False, clock=clock)


@pytest.fixture
async def client(sms_hub: Hub) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(sms_hub))) as client:
        yield client


class SettledTwilio(TwilioSimulator):
    """The simulator; after each webhook it waits until the hub delivered what it committed
    (routing, pushes), as a test would wait before looking."""

    def __init__(self, hub: Hub, **options: Any) -> None:
        super().__init__(**options)
        self._hub = hub
        deliver = self.account.deliver  # every webhook to a number's or a call's URL

        async def settled(*args: Any, **kwargs: Any) -> Any:
            delivered = await deliver(*args, **kwargs)
            await hub.settle()
            return delivered

        self.account.deliver = settled  # type: ignore[method-assign]

    async def post_to_hub(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        answer = await super().post_to_hub(path, params)
        await self._hub.settle()
        return answer


@pytest.fixture
async def twilio(sms_hub: Hub, client: TestClient[Any, Any]) -> AsyncIterator[TwilioSimulator]:
    simulator = SettledTwilio(
        sms_hub,
        account_sid=ACCOUNT,
        auth_token=TOKEN,
        hub_url=str(client.make_url("")),
        public_url=PUBLIC,
        numbers=[OUR_NUMBER],
    )
    await simulator.start()
    # The real twilio library talks to the simulator: only its base URL changes.
    sms_hub.settings.twilio.api_base_url = simulator.url
    for channel in sms_hub.channels:
        if hasattr(channel, "backoff_seconds"):
            channel.backoff_seconds = 0.01  # keep retries quick in tests
    if sms_hub.calls is not None:
        sms_hub.calls.conference.backoff_seconds = 0.01  # type: ignore[attr-defined]
    yield simulator
    await simulator.stop()


async def kept(hub: Hub, sid: str) -> tuple[int, tuple[Attachment, ...]]:
    """Wait for the fetch (it runs after the webhook is answered); the event's attachments."""
    for _ in range(200):
        async with hub.store.unit_of_work() as uow:
            event = await uow.timeline.by_provider_ref("twilio", sid)
        assert event is not None
        if all(a.path or a.error for a in event.attachments):
            return event.id, event.attachments
        await asyncio.sleep(0.02)
    raise AssertionError("media never fetched")
