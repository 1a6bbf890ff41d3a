"""A fax in the console: offered with its pages, read by OCR, answered with a fax."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from hub.bootstrap import Hub
from hub.dev.telnyx_sim import TelnyxSimulator
from tests.channels.fax.conftest import (
    CUSTOMER_FAX,
    OUR_FAX,
    client,
    fax_hub,
    needs_tesseract,
    page,
    pdf_of,
    settings,
    telnyx,
)
from tests.conftest import make_team
from tests.e2e.test_console import available_agent

__all__ = ["client", "fax_hub", "settings", "telnyx"]
Client = TestClient[Any, Any]
pytestmark = needs_tesseract


async def test_an_agent_reads_a_fax_and_faxes_back(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator, browser: Browser, shots: Path
) -> None:
    base = str(client.make_url("")).rstrip("/")
    await make_team(fax_hub, "support")
    agent = await available_agent(browser, base)
    document = pdf_of(page(["Order 5521", "请尽快发货"]), page(["Page two: terms"]))
    status, _ = await telnyx.receive_fax(sender=CUSTOMER_FAX, to=OUR_FAX, document=document)
    assert status == 200
    offer = agent.get_by_role("alertdialog")
    await expect(offer).to_contain_text("FAX from", timeout=10000)
    await agent.keyboard.press("a")
    panel = agent.get_by_role("tabpanel")
    fax = panel.locator(".event.inbound").first
    await expect(fax).to_contain_text("请尽快发货", timeout=30000)  # OCR'd, pushed to the tab
    await expect(fax).to_contain_text("2 page(s) · text read")
    pages = fax.get_by_role("img")
    await expect(pages).to_have_count(2)
    assert await pages.first.evaluate("img => img.complete && img.naturalWidth > 0") is True
    await panel.get_by_label("Reply", exact=True).fill("Shipped today. 今天已发货。")
    await panel.get_by_role("button", name="Send fax").click()
    sent = panel.locator(".event.outbound").last
    await expect(sent).to_contain_text("delivered", timeout=10000)
    await agent.screenshot(path=str(shots / "1-fax.png"), full_page=True)
    await telnyx.settle()
    (outgoing,) = telnyx.sent.values()
    assert outgoing.document is not None
    assert outgoing.document.startswith(b"%PDF-")
