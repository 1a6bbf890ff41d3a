"""An agent's day in the real console, and the supervisor's board beside it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from hub.bootstrap import Hub
from hub.dev.twilio_sim import TwilioSimulator
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from tests.channels.sms.conftest import OUR_NUMBER
from tests.conftest import PASSWORD, make_team

Client = TestClient[Any, Any]
CUSTOMER_PHONE = "+14155550123"
HOSTILE_NAME = '<img src=x onerror="window.owned=1">Ann'


async def log_in(page: Page, base: str, username: str, hash_: str = "") -> None:
    await page.goto(f"{base}/console/{hash_}")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()


async def available_agent(browser: Browser, base: str) -> Page:
    """The agent's console, logged in and available, at 1280x720."""
    page = await browser.new_page(viewport={"width": 1280, "height": 720})
    await log_in(page, base, "agent")
    await page.get_by_role("button", name="Available").click()
    await expect(page.locator("#presence")).to_have_text("available")
    return page


async def test_an_agent_takes_an_sms_with_the_earlier_email_on_the_record(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, browser: Browser, shots: Path
) -> None:
    base = str(client.make_url("")).rstrip("/")
    team = await make_team(sms_hub, "support")
    admin = team.headers("admin")
    async with sms_hub.store.unit_of_work() as uow:
        support = await uow.accounts.team_by_name("support")
    assert support is not None
    created = await client.post(
        "/api/v1/customers",
        json={
            "team_id": support.id,
            "name": HOSTILE_NAME,
            "identities": [
                {"kind": "email", "value": "ann@example.com", "verified": True},
                {"kind": "phone", "value": CUSTOMER_PHONE, "verified": True},
            ],
        },
        headers=admin,
    )
    assert created.status == 201, await created.text()
    customer_id = (await created.json())["id"]
    # Yesterday Ann wrote an email; it was answered and closed.
    earlier = await sms_hub.receive(
        InboundMessage(
            channel=Channel.EMAIL,
            sender=IdentityRef(IdentityKind.EMAIL, "ann@example.com"),
            received_at=sms_hub.clock() - timedelta(days=1),
            body="My parcel 4411 never arrived.",
            provider="email",
            provider_ref="<earlier@example.com>",
            subject="Parcel 4411",
        )
    )
    response = await client.post(
        f"/api/v1/interactions/{earlier.interaction_id}/close", json={}, headers=admin
    )
    assert response.status == 200

    board = await browser.new_page(viewport={"width": 1280, "height": 720})
    await log_in(board, base, "supervisor", "#board")
    queues = board.get_by_role("table", name="Queues")
    await expect(queues).to_contain_text("support")

    agent = await browser.new_page(viewport={"width": 1280, "height": 720})
    await log_in(agent, base, "agent")
    await expect(agent.locator("#presence")).to_have_text("offline")

    # The customer texts while nobody is available: the board shows one waiting.
    status, _ = await twilio.send_sms(
        sender=CUSTOMER_PHONE, to=OUR_NUMBER, body="Any news on 4411?"
    )
    assert status == 200
    waiting = queues.get_by_role("row", name="support").get_by_role("cell").nth(2)
    await expect(waiting).to_have_text("1", timeout=10000)
    await board.screenshot(path=str(shots / "1-board-one-waiting.png"))

    await agent.get_by_role("button", name="Available").click()
    await expect(agent.locator("#presence")).to_have_text("available")
    offer = agent.get_by_role("alertdialog")
    await expect(offer).to_be_visible(timeout=10000)
    await expect(offer).to_contain_text("SMS from")
    await expect(offer).to_contain_text("My parcel 4411 never arrived.")  # the earlier email
    await expect(offer).to_contain_text("Any news on 4411?")
    await expect(offer).to_contain_text(HOSTILE_NAME)  # shown as text, never as markup
    assert await agent.evaluate("window.owned") is None
    assert await offer.locator("img").count() == 0
    await agent.screenshot(path=str(shots / "2-offer.png"))

    await agent.keyboard.press("a")  # accept with the keyboard
    panel = agent.get_by_role("tabpanel")
    await expect(panel).to_contain_text("Any news on 4411?", timeout=10000)
    await expect(panel).to_contain_text("My parcel 4411 never arrived.")
    await panel.get_by_text("Tags and fields").click()
    await panel.get_by_label("Tags").fill("vip, parcel")
    await panel.get_by_label("Custom fields").fill("tier=gold")
    await panel.get_by_role("button", name="Save customer").click()
    await expect(agent.get_by_role("status")).to_have_text("Customer saved.")
    record = await (await client.get(f"/api/v1/customers/{customer_id}", headers=admin)).json()
    assert (record["tags"], record["custom_fields"]) == (["vip", "parcel"], {"tier": "gold"})
    reply = panel.get_by_label("Reply", exact=True)
    await reply.fill("It left our depot this morning.")
    await reply.press("Control+Enter")
    sent = panel.locator(".event.outbound")
    await expect(sent).to_contain_text("It left our depot")
    await expect(sent).to_contain_text("delivered")  # pushed as Twilio reports sent, then delivered
    await twilio.settle()
    assert [m.body for m in twilio.messages.values()] == ["It left our depot this morning."]
    await agent.screenshot(path=str(shots / "3-replied.png"))

    await panel.get_by_label("Disposition").select_option("resolved")
    await panel.get_by_role("button", name="Wrap up").click()
    await expect(agent.get_by_role("tabpanel")).to_have_count(0)
    await expect(waiting).to_have_text("0")
    await expect(board.get_by_role("table", name="Agents")).to_contain_text("available")
    await board.screenshot(path=str(shots / "4-board-after.png"))
    assert await agent.evaluate("window.owned") is None

    # The supervisor looks at the intervals and sends the agent on a break.
    await queues.get_by_role("row", name="support").get_by_role("button", name="Report").click()
    await expect(
        board.get_by_role("img", name="Volume and service level by interval")
    ).to_be_visible()
    intervals = board.get_by_role("table", name="Intervals").get_by_role("row")
    await expect(intervals).to_have_count(17)  # a heading and the last 16 half hours
    await board.get_by_role("button", name="Set agent away").click()
    await expect(agent.locator("#presence")).to_have_text("away (set by supervisor)")
    await board.screenshot(path=str(shots / "5-board-report.png"), full_page=True)


