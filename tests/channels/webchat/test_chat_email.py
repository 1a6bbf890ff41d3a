"""The chat's email side, against a real Dovecot and aiosmtpd: transcripts and left messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.config import EmailSettings, Settings, WebchatSettings
from hub.dev.dovecot import Dovecot
from tests.channels.email.conftest import (
    ADDRESS,
    Outbox,
    dovecot,
    eventually,
    mailbox_settings,
    outbox,
)
from tests.channels.webchat.conftest import Visitor, site
from tests.conftest import make_team

__all__ = ["dovecot", "outbox"]
Client = TestClient[Any, Any]

pytestmark = pytest.mark.skipif(not Dovecot.available(), reason="needs Dovecot")


@pytest.fixture
def settings(database_url: str, tmp_path: Path, dovecot: Dovecot, outbox: Outbox) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        log_level="WARNING",
        email=EmailSettings(mailboxes=[mailbox_settings(dovecot, outbox)]),
        webchat=WebchatSettings(sites=[site()]),
    )


async def test_a_transcript_goes_by_email_and_a_left_message_is_answered_by_email(
    chat_hub: Hub, client: Client, outbox: Outbox, visitors: list[Visitor]
) -> None:
    team = await make_team(chat_hub, "support")
    visitor = Visitor()
    visitors.append(visitor)
    await visitor.connect(str(client.make_url("")))
    nothing = await visitor.call("transcript", {"email": "ann@example.com"})
    assert "no conversation" in nothing["error"]["message"]
    assert (await visitor.say("Do you ship to Norway?", "t1"))["ok"] is True
    sent = await visitor.call("transcript", {"email": "Ann@Example.com"})
    assert sent == {"ok": True}
    (mail,) = outbox.messages
    assert mail["To"] == "ann@example.com"
    assert mail["From"].addresses[0].addr_spec == ADDRESS
    assert "Do you ship to Norway?" in mail.get_body().get_content()
    bad = await visitor.call("transcript", {"email": "not-an-address"})
    assert bad["ok"] is False
    flood = await visitor.call("transcript", {"email": "ann@example.com"})
    assert flood["error"]["code"] == "rate_limited"  # two a minute: no mail cannon

    # Nobody there: the message left becomes email work, and the reply goes by email.
    left = await visitor.call(
        "leave_message",
        {"client_id": "l1", "name": "Ann", "email": "ann@example.com", "text": "Call me back"},
    )
    assert left["ok"] is True, left
    interaction = left["interaction_id"]
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    accepted = await client.post(f"/api/v1/interactions/{interaction}/accept", headers=agent)
    assert accepted.status == 204
    work = await (await client.get(f"/api/v1/interactions/{interaction}", headers=agent)).json()
    assert work["channel"] == "email"
    replied = await client.post(
        f"/api/v1/interactions/{interaction}/reply",
        json={"body": "We will call you at 3."},
        headers=agent,
    )
    assert replied.status == 201, await replied.text()
    await eventually(lambda: _count(outbox, 2), what="the reply by email")
    answer = outbox.messages[-1]
    assert answer["To"] == "ann@example.com"
    assert "We will call you at 3." in answer.get_body(("plain",)).get_content()
    assert "Call me back" in answer.get_body(("plain",)).get_content()  # quoted


async def _count(outbox: Outbox, n: int) -> bool:
    return len(outbox.messages) >= n
