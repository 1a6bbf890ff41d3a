"""End-to-end: the built console in Debian's headless Chromium, driven by Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from hub.agent_console.routes.console import STATIC
from tests.channels.sms.conftest import client, settings, sms_hub, twilio
from tests.conftest import empty_tables

__all__ = ["browser", "client", "settings", "shots", "sms_hub", "twilio"]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not (STATIC / "index.html").exists(),
    reason="needs Debian's chromium (scripts/ensure-services) and the built console (make console)",
)


@pytest.fixture
async def database_url(migrated_databases: dict[str, str]) -> str:
    """The browser tests run on SQLite only: the store's behaviour is tested on both elsewhere."""
    url = migrated_databases["sqlite"]
    await empty_tables(url)
    return url


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        await launched.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """Where this test's screenshots go (test-artifacts/, kept by CI; look at them)."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