async def test_an_agent_works_a_phone_call_from_the_console(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, browser: Browser, shots: Path
) -> None:
    base = str(client.make_url("")).rstrip("/")
    await make_team(sms_hub, "support")
    agent = await available_agent(browser, base)
    status, _ = await twilio.voice.start_call(caller=CUSTOMER_PHONE, to=OUR_NUMBER, sid="CAe2e")
    assert status == 200
    offer = agent.get_by_role("alertdialog")
    await expect(offer).to_contain_text("VOICE from", timeout=10000)
    await offer.get_by_role("button", name="Accept (A)").click()
    controls = agent.get_by_role("group", name="Call controls")
    await controls.get_by_label("My phone number").fill("+14155550177")
    await controls.get_by_role("button", name="Answer on phone").click()
    await expect(controls.get_by_role("list")).to_contain_text("agent: +14155550177")
    await twilio.settle()
    conference = next(c for c in twilio.voice.conferences.values() if c.status == "in-progress")
    assert [twilio.voice.calls[s].to for s in conference.participants] == [
        OUR_NUMBER,
        "+14155550177",
    ]
    await controls.get_by_role("button", name="Hold / resume").click()
    await expect(controls.get_by_role("list")).to_contain_text("on hold")
    assert twilio.voice.calls["CAe2e"].hold
    panel = agent.get_by_role("tabpanel")
    await expect(panel.locator(".timeline")).to_contain_text("Customer on hold")  # pushed live
    # A supervisor finds the call on the board and listens in on a phone.
    board = await browser.new_page(viewport={"width": 1280, "height": 720})
    await log_in(board, base, "supervisor", "#board")
    calls = board.get_by_role("table", name="Calls")
    await expect(calls).to_contain_text("+14155550123", timeout=10000)
    await board.get_by_label("Listen on phone number").fill("+14155550166")
    await calls.get_by_role("button", name="listen on call").click()
    await expect(board.get_by_role("status")).to_contain_text("listen on call")
    await twilio.settle()
    listening = [c for c in twilio.voice.calls.values() if c.to == "+14155550166"]
    assert len(listening) == 1
    assert listening[0].muted
    await board.screenshot(path=str(shots / "2-board-calls.png"))
    await agent.screenshot(path=str(shots / "1-call-on-hold.png"))
    await controls.get_by_role("button", name="Hang up").click()
    await expect(controls.get_by_role("list")).not_to_contain_text("agent:", timeout=10000)
    await twilio.settle()
    assert conference.status == "completed"
    await panel.get_by_role("button", name="Wrap up").click()
    await expect(agent.get_by_role("tabpanel")).to_have_count(0)


