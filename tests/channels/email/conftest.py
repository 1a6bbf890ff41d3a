"""A hub with the email channel, a real Dovecot (IMAP) and a real aiosmtpd (SMTP) on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.channels.email.adapter import EmailChannel
from hub.config import EmailSettings, MailboxSettings, Settings
from hub.dev.dovecot import Dovecot, free_port
from tests.conftest import FrozenClock, eventually

ADDRESS = "support@hub.example.com"
PASSWORD = "imap-secret"
FIXTURES = Path(__file__).parent / "fixtures"

__all__ = ["eventually"]  # shared with the email tests that import it from here

pytestmark = pytest.mark.skipif(
    not Dovecot.available(), reason="needs Dovecot (scripts/ensure-services installs it)"
)


class Outbox:
    """An aiosmtpd handler that keeps what it is sent, and can be told to refuse."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.refuse: list[str] = []  # SMTP answers to give instead of accepting, in order

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return self.refuse.pop(0)
        assert isinstance(envelope.content, bytes)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append(envelope)
        return "250 OK"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        ADDRESS.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False, or a refused client hangs


@pytest.fixture
def outbox() -> Iterator[Outbox]:
    handler = Outbox()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    yield handler
    controller.stop()


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    async with Dovecot.throwaway({ADDRESS: PASSWORD}) as server:
        yield server


def mailbox_settings(dovecot: Dovecot, outbox: Outbox, **changes: Any) -> MailboxSettings:
    values: dict[str, Any] = {
        "name": "support",
        "address": ADDRESS,
        "display_name": "Example Support",
        "signature": "Example Support - https://hub.example.com",
        "imap_port": dovecot.port,
        "imap_security": "none",
        "username": ADDRESS,
        "password": PASSWORD,
        "smtp_port": outbox.port,  # type: ignore[attr-defined]
        "smtp_security": "none",
        "poll_seconds": 0.2,
    }
    return MailboxSettings(**(values | changes))


@pytest.fixture
def settings(database_url: str, tmp_path: Path, dovecot: Dovecot, outbox: Outbox) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=str(tmp_path / "data"),
        log_level="WARNING",
        email=EmailSettings(mailboxes=[mailbox_settings(dovecot, outbox)]),
    )


@pytest.fixture
async def mail_hub(settings: Settings, clock: FrozenClock) -> Hub:
    """The hub; the app's cleanup (client fixture) stops it."""
    return await build_hub(settings, run_migrations=False, clock=clock)


@pytest.fixture
async def client(mail_hub: Hub) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(mail_hub))) as client:
        channel(mail_hub).backoff_seconds = 0.01
        yield client


def channel(hub: Hub) -> EmailChannel:
    return next(c for c in hub.channels if isinstance(c, EmailChannel))


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
