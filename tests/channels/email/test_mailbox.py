"""Mail through a real Dovecot and a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import ssl
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.channels.email.inbound import READS
from hub.config import Settings
from hub.dev.dovecot import Dovecot, free_port, self_signed
from hub.domain.timeline import TimelineEvent
from tests.channels.email.conftest import (
    ADDRESS,
    PASSWORD,
    Outbox,
    authenticate,
    channel,
    eventually,
    fixture_bytes,
    mailbox_settings,
)
from tests.conftest import FrozenClock, connections_opened, make_team

Client = TestClient[Any, Any]


def mail(
    *,
    sender: str = "Ann Lee <ann@example.org>",
    subject: str = "Where is my order?",
    body: str = "It has been two weeks.",
    message_id: str | None = None,
    headers: str = "",
    to: str = ADDRESS,
) -> bytes:
    message_id = message_id or make_msgid(domain="example.org")
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
        f"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n{headers}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


async def event_of(hub: Hub, message_id: str) -> TimelineEvent | None:
    async with hub.store.unit_of_work() as uow:
        return await uow.timeline.by_provider_ref("email", message_id)


async def arrived(hub: Hub, message_id: str) -> TimelineEvent:
    async def there() -> bool:
        return await event_of(hub, message_id) is not None

    await eventually(there, what=f"{message_id} on the timeline")
    found = await event_of(hub, message_id)
    assert found is not None
    return found


async def take(client: Client, agent: dict[str, str], interaction: int | None) -> None:
    """Accept the interaction once the ACD offers it (routing runs after the commit)."""

    async def offered() -> bool:
        response = await client.get("/api/v1/me/offers", headers=agent)
        return interaction in [o["interaction_id"] for o in (await response.json())["offers"]]

    await eventually(offered, what=f"the offer of {interaction}")
    response = await client.post(f"/api/v1/interactions/{interaction}/accept", headers=agent)
    assert response.status == 204


async def available_agent(hub: Hub, client: Client) -> dict[str, str]:
    """The support team's agent, signed in and available; their request headers."""
    team = await make_team(hub, "support")
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    return agent


async def email_events(hub: Hub) -> int:
    async with hub.store.unit_of_work() as uow:
        from sqlalchemy import func, select

        from hub.crm_store.tables import TimelineEventRow

        return int(
            await uow.session.scalar(
                select(func.count()).where(TimelineEventRow.provider == "email")
            )
            or 0
        )