async def test_an_admin_sets_an_agents_skills_and_capacity(
    sms_hub: Hub, client: Client, browser: Browser, shots: Path
) -> None:
    base = str(client.make_url("")).rstrip("/")
    team = await make_team(sms_hub, "support")
    await client.post("/api/v1/me/state", json={"state": "away"}, headers=team.headers("agent"))
    admin = await browser.new_page(viewport={"width": 1280, "height": 720})
    await log_in(admin, base, "admin", "#admin")
    await expect(admin.get_by_role("table", name="Users")).to_contain_text("marketer")
    await admin.get_by_label("Skills of agent").fill("billing:4, spanish:2")
    await admin.get_by_label("Capacity of agent").fill("sms:3, voice:1")
    await admin.get_by_role("button", name="Save agent").click()
    await expect(admin.get_by_role("status")).to_have_text("Saved agent.")
    await admin.get_by_label("Capacity of agent").fill("sms:lots")
    await admin.get_by_role("button", name="Save agent").click()
    await expect(admin.get_by_role("status")).to_contain_text("is not name:number")
    await admin.get_by_label("New username").fill("grace")
    await admin.get_by_label("Full name").fill("Grace Hopper")
    await admin.get_by_label("Role", exact=True).select_option("supervisor")
    await admin.get_by_label("Teams", exact=True).fill("support")
    await admin.get_by_label("Password", exact=True).fill("a long enough password")
    await admin.get_by_role("button", name="Create user").click()
    users = admin.get_by_role("table", name="Users")
    await expect(users.get_by_role("row", name="grace")).to_contain_text("supervisor")
    await users.get_by_role("button", name="Deactivate grace").click()
    await expect(users.get_by_role("row", name="grace")).to_contain_text("no")
    await admin.screenshot(path=str(shots / "1-admin.png"))
    response = await client.get("/api/v1/agents", headers=team.headers("admin"))
    agents = {a["id"]: a for a in (await response.json())["agents"]}
    agent = agents[team.user_ids["agent"]]
    assert agent["skills"] == {"billing": 4, "spanish": 2}
    assert agent["capacity"] == {"sms": 3, "voice": 1}


