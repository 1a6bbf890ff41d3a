"""An email answered from the console: formatting and an attachment, through real servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, expect

from hub.bootstrap import Hub
from hub.dev.dovecot import Dovecot
from tests.channels.email.conftest import (
    ADDRESS,
    Outbox,
    client,
    dovecot,
    fixture_bytes,
    mail_hub,
    outbox,
    settings,
)
from tests.conftest import make_team
from tests.e2e.test_console import available_agent

__all__ = ["client", "dovecot", "mail_hub", "outbox", "settings"]

pytestmark = pytest.mark.skipif(not Dovecot.available(), reason="needs Dovecot")


async def test_an_agent_answers_an_email_with_formatting_and_a_file(
    mail_hub: Hub,
    client: TestClient[Any, Any],
    dovecot: Dovecot,
    outbox: Outbox,
    browser: Browser,
    shots: Path,
) -> None:
    base = str(client.make_url("")).rstrip("/")
    await make_team(mail_hub, "support")
    agent = await available_agent(browser, base)
    dovecot.deliver(ADDRESS, fixture_bytes("outlook_reply.eml"))
    offer = agent.get_by_role("alertdialog")
    await expect(offer).to_contain_text("EMAIL from Müller, Hans", timeout=15000)
    await agent.keyboard.press("a")
    panel = agent.get_by_role("tabpanel")
    await expect(panel).to_contain_text("please go ahead with the exchange")
    editor = panel.get_by_role("textbox", name="Email reply")
    await editor.click()
    await agent.keyboard.type("We will send the ")
    await panel.get_by_role("button", name="Bold").click()
    await agent.keyboard.type("new one")
    await panel.get_by_role("button", name="Bold").click()
    await agent.keyboard.type(" today.")
    await panel.get_by_label("Attach files").set_input_files(
        files=[{"name": "label.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n"}]
    )
    await agent.screenshot(path=str(shots / "1-composing.png"))
    await panel.get_by_role("button", name="Send email").click()
    sent_event = panel.locator(".event.outbound")
    await expect(sent_event).to_contain_text("We will send the new one today.")
    await expect(sent_event).to_contain_text("· sent")  # the SMTP server took it
    [sent] = outbox.messages
    assert sent["To"] == "Hans.Mueller@example.de"
    assert sent["Subject"] == "RE: Order 1234"
    html = sent.get_body(preferencelist=("html",))
    assert html is not None
    assert "<b>new one</b>" in html.get_content()
    [attached] = list(sent.iter_attachments())
    assert attached.get_filename() == "label.pdf"
    await agent.screenshot(path=str(shots / "2-sent.png"))
