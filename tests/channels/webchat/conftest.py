"""A hub with the web chat: visitors are python-socketio clients on /chat, from a site's origin."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.channels.webchat import WebchatChannel
from hub.config import ChatSiteSettings, Settings, WebchatSettings
from tests.agent_console.test_realtime import Listener
from tests.conftest import FrozenClock

ORIGIN = "https://shop.example.com"
SECRET = "site-identity-secret"


def site(**changes: Any) -> ChatSiteSettings:
    values: dict[str, Any] = {
        "id": "shop",
        "name": "Example Shop",
        "origins": [ORIGIN],
        "identity_secret": SECRET,
        "prechat_email": "optional",
    }
    return ChatSiteSettings(**(values | changes))


@pytest.fixture
def chat_settings() -> WebchatSettings:
    return WebchatSettings(sites=[site()], messages_per_minute=30)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, chat_settings: WebchatSettings) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        log_level="WARNING",
        webchat=chat_settings,
    )


@pytest.fixture
async def chat_hub(settings: Settings, clock: FrozenClock) -> Hub:
    """The hub; the app's cleanup (client fixture) stops it."""
    return await build_hub(settings, run_migrations=False, clock=clock)


@pytest.fixture
async def client(chat_hub: Hub) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(chat_hub))) as client:
        yield client


def chat_channel(hub: Hub) -> WebchatChannel:
    return next(c for c in hub.channels if isinstance(c, WebchatChannel))


class Visitor(Listener):
    """A visitor's widget: a socket.io client on /chat that keeps what the hub sends."""

    def __init__(self) -> None:
        super().__init__("/chat")
        self.token: str | None = None

    async def connect(  # type: ignore[override]
        self,
        url: str,
        *,
        origin: str = ORIGIN,
        site: str = "shop",
        token: str | None = None,
        user: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        auth: dict[str, Any] = {"site": site}
        if token or self.token:
            auth["visitor"] = token or self.token
        if user is not None:
            auth["user"] = user
        await self.client.connect(
            url,
            namespaces=["/chat"],
            auth=auth,
            headers={"Origin": origin},
            transports=["websocket"],
            wait_timeout=10,  # python-socketio's default is 1 s: too short on a loaded machine
        )
        welcome: dict[str, Any] = await self.next("welcome")
        self.token = welcome["visitor"]
        return welcome

    async def say(self, text: str, client_id: str, **more: Any) -> Any:
        return await self.call("message", {"text": text, "client_id": client_id, **more})


@pytest.fixture
async def visitors() -> AsyncIterator[list[Visitor]]:
    made: list[Visitor] = []
    yield made
    for visitor in made:
        with contextlib.suppress(Exception):
            await visitor.client.disconnect()