async def test_an_admin_sets_up_a_team_business_hours_a_queue_and_a_number_for_it(
    sms_hub: Hub, client: Client, browser: Browser, shots: Path
) -> None:
    base = str(client.make_url("")).rstrip("/")
    team = await make_team(sms_hub, "support")
    admin = await browser.new_page(viewport={"width": 1280, "height": 720})
    admin.on("dialog", lambda dialog: dialog.accept())
    await log_in(admin, base, "admin", "#admin")
    status = admin.get_by_role("status")
    await admin.get_by_label("New team").fill("billing")
    await admin.get_by_role("button", name="Create team").click()
    await expect(status).to_have_text("Created team billing.")
    await admin.get_by_label("Teams of agent").fill("support, billing")
    await admin.get_by_role("button", name="Save user agent").click()
    await expect(status).to_have_text("Saved agent.")
    await expect(admin.get_by_role("table", name="Teams")).to_contain_text("agent")
    own_role = admin.get_by_label("Role of admin")
    await expect(own_role).to_be_disabled()

    await admin.get_by_role("tab", name="Queues and hours").click()
    await admin.get_by_role("button", name="New business hours").click()
    await admin.get_by_label("Calendar name").fill("office")
    await admin.get_by_label("Timezone").fill("Europe/London")
    await admin.get_by_label("Hours on sat").fill("10:00-14:00")
    await admin.get_by_label("Holidays", exact=True).fill("2026-12-25")
    await admin.get_by_role("button", name="Save business hours").click()
    await expect(status).to_have_text("Saved business hours office.")
    await admin.get_by_role("button", name="New queue").click()
    await admin.get_by_label("Queue name").fill("billing")
    await admin.get_by_label("Queue team").select_option("billing")
    await admin.get_by_label("Channel sms").check()
    await admin.get_by_label("Business hours", exact=True).select_option("office")
    await admin.get_by_label("Steps").fill("0: agent.skills['billing'] >= 3\n60: *\nsoon: x")
    await admin.get_by_role("button", name="Save queue").click()
    await expect(status).to_contain_text('step "soon: x" is not')  # said in the browser
    await admin.get_by_label("Steps").fill("0: agent.skills['billing'] >= 3\n60: nonsense(")
    await admin.get_by_role("button", name="Save queue").click()
    await expect(status).to_contain_text("queues[1].steps[1].target")  # said by the hub
    await admin.get_by_label("Steps").fill("0: agent.skills['billing'] >= 3\n60: *")
    await admin.get_by_role("button", name="Save queue").click()
    await expect(status).to_have_text("Saved queue billing.")
    queues = admin.get_by_role("table", name="Queues")
    await expect(queues.get_by_role("row", name="billing")).to_contain_text("office")
    await admin.screenshot(path=str(shots / "1-queues.png"), full_page=True)

    await admin.get_by_role("tab", name="Channels").click()
    await admin.get_by_label("Queue for number 1").select_option("billing")
    await admin.get_by_label("Recording", exact=True).select_option("ask")
    await admin.get_by_role("button", name="Save channel settings").click()
    await expect(status).to_have_text("Saved the channel settings.")
    await admin.screenshot(path=str(shots / "2-channels.png"), full_page=True)
    assert set(sms_hub.settings.twilio.numbers.values()) == {"billing"}
    assert sms_hub.settings.twilio.recording == "ask"
    assert sms_hub.routing is not None
    billing = sms_hub.routing.policy.queues["billing"]
    assert billing.calendar is not None
    assert billing.calendar.name == "office"
    assert len(billing.steps) == 2
    response = await client.get("/api/v1/audit", headers=team.headers("admin"))
    actions = [e["action"] for e in (await response.json())["entries"]]
    assert {"team.create", "user.update", "routing.policy", "channels.settings"} <= set(actions)


async def test_the_timeline_scrolls_back_through_a_long_history(
    sms_hub: Hub, client: Client, browser: Browser, shots: Path
) -> None:
    from tests.agent_console.test_api import push

    base = str(client.make_url("")).rstrip("/")
    team = await make_team(sms_hub, "support")
    for n in range(1, 46):  # one conversation, 45 messages: more than a page (30)
        await push(
            client,
            team,
            **{"from": "+14155550188", "body": f"message {n}", "provider_ref": f"m{n}"},
        )
    agent = await available_agent(browser, base)
    await expect(agent.get_by_role("alertdialog")).to_be_visible(timeout=10000)
    await agent.keyboard.press("a")
    timeline = agent.get_by_role("tabpanel").get_by_role("list", name="Timeline")
    await expect(timeline).to_contain_text("message 45")
    newest = timeline.get_by_text("message 45", exact=True)
    await expect(newest).to_be_in_viewport()  # opened at the newest
    await expect(timeline.get_by_text("message 1", exact=True)).to_have_count(0)
    await timeline.evaluate("list => { list.scrollTop = 0; }")  # the agent scrolls up
    oldest = timeline.get_by_text("message 1", exact=True)
    await expect(oldest).to_have_count(1, timeout=10000)
    await timeline.evaluate("list => { list.scrollTop = 0; }")
    await expect(oldest).to_be_in_viewport()
    await agent.screenshot(path=str(shots / "1-scrolled-back.png"))
    count = await timeline.locator(".event").count()
    assert count == len(
        set(await timeline.locator(".event").evaluate_all("l => l.map(e => e.dataset.event)"))
    )
