"""Visitors chat with agents end to end: widget (socket.io /chat) -> core -> ACD -> console."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.domain.identity import IdentityKind, IdentityRef
from tests.agent_console.test_realtime import Listener
from tests.channels.webchat.conftest import ORIGIN, SECRET, Visitor, chat_channel
from tests.conftest import Team, make_team

Client = TestClient[Any, Any]


async def agent_on_console(client: Client, team: Team) -> Listener:
    console = Listener("/agent")
    await console.connect(str(client.make_url("")), team.tokens["agent"])
    await console.next("hello")
    assert (await console.call("state", {"state": "available"}))["ok"] is True
    return console


async def test_a_visitor_chats_with_an_agent_from_first_word_to_rating(
    chat_hub: Hub, client: Client, visitors: list[Visitor]
) -> None:
    team = await make_team(chat_hub, "support")
    url = str(client.make_url(""))
    visitor = Visitor()
    visitors.append(visitor)
    welcome = await visitor.connect(url)
    assert welcome["visitor"].startswith("v_")
    assert welcome["history"] == []
    assert welcome["chat"] is None
    assert welcome["site"]["title"] == "Chat with us"
    assert welcome["availability"] == {"open": True, "queue": "support", "agents": 0}
    console = await agent_on_console(client, team)
    try:
        profile = {"name": "Ann Lee", "email": "Ann@Example.com"}
        said = await visitor.say("Where is my order 1182?", "c1", profile=profile)
        assert said["ok"] is True, said
        offer = await console.next("offer")
        assert offer["interaction"]["channel"] == "webchat"
        assert offer["customer"]["name"] == "Ann Lee"
        kinds = {(i["kind"], i["value"], i["verified"]) for i in offer["customer"]["identities"]}
        assert ("email", "ann@example.com", False) in kinds  # typed in a form: not verified
        interaction = offer["interaction"]["id"]
        assert (await console.call("accept", {"interaction_id": interaction}))["ok"] is True
        joined = await visitor.next("agent")
        assert joined == {"interaction_id": interaction, "name": "agent"}

        # Typing, both ways.
        assert (await visitor.call("typing", {"typing": True}))["ok"] is True
        typing = await console.next("typing")
        assert typing == {"interaction_id": interaction, "typing": True}
        await console.call("typing", {"interaction_id": interaction, "typing": True})
        assert (await visitor.next("typing"))["name"] == "agent"

        # The agent's reply reaches the widget with the agent's name; the widget says it was
        # delivered, then read, and the console hears both.
        response = await client.post(
            f"/api/v1/interactions/{interaction}/reply",
            json={"body": "It is on the van today."},
            headers=team.headers("agent"),
        )
        assert response.status == 201, await response.text()
        reply = await response.json()
        pushed = await visitor.next("message")
        assert pushed["event"]["body"] == "It is on the van today."
        assert pushed["event"]["author"] == "agent"
        assert pushed["event"]["direction"] == "outbound"
        assert (await visitor.call("seen", {"event_id": reply["id"]}))["ok"] is True
        assert (await visitor.call("seen", {"event_id": reply["id"], "read": True}))["ok"]
        await console.next("message", lambda m: m["event"]["data"].get("status") == "read")
        assert (await visitor.call("seen", {"event_id": reply["id"]}))["ok"]  # never back
        async with chat_hub.store.unit_of_work() as uow:
            stored = await uow.timeline.event(reply["id"])
        assert stored is not None
        assert stored.data["status"] == "read"
        await console.call("read", {"interaction_id": interaction, "event_id": said["event_id"]})
        assert (await visitor.next("read"))["up_to"] == said["event_id"]

        # Not rated while it goes on; rated once when it ended.
        early = await visitor.call("rate", {"interaction_id": interaction, "score": 5})
        assert early["ok"] is False
        done = await console.call("wrapup", {"interaction_id": interaction, "disposition": "ok"})
        assert done["ok"] is True
        await visitor.next("ended")
        rated = await visitor.call(
            "rate", {"interaction_id": interaction, "score": 5, "comment": "Quick, thanks"}
        )
        assert rated == {"ok": True}
        again = await visitor.call("rate", {"interaction_id": interaction, "score": 1})
        assert "rated already" in again["error"]["message"]
        got = await client.get(f"/api/v1/interactions/{interaction}", headers=team.headers("admin"))
        assert (await got.json())["csat_score"] == 5
        # The supervisor's figures count it.
        queue_id = (await got.json())["queue_id"]
        stats = await client.get(
            f"/api/v1/queues/{queue_id}/stats?windows=60", headers=team.headers("supervisor")
        )
        window = (await stats.json())["windows"]["60m"]
        assert (window["rated"], window["csat_average"]) == (1, 5.0)
    finally:
        await console.client.disconnect()


async def test_the_conversation_survives_reconnects_and_resends(
    chat_hub: Hub, client: Client, visitors: list[Visitor]
) -> None:
    url = str(client.make_url(""))
    first = Visitor()
    visitors.append(first)
    await first.connect(url)
    assert (await first.say("Hello?", "m1"))["ok"] is True
    await chat_hub.settle()  # queued
    await first.client.disconnect()
    # Back in another tab (same stored id): the history, the chat, its place in line.
    back = Visitor()
    visitors.append(back)
    welcome = await back.connect(url, token=first.token)
    assert welcome["visitor"] == first.token
    assert [m["body"] for m in welcome["history"]] == ["Hello?"]
    assert welcome["chat"]["state"] == "queued"
    waiting = await back.next("waiting")
    assert waiting["position"] == 1
    # The widget resends what it had no answer for: the same message, once.
    resent = await back.say("Hello?", "m1")
    assert resent["duplicate"] is True
    # An id the hub did not sign is a new visitor, who sees nothing of Ann's.
    forged = Visitor()
    visitors.append(forged)
    stranger = await forged.connect(url, token="v_guessed.AAAAAAAAAAAAAAAAAAAAAAAA")
    assert stranger["visitor"] != first.token
    assert stranger["history"] == []


async def test_origins_signed_identities_and_abuse_limits(
    chat_hub: Hub, client: Client, visitors: list[Visitor]
) -> None:
    url = str(client.make_url(""))
    for origin, site in (("https://evil.example.net", "shop"), (ORIGIN, "nosuchsite")):
        refused = Visitor()
        visitors.append(refused)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(url, origin=origin, site=site)

    # A logged-in user of the shop, signed by the shop: linked to their customer record.
    async with chat_hub.store.unit_of_work() as uow:
        team = await uow.accounts.ensure_team("support", chat_hub.clock())
        customer = await uow.customers.create(
            team_id=team.id, display_name="Bo Chen", now=chat_hub.clock()
        )
        await uow.customers.add_identity(
            customer.id,
            IdentityRef(IdentityKind.EXTERNAL, "shop:u-77"),
            verified=True,
            now=chat_hub.clock(),
        )
        await uow.customers.add_identity(
            customer.id,
            IdentityRef(IdentityKind.EMAIL, "bo@example.com"),
            verified=True,
            now=chat_hub.clock(),
        )
        await uow.commit()
    signature = hmac.new(SECRET.encode(), b"u-77", hashlib.sha256).hexdigest()
    forged = Visitor()
    visitors.append(forged)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await forged.connect(url, user={"id": "u-77", "signature": "00" * 32})
    known = Visitor()
    visitors.append(known)
    await known.connect(url, user={"id": "u-77", "signature": signature})
    said = await known.say("Hi, it's Bo", "k1")
    assert said["ok"] is True, said
    async with chat_hub.store.unit_of_work() as uow:
        event = await uow.timeline.event(said["event_id"])
    assert event is not None
    assert event.customer_id == customer.id

    # An anonymous visitor typing Bo's email is a merge suggestion, never a merge.
    other = Visitor()
    visitors.append(other)
    await other.connect(url)
    claimed = await other.say("I am Bo", "o1", profile={"email": "bo@example.com"})
    async with chat_hub.store.unit_of_work() as uow:
        event = await uow.timeline.event(claimed["event_id"])
        assert event is not None
        assert event.customer_id != customer.id
        suggestions = await uow.customers.open_suggestions(customer.id)
    assert len(suggestions) == 1

    # Caps and limits answer with a reason; nothing is stored for them.
    big = await other.say("x" * 2001, "o2")
    assert big["error"]["code"] == "invalid_input"
    assert "2000 characters" in big["error"]["message"]
    empty = await other.say("  ", "o3")
    assert empty["ok"] is False
    answers = [await other.say(f"spam {n}", f"s{n}") for n in range(40)]
    limited = [a for a in answers if not a["ok"]]
    assert limited
    assert limited[0]["error"]["code"] == "rate_limited"


async def test_a_required_prechat_field_is_asked_for(
    chat_hub: Hub, client: Client, visitors: list[Visitor]
) -> None:
    chat_channel(chat_hub).sites["shop"].prechat_email = "required"
    visitor = Visitor()
    visitors.append(visitor)
    await visitor.connect(str(client.make_url("")))
    missing = await visitor.say("Hello", "p1")
    assert "email is needed" in missing["error"]["message"]
    wrong = await visitor.say("Hello", "p1", profile={"email": "not an address"})
    assert wrong["ok"] is False
    ok = await visitor.say("Hello", "p1", profile={"email": "cy@example.com"})
    assert ok["ok"] is True
    assert (await visitor.say("And another thing", "p2"))["ok"] is True  # asked once


async def test_files_are_checked_kept_and_only_their_visitor_downloads_them(
    chat_hub: Hub, client: Client, visitors: list[Visitor]
) -> None:
    visitor = Visitor()
    visitors.append(visitor)
    await visitor.connect(str(client.make_url("")))
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

    async def upload(data: bytes, content_type: str, token: str | None) -> Any:
        from aiohttp import FormData

        form = FormData()
        form.add_field("file", data, filename="photo.png", content_type=content_type)
        headers = {"Origin": ORIGIN} | ({"X-Visitor": token} if token else {})
        return await client.post("/webchat/uploads?site=shop", data=form, headers=headers)

    assert (await upload(png, "image/png", None)).status == 401
    fake = await upload(b"MZ\x90\x00 not a png", "image/png", visitor.token)
    assert fake.status == 422
    assert "not really image/png" in (await fake.json())["error"]["message"]
    assert (await upload(b"#!/bin/sh", "application/x-sh", visitor.token)).status == 422
    good = await upload(png, "image/png", visitor.token)
    assert good.status == 201
    assert good.headers["Access-Control-Allow-Origin"] == ORIGIN
    kept = (await good.json())["upload"]
    said = await visitor.say("Here is the damage", "f1", uploads=[kept])
    assert said["ok"] is True, said
    path = f"/webchat/files/{said['event_id']}/0"
    mine = await client.get(path, params={"visitor": visitor.token})
    assert mine.status == 200
    assert await mine.read() == png
    assert mine.headers["X-Content-Type-Options"] == "nosniff"
    stranger = Visitor()
    visitors.append(stranger)
    await stranger.connect(str(client.make_url("")))
    assert (await client.get(path, params={"visitor": stranger.token})).status == 404
    not_mine = await stranger.say("look", "f2", uploads=[kept])
    assert not_mine["ok"] is False  # an upload is only its visitor's


async def test_nobody_available_the_visitor_leaves_a_message(
    chat_hub: Hub, client: Client, visitors: list[Visitor]
) -> None:
    team = await make_team(chat_hub, "support")
    visitor = Visitor()
    visitors.append(visitor)
    welcome = await visitor.connect(str(client.make_url("")))
    assert welcome["availability"]["agents"] == 0
    left = await visitor.call(
        "leave_message",
        {"client_id": "l1", "name": "Di", "email": "di@example.com", "text": "Call me back"},
    )
    assert left["ok"] is True, left
    await chat_hub.settle()  # queued
    response = await client.get(
        f"/api/v1/interactions/{left['interaction_id']}", headers=team.headers("admin")
    )
    work = await response.json()
    assert work["channel"] == "webchat"  # no mailbox here: answered in the chat on return
    assert work["state"] == "queued"
    bad = await visitor.call("leave_message", {"client_id": "l2", "email": "x", "text": "hi"})
    assert bad["ok"] is False
    settings = await client.get("/webchat/sites/shop/settings", headers={"Origin": ORIGIN})
    assert settings.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert (await settings.json())["availability"]["open"] is True
    elsewhere = await client.get("/webchat/sites/shop/settings", headers={"Origin": "https://x.y"})
    assert "Access-Control-Allow-Origin" not in elsewhere.headers


async def test_an_admin_restyles_the_widget_and_moves_the_site_s_chats(
    chat_hub: Hub, client: Client, visitors: list[Visitor]
) -> None:
    team = await make_team(chat_hub, "support")
    admin = team.headers("admin")
    path = "/api/v1/channels/settings"
    shown = await (await client.get(path, headers=admin)).json()
    (site,) = shown["webchat"]["sites"]
    assert site["identity_secret"] is True  # said, never shown
    assert SECRET not in str(shown)
    change = {"colour": "#aa3300", "title": "Talk to Shop", "prechat_phone": "required"}
    for wrong, reason in (
        ({"sites": {"elsewhere": change}}, "no chat site 'elsewhere'"),
        ({"sites": {"shop": {"colour": "red"}}}, "webchat.sites.shop.colour"),
        ({"sites": {"shop": {"queue": "nowhere"}}}, "no queue 'nowhere'"),
        ({"sites": {"shop": {"origins": ["shop.example.com"]}}}, "webchat.sites.shop.origins"),
    ):
        response = await client.put(path, json={"overrides": {"webchat": wrong}}, headers=admin)
        assert response.status == 422, wrong
        assert reason in (await response.json())["error"]["message"]
    response = await client.put(
        path, json={"overrides": {"webchat": {"sites": {"shop": change}}}}, headers=admin
    )
    assert response.status == 200, await response.text()
    widget = await (await client.get("/webchat/sites/shop/settings")).json()
    assert (widget["colour"], widget["title"], widget["prechat"]["phone"]) == (
        "#aa3300",
        "Talk to Shop",
        "required",
    )
    visitor = Visitor()
    visitors.append(visitor)
    await visitor.connect(str(client.make_url("")))
    asked = await visitor.say("hi", "x1")
    assert "phone is needed" in asked["error"]["message"]  # at once, no restart
