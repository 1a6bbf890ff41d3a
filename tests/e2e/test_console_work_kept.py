"""The console never loses an agent's work: reloads, second tabs, missed offers, logging out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from hub.bootstrap import Hub
from hub.dev.twilio_sim import TwilioSimulator
from tests.channels.sms.conftest import OUR_NUMBER
from tests.conftest import FrozenClock, make_team
from tests.e2e.test_console import log_in

Client = TestClient[Any, Any]


async def test_a_reload_and_a_second_tab_reopen_the_work_and_a_missed_offer_comes_back(
    sms_hub: Hub,
    client: Client,
    twilio: TwilioSimulator,
    browser: Browser,
    shots: Path,
    clock: FrozenClock,
) -> None:
    base = str(client.make_url("")).rstrip("/")
    await make_team(sms_hub, "support")
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    agent = await context.new_page()
    await log_in(agent, base, "agent")
    await agent.get_by_role("button", name="Available").click()
    await expect(agent.locator("#presence")).to_have_text("available")

    # An offer that rings out: the agent is shown as missed, and the work comes back.
    status, _ = await twilio.send_sms(sender="+14155550123", to=OUR_NUMBER, body="Hello?")
    assert status == 200
    offer = agent.get_by_role("alertdialog")
    await expect(offer).to_be_visible(timeout=10000)
    clock.advance(21)
    await expect(agent.locator("#presence")).to_have_text(
        "missed an offer: press Available to get work", timeout=10000
    )
    await expect(offer).to_have_count(0)
    await agent.screenshot(path=str(shots / "1-missed.png"))
    clock.advance(1)
    await agent.get_by_role("button", name="Available").click()
    await expect(offer).to_be_visible(timeout=10000)
    await agent.keyboard.press("a")
    panel = agent.get_by_role("tabpanel")
    await expect(panel).to_contain_text("Hello?", timeout=10000)

    # A reload: the work the agent holds comes back by itself, no new login.
    await agent.reload()
    await expect(agent.get_by_role("tabpanel")).to_contain_text("Hello?", timeout=10000)
    await expect(agent.get_by_label("Username")).to_have_count(0)
    await agent.screenshot(path=str(shots / "2-after-reload.png"))

    # A second tab of the same browser: logged in already, with the same work.
    second = await context.new_page()
    await second.goto(f"{base}/console/")
    await expect(second.get_by_role("tabpanel")).to_contain_text("Hello?", timeout=10000)
    await second.screenshot(path=str(shots / "3-second-tab.png"))

    # Logging out in one tab ends the session everywhere (the token is revoked).
    await second.get_by_role("button", name="Log out").click()
    await expect(second.get_by_label("Username")).to_be_visible()
    await expect(agent.get_by_label("Username")).to_be_visible(timeout=10000)
    await expect(agent.get_by_role("alert")).to_contain_text("logged out")
    await agent.screenshot(path=str(shots / "4-logged-out-everywhere.png"))
    await context.close()
