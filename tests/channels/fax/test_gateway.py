"""Faxes that come as email from a fax-to-email gateway, through a real Dovecot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.agent_console.app import build_app
from hub.bootstrap import Hub
from hub.config import EmailSettings, FaxGatewaySettings, FaxSettings, Settings
from hub.dev.dovecot import Dovecot
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import InteractionState
from hub.domain.timeline import EventKind
from tests.channels.email.conftest import (
    ADDRESS,
    Outbox,
    dovecot,
    eventually,
    mail_hub,
    mailbox_settings,
    outbox,
)
from tests.channels.fax.conftest import needs_tesseract, page, pdf_of

__all__ = ["dovecot", "mail_hub", "outbox"]
Client = TestClient[Any, Any]
GATEWAY = "faxes@gateway.example.net"

pytestmark = [pytest.mark.skipif(not Dovecot.available(), reason="needs Dovecot"), needs_tesseract]


@pytest.fixture
def settings(database_url: str, tmp_path: Path, dovecot: Dovecot, outbox: Outbox) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        log_level="WARNING",
        email=EmailSettings(mailboxes=[mailbox_settings(dovecot, outbox)]),
        fax=FaxSettings(gateways=[FaxGatewaySettings(address=GATEWAY)]),
    )


@pytest.fixture
async def client(mail_hub: Hub) -> AsyncIterator[Client]:
    async with TestClient(TestServer(build_app(mail_hub))) as client:
        yield client


def gateway_mail(subject: str, document: bytes | None, sender: str = GATEWAY) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Fax Gateway <{sender}>"
    mail["To"] = ADDRESS
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{abs(hash(subject))}@gateway.example.net>"
    mail.set_content("You have received a fax. The document is attached.")
    if document is not None:
        mail.add_attachment(document, maintype="application", subtype="pdf", filename="fax.pdf")
    return mail.as_bytes()


async def test_a_gateway_s_mail_becomes_a_fax_from_the_sending_number(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    document = pdf_of(page(["Purchase order 778", "采购订单"]))
    dovecot.deliver(ADDRESS, gateway_mail("Fax from +1 (415) 555-0123, 1 page", document))
    # The gateway's own notices (no document) and mail from others stay email.
    dovecot.deliver(ADDRESS, gateway_mail("Your fax service renews soon", None))
    dovecot.deliver(
        ADDRESS, gateway_mail("Fax from +1 415 555 0124", document, sender="someone@example.org")
    )

    async def read() -> bool:
        async with mail_hub.store.unit_of_work() as uow:
            found = await uow.interactions.in_states(frozenset({InteractionState.QUEUED}))
        return len(found) == 3

    await eventually(read, what="the three messages")

    async def ocr_done() -> Any:
        async with mail_hub.store.unit_of_work() as uow:
            customer = await uow.customers.verified_owner(
                IdentityRef(IdentityKind.FAX, "+14155550123")
            )
            if customer is None:
                return None
            events = await uow.timeline.page(customer, limit=10)
        faxes = [e for e in events if e.kind is EventKind.MESSAGE]
        return faxes[0] if faxes and "ocr" in faxes[0].data else None

    async def done() -> bool:
        return await ocr_done() is not None

    await eventually(done, what="the fax read")
    fax = await ocr_done()
    assert fax.provider == "email-fax"
    assert fax.data["gateway"] == GATEWAY
    assert "Purchase order 778" in fax.body
    assert "采购订单" in fax.body
    async with mail_hub.store.unit_of_work() as uow:
        interactions = await uow.interactions.in_states(frozenset({InteractionState.QUEUED}))
    channels = sorted(i.channel.value for i in interactions)
    assert channels == ["email", "email", "fax"]