async def test_mail_reaches_the_timeline_and_an_agent_in_seconds_via_idle(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    reader = channel(mail_hub).readers[0]
    await eventually(lambda: _set(reader.idling), what="IDLE")
    agent = await available_agent(mail_hub, client)
    dovecot.deliver(ADDRESS, mail(message_id="<first@example.org>"))
    event = await arrived(mail_hub, "<first@example.org>")
    assert event.body == "It has been two weeks."
    assert event.data["threading"]["how"] == "new"
    assert event.data["from"] == "ann@example.org"

    async def offered() -> bool:
        response = await client.get("/api/v1/me/offers", headers=agent)
        offers = (await response.json())["offers"]
        return [o["interaction_id"] for o in offers] == [event.interaction_id]

    await eventually(offered, what="the offer")

    async def counted() -> bool:  # the reader counts once its batch is stored
        return reader.taken["stored"] == 1

    await eventually(counted, what="the message counted as stored")


async def _set(flag: Any) -> bool:
    return bool(flag.is_set())


async def test_replies_thread_back_both_ways(
    mail_hub: Hub, client: Client, dovecot: Dovecot, outbox: Outbox
) -> None:
    agent = await available_agent(mail_hub, client)
    dovecot.deliver(ADDRESS, fixture_bytes("gmail_reply.eml"))
    first = await arrived(mail_hub, "<CAKx9Z7yB8n+Q4kqT2Zp5Lm=w0@mail.gmail.com>")
    interaction = first.interaction_id
    await take(client, agent, interaction)
    response = await client.post(
        f"/api/v1/interactions/{interaction}/reply",
        json={
            "body": "Glad it arrived!",
            "html": "<p>Glad it <b>arrived</b>!</p><script>x()</script>",
            "attachments": [
                {
                    "filename": "receipt.pdf",
                    "content_type": "application/pdf",
                    "content_base64": "JVBERi0xLjQK",
                }
            ],
        },
        headers=agent,
    )
    assert response.status == 201, await response.text()
    sent = await response.json()
    assert sent["data"]["status"] == "sent"
    [reply] = outbox.messages
    assert reply["From"] == f"Example Support <{ADDRESS}>"
    assert reply["To"] == "ann.lee@gmail.com"
    assert reply["Subject"] == "Re: Your replacement"
    assert reply["In-Reply-To"] == "<CAKx9Z7yB8n+Q4kqT2Zp5Lm=w0@mail.gmail.com>"
    assert reply["References"].split() == [
        "<CAF=aB1c2D3e@mail.gmail.com>",
        "<hub.2.77aa@hub.example.com>",
        "<CAKx9Z7yB8n+Q4kqT2Zp5Lm=w0@mail.gmail.com>",
    ]
    assert reply["Reply-To"].startswith(f"support+{interaction}.")
    text = reply.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content().replace("\r\n", "\n")
    assert "Glad it arrived!" in content
    assert "-- \nExample Support - https://hub.example.com" in content
    assert "wrote:\n> Thanks! The parcel arrived today" in content
    html = reply.get_body(preferencelist=("html",))
    assert html is not None
    assert "<script>" not in html.get_content()
    [attached] = list(reply.iter_attachments())
    assert attached.get_filename() == "receipt.pdf"
    our_id = reply["Message-ID"]
    assert sent["provider_ref"] == our_id

    # 1. The customer answers our reply: In-Reply-To names it.
    dovecot.deliver(
        ADDRESS,
        mail(
            sender="Ann Lee <ann.lee@gmail.com>",
            subject="Re: Your replacement",
            message_id="<again@gmail.com>",
            headers=f"In-Reply-To: {our_id}\r\nReferences: {our_id}\r\n",
        ),
    )
    again = await arrived(mail_hub, "<again@gmail.com>")
    assert again.interaction_id == interaction
    assert again.data["threading"]["how"] == "references"
    # 2. A mail program that drops the headers: our signed reply address still says where.
    dovecot.deliver(
        ADDRESS,
        mail(
            sender="ann.lee@gmail.com",
            subject="photos",
            message_id="<token@gmail.com>",
            to=reply["Reply-To"],
        ),
    )
    token = await arrived(mail_hub, "<token@gmail.com>")
    assert token.interaction_id == interaction
    assert token.data["threading"]["how"] == "reply_token"
    # 3. Nothing but the subject, from the same sender: joins, and says why.
    dovecot.deliver(
        ADDRESS,
        mail(sender="ann.lee@gmail.com", subject="AW: Your replacement", message_id="<s@g.com>"),
    )
    subject = await arrived(mail_hub, "<s@g.com>")
    assert subject.interaction_id == interaction
    assert subject.data["threading"]["how"] == "subject"
    # A forged token (wrong signature) and another sender's same subject open new work.
    forged = reply["Reply-To"].replace(".", "x", 1)
    dovecot.deliver(ADDRESS, mail(sender="ann.lee@gmail.com", subject="hi", to=forged,
                                  message_id="<forged@g.com>"))  # fmt: skip
    dovecot.deliver(
        ADDRESS, mail(sender="eve@example.net", subject="Re: Your replacement", message_id="<e@x>")
    )
    assert (await arrived(mail_hub, "<forged@g.com>")).interaction_id != interaction
    assert (await arrived(mail_hub, "<e@x>")).interaction_id != interaction


async def test_auto_replies_lists_and_bounces_make_no_work(
    mail_hub: Hub, client: Client, dovecot: Dovecot, outbox: Outbox
) -> None:
    agent = await available_agent(mail_hub, client)
    dovecot.deliver(ADDRESS, mail(sender="nobody@example.net", message_id="<ask@example.net>"))
    asked = await arrived(mail_hub, "<ask@example.net>")
    await take(client, agent, asked.interaction_id)
    response = await client.post(
        f"/api/v1/interactions/{asked.interaction_id}/reply", json={"body": "On it."}, headers=agent
    )
    our_id = (await response.json())["provider_ref"]
    bounce = fixture_bytes("dsn_bounce.eml").replace(
        b"<hub.9.dead@hub.example.com>", our_id.encode()
    )
    for raw in (fixture_bytes("out_of_office.eml"), fixture_bytes("mailing_list.eml"), bounce):
        dovecot.deliver(ADDRESS, raw)
    for message_id in (
        "<f00dcafe12@contoso.example>",
        "<20261123080000.1234@example.org>",
        "<20261123120003.4F1A2B3C4D@mx.hub.example.com>",
    ):
        noise = await arrived(mail_hub, message_id)
        assert noise.interaction_id is None  # on the timeline, never work
        assert noise.data["noise"] in ("auto_reply", "bulk", "bounce")
    assert len(outbox.messages) == 1  # and nothing answered them

    async def bounced() -> bool:  # marked just after the report itself is stored
        sent = await event_of(mail_hub, our_id)
        return sent is not None and sent.data["status"] == "bounced"

    await eventually(bounced, what="our reply marked bounced")
    sent = await event_of(mail_hub, our_id)
    assert sent is not None
    assert sent.data["bounced_recipients"] == ["nobody@example.net"]
    assert sent.data["error_code"] == "5.1.1"


async def test_restarts_of_dovecot_and_of_the_hub_lose_and_duplicate_nothing(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    email = channel(mail_hub)
    for n in range(3):
        dovecot.deliver(ADDRESS, mail(message_id=f"<before-{n}@example.org>"))
    for n in range(3):
        await arrived(mail_hub, f"<before-{n}@example.org>")
    await dovecot.stop()
    for n in range(2):
        dovecot.deliver(ADDRESS, mail(message_id=f"<while-down-{n}@example.org>"))
    await dovecot.start()
    await arrived(mail_hub, "<while-down-0@example.org>")
    await arrived(mail_hub, "<while-down-1@example.org>")
    assert email.readers[0].failures >= 1  # it noticed, and came back by itself
    # The hub stops; mail keeps coming; the hub starts again and catches up.
    await email.stop()
    for n in range(2):
        dovecot.deliver(ADDRESS, mail(message_id=f"<hub-down-{n}@example.org>"))
    await email.start(mail_hub.receive)
    await arrived(mail_hub, "<hub-down-0@example.org>")
    await arrived(mail_hub, "<hub-down-1@example.org>")
    assert await email_events(mail_hub) == 7

    async def read_to_the_end() -> bool:  # the cursor moves once the batch is stored
        async with mail_hub.store.unit_of_work() as uow:
            cursor = await uow.mail.cursor("support")
        return cursor is not None and cursor.last_uid == 7

    await eventually(read_to_the_end, what="the cursor at UID 7")


async def test_a_bad_message_is_quarantined_and_the_mailbox_goes_on(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    dovecot.deliver(ADDRESS, b"Subject: nobody sent this\r\n\r\nbody\r\n")
    dovecot.deliver(ADDRESS, mail(message_id="<after@example.org>"))
    await arrived(mail_hub, "<after@example.org>")
    team = await make_team(mail_hub, "support")
    found: list[dict[str, Any]] = []

    async def quarantined() -> bool:  # stored beside the good one, maybe a moment later
        response = await client.get("/api/v1/email/quarantine", headers=team.headers("admin"))
        found[:] = (await response.json())["messages"]
        return bool(found)

    await eventually(quarantined, what="the quarantine entry")
    [kept] = found
    assert kept["reason"] == "no From, Sender or Return-Path address"
    assert (kept["mailbox"], kept["uid"]) == ("support", 1)
    response = await client.get("/api/v1/email/quarantine", headers=team.headers("agent"))
    assert response.status == 403


async def test_a_backlog_is_read_in_batches(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    email = channel(mail_hub)
    await email.stop()
    email._mailboxes["support"] = email._mailboxes["support"].model_copy(update={"batch_size": 7})
    for n in range(30):
        dovecot.deliver(ADDRESS, mail(message_id=f"<backlog-{n}@example.org>"))
    await email.start(mail_hub.receive)
    reader = email.readers[0]

    async def all_taken() -> bool:  # counted once each batch is stored
        return reader.total() == 30

    await eventually(all_taken, what="30 messages taken")
    assert reader.taken["stored"] == 30
    assert await email_events(mail_hub) == 30


async def test_a_backlog_batch_reads_on_the_pooled_connections_it_has(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    """Threading reads take turns (``READS`` at once): a batch of 60 conversations opens no
    more connections than the pool keeps and the reads use. Before, 64 reads at once overflowed
    the pool, whose overflow connections close when they come back, so every batch connected
    anew."""
    email = channel(mail_hub)
    await email.stop()
    email._mailboxes["support"] = email._mailboxes["support"].model_copy(update={"batch_size": 60})
    for n in range(60):
        dovecot.deliver(ADDRESS, mail(sender=f"c{n}@example.org", message_id=f"<c{n}@example.org>"))
    with connections_opened(mail_hub.store) as opened:
        await email.start(mail_hub.receive)
        reader = email.readers[0]

        async def all_taken() -> bool:
            return reader.total() == 60

        await eventually(all_taken, what="60 messages taken")
    assert reader.taken["stored"] == 60
    pool = mail_hub.store.engine.sync_engine.pool.size()  # type: ignore[attr-defined]
    assert len(opened) <= pool + READS, len(opened)  # 29 on PostgreSQL with 64 reads at once


async def test_a_message_delivered_twice_is_stored_once_in_one_batch_or_across_batches(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    """A batch reads which of its Message-IDs were stored before it in one statement; a copy
    later in the same batch is caught once the first has committed."""
    email = channel(mail_hub)
    dovecot.deliver(ADDRESS, mail(message_id="<first@example.org>"))
    await arrived(mail_hub, "<first@example.org>")
    await email.stop()
    for message_id in ("<first@example.org>", "<twice@example.org>", "<twice@example.org>"):
        dovecot.deliver(ADDRESS, mail(message_id=message_id))
    await email.start(mail_hub.receive)
    reader = email.readers[0]  # a new reader: it counts what it took since the start

    async def all_taken() -> bool:
        return reader.total() == 3

    await eventually(all_taken, what="3 messages taken")
    assert reader.taken["stored"] == 1
    assert reader.taken["duplicate"] == 2
    assert await email_events(mail_hub) == 2


async def test_smtp_trouble_is_retried_or_reported(
    mail_hub: Hub, client: Client, dovecot: Dovecot, outbox: Outbox
) -> None:
    agent = await available_agent(mail_hub, client)
    dovecot.deliver(ADDRESS, mail(message_id="<q@example.org>"))
    asked = await arrived(mail_hub, "<q@example.org>")
    path = f"/api/v1/interactions/{asked.interaction_id}"
    await take(client, agent, asked.interaction_id)
    outbox.refuse = ["451 4.3.0 try again later"]
    response = await client.post(path + "/reply", json={"body": "Retried"}, headers=agent)
    assert response.status == 201
    assert len(outbox.messages) == 1
    outbox.refuse = ["554 5.7.1 rejected as spam"]
    response = await client.post(path + "/reply", json={"body": "Refused"}, headers=agent)
    assert response.status == 502
    failed = (await response.json())["error"]
    assert "rejected as spam" in failed["message"]
    async with mail_hub.store.unit_of_work() as uow:
        page = await uow.timeline.page(asked.customer_id, limit=10)
    refused = next(e for e in page if e.body == "Refused")
    assert refused.data["status"] == "failed"


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_imap_over_starttls_and_implicit_tls(
    security: str, settings: Settings, clock: FrozenClock, outbox: Outbox
) -> None:
    async with Dovecot.throwaway({ADDRESS: PASSWORD}, tls=True) as secure:
        port = secure.port if security == "starttls" else secure.tls_port
        settings.email.mailboxes = [
            mailbox_settings(
                secure, outbox, imap_port=port, imap_security=security, verify_tls=False
            )
        ]
        hub = await build_hub(settings, run_migrations=False, clock=clock)
        async with TestClient(TestServer(build_app(hub))):
            secure.deliver(ADDRESS, mail(message_id=f"<{security}@example.org>"))
            await arrived(hub, f"<{security}@example.org>")
        assert "secured" in secure.log()


@pytest.fixture
def tls_server_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_replies_go_out_over_starttls_with_a_login(
    mail_hub: Hub, client: Client, dovecot: Dovecot, tls_server_context: ssl.SSLContext
) -> None:
    secure = Outbox()
    controller = Controller(
        secure,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=tls_server_context,
        require_starttls=True,
        authenticator=authenticate,
    )
    controller.start()
    try:
        email = channel(mail_hub)
        email._mailboxes["support"] = email._mailboxes["support"].model_copy(
            update={"smtp_port": controller.port, "smtp_security": "starttls", "verify_tls": False}
        )
        agent = await available_agent(mail_hub, client)
        dovecot.deliver(ADDRESS, mail(message_id="<tls@example.org>"))
        asked = await arrived(mail_hub, "<tls@example.org>")
        await take(client, agent, asked.interaction_id)
        path = f"/api/v1/interactions/{asked.interaction_id}/reply"
        response = await client.post(path, json={"body": "Over TLS"}, headers=agent)
        assert response.status == 201, await response.text()
        [sent] = secure.messages
        assert sent["Subject"] == "Re: Where is my order?"
        # A wrong password is a clear error, not a retry loop.
        email._mailboxes["support"] = email._mailboxes["support"].model_copy(
            update={"smtp_password": SecretStr("wrong")}
        )
        response = await client.post(path, json={"body": "Denied"}, headers=agent)
        assert response.status in (502, 503)
        assert "login" in (await response.json())["error"]["message"]
    finally:
        controller.stop()


async def test_a_refused_login_is_retried_until_the_password_is_fixed(
    settings: Settings, clock: FrozenClock, dovecot: Dovecot, outbox: Outbox
) -> None:
    settings.email.mailboxes = [mailbox_settings(dovecot, outbox, password="wrong")]
    hub = await build_hub(settings, run_migrations=False, clock=clock)
    async with TestClient(TestServer(build_app(hub))):
        reader = channel(hub).readers[0]

        async def refused() -> bool:
            return reader.failures >= 1

        await eventually(refused, what="the refused login")
        assert not reader.connected.is_set()
        dovecot.deliver(ADDRESS, mail(message_id="<after-fix@example.org>"))
        reader.mailbox = mailbox_settings(dovecot, outbox)  # an admin fixes the password
        await arrived(hub, "<after-fix@example.org>")
