"""A shop's page (another origin) embeds the chat widget; a visitor chats with an agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, expect

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.config import Settings, WebchatSettings
from hub.dev.dovecot import free_port
from tests.channels.webchat.conftest import site
from tests.conftest import FrozenClock, make_team
from tests.e2e.test_console import available_agent

Client = TestClient[Any, Any]
SHOP_PORT = free_port()
SHOP = f"http://127.0.0.1:{SHOP_PORT}"
HOSTILE = '<img src=x onerror="window.owned=1">'


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    chat = WebchatSettings(sites=[site(origins=[SHOP], prechat_email="required")])
    return Settings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        log_level="WARNING",
        webchat=chat,
    )


@pytest.fixture
async def chat_hub(settings: Settings, clock: FrozenClock) -> Hub:
    return await build_hub(settings, run_migrations=False, clock=clock)


@pytest.fixture
async def client(chat_hub: Hub) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(chat_hub))) as client:
        yield client


@pytest.fixture
async def shop(client: Client) -> AsyncIterator[str]:
    """The shop's own web server, embedding the widget with one script tag."""
    hub = str(client.make_url("")).rstrip("/")

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=f"""<!doctype html><html><head><title>Example Shop</title></head>
<body><h1>Example Shop</h1><p>Our best teapots.</p>
<script src="{hub}/webchat/widget.js" data-site="shop" async></script></body></html>""",
        )

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", SHOP_PORT).start()
    yield SHOP
    await runner.cleanup()


async def test_a_visitor_on_the_shop_chats_with_an_agent(
    chat_hub: Hub, client: Client, shop: str, browser: Browser, shots: Path
) -> None:
    base = str(client.make_url("")).rstrip("/")
    await make_team(chat_hub, "support")
    agent = await available_agent(browser, base)
    visitor = await browser.new_page(viewport={"width": 1280, "height": 720})
    await visitor.goto(shop)
    await visitor.get_by_role("button", name="Chat with us").click()
    chat = visitor.get_by_role("dialog", name="Chat with us")
    await expect(chat).to_contain_text("Hello! How can we help?")
    await chat.get_by_label("Your name").fill("Ann")
    await chat.get_by_label("Message").fill("Is the blue teapot in stock?")
    await chat.get_by_label("Message").press("Enter")
    email = chat.get_by_label("Email")  # the site asks for it: the browser holds the form
    assert await email.evaluate("input => input.validity.valueMissing") is True
    await expect(chat.locator(".msg.inbound")).to_have_count(0)
    await email.fill("ann@example.com")
    await chat.get_by_label("Message").fill("Is the blue teapot in stock?")
    await chat.get_by_role("button", name="Send").click()
    await expect(chat.locator(".msg.inbound")).to_contain_text("Is the blue teapot in stock?")
    await visitor.screenshot(path=str(shots / "1-visitor-asks.png"))

    offer = agent.get_by_role("alertdialog")
    await expect(offer).to_contain_text("WEBCHAT from Ann", timeout=10000)
    await agent.keyboard.press("a")
    await expect(chat).to_contain_text("agent joined the chat.")
    panel = agent.get_by_role("tabpanel")
    await expect(panel).to_contain_text("Is the blue teapot in stock?")  # the chat's tab is open
    # Typed key by key, as a person types: typing signals go at most one every 2 s.
    await chat.get_by_label("Message").press_sequentially(HOSTILE, delay=80)
    await expect(panel).to_contain_text("The customer is typing…")
    await chat.get_by_label("Message").press("Enter")
    await expect(panel.locator(".event.inbound").last).to_contain_text(HOSTILE)  # as text
    reply = panel.get_by_label("Reply", exact=True)
    await reply.press_sequentially("Yes, two left. Shall I hold one?", delay=80)
    await expect(chat).to_contain_text("agent is typing…")
    await reply.press("Control+Enter")
    answer = chat.locator(".msg.outbound").last
    await expect(answer).to_contain_text("Yes, two left. Shall I hold one?")
    await expect(answer).to_contain_text("agent")
    await expect(chat.locator(".msg.inbound").last).to_contain_text("Seen")  # the agent read it
    await expect(panel.locator(".event.outbound").last).to_contain_text("read")  # and Ann did
    assert await visitor.evaluate("window.owned") is None
    assert await agent.evaluate("window.owned") is None
    await visitor.screenshot(path=str(shots / "2-visitor-answered.png"))
    await agent.screenshot(path=str(shots / "3-agent-chat.png"))

    # Ann reloads the page: the same conversation, and the agent still with her.
    await visitor.reload()
    chat = visitor.get_by_role("dialog", name="Chat with us")
    await expect(chat).to_contain_text("Yes, two left. Shall I hold one?")
    await expect(chat.get_by_role("status")).to_contain_text("You are chatting with agent")

    await panel.get_by_role("button", name="Wrap up").click()
    await expect(chat).to_contain_text("How did we do?")
    await chat.get_by_role("button", name="5 of 5 stars").click()
    await chat.get_by_label("Anything to add? (optional)").fill("Lovely")
    await chat.get_by_role("button", name="Send rating").click()
    await expect(chat).to_contain_text("Thank you for your rating.")
    await visitor.screenshot(path=str(shots / "4-rated.png"))
    async with chat_hub.store.unit_of_work() as uow:
        interaction = await uow.interactions.get(1)
    assert interaction is not None
    assert (interaction.csat_score, interaction.csat_comment) == (5, "Lovely")
