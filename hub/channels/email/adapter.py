"""The email channel adapter: a reader per mailbox in, SMTP out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import structlog

from hub.channels.base import (
    STOP_SECONDS,
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    FaxGateways,
    InboundSink,
    OutboundMessage,
)
from hub.channels.email.imap import MailboxReader
from hub.channels.email.inbound import MailIngest
from hub.channels.email.outbound import OutgoingFile, Quoted, compose, send_mail
from hub.channels.email.threading import PROVIDER, ReplyTokens
from hub.config import MailboxSettings, Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.interaction import Channel
from hub.errors import ChannelConfigError, NotFound
from hub.services.mail import MailRecords

log = structlog.get_logger(__name__)


class EmailChannel(ChannelAdapter):
    """Mail with customers, through the configured mailboxes."""

    channel: ClassVar[Channel] = Channel.EMAIL
    capabilities: ClassVar[Capability] = Capability.OUTBOUND | Capability.ATTACHMENTS
    sends_files: ClassVar[bool] = True

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Callable[[], datetime],
        *,
        fax: FaxGateways | None = None,
    ) -> None:
        if not settings.email.mailboxes:
            raise ChannelConfigError("the email channel needs at least one email.mailboxes entry")
        self._settings = settings
        self._store = store
        self._clock = clock
        self._fax = fax  # fax-to-email gateways' mail is faxes
        self._mailboxes = {m.name: m for m in settings.email.mailboxes}
        self.tokens = ReplyTokens.from_file(Path(settings.data_dir) / "email-reply-token.key")
        self.readers: list[MailboxReader] = []
        self._running: list[asyncio.Task[None]] = []
        self.backoff_seconds = 0.5

    async def start(self, sink: InboundSink) -> None:
        await super().start(sink)
        records = MailRecords(self._store, self._clock)
        ingest = MailIngest(
            self._settings, self._store, records, self.sink, self.tokens, self._clock, fax=self._fax
        )
        self.readers = [
            MailboxReader(m, records, ingest.take_batch) for m in self._mailboxes.values()
        ]
        self._running = [
            asyncio.create_task(reader.run(), name=f"mailbox {reader.mailbox.name}")
            for reader in self.readers
        ]

    def stop_intake(self) -> None:
        for reader in self.readers:
            reader.stop()  # each finishes the batch in hand; the rest waits in the mailbox

    async def stop(self) -> None:
        self.stop_intake()
        if self._running:
            _, late = await asyncio.wait(self._running, timeout=STOP_SECONDS)
            for task in late:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._running = []
        await super().stop()

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Reply from the mailbox the customer wrote to, threaded under their latest message."""
        async with self._store.reading() as uow:
            interaction = await uow.interactions.get(message.interaction_id)
            latest = await uow.timeline.latest_inbound(message.interaction_id)
        if interaction is None:
            raise NotFound(f"no interaction {message.interaction_id}")
        data = latest.data if latest is not None else {}
        mailbox = self._mailbox(data.get("mailbox"))
        quoted = None
        if latest is not None:
            sent_at = data.get("sent_at")
            quoted = Quoted(
                message_id=_text(data.get("message_id")),
                references=tuple(x for x in data.get("references") or () if isinstance(x, str)),
                subject=interaction.subject or "",
                text=latest.body or "",
                author=_text(data.get("from_name")) or message.to.value,
                sent_at=datetime.fromisoformat(sent_at) if isinstance(sent_at, str) else None,
            )
        files = []
        for attachment in message.attachments:
            if attachment.path is None:
                continue
            content = await asyncio.to_thread(Path(attachment.path).read_bytes)
            files.append(OutgoingFile(attachment.filename, attachment.content_type, content))
        mail = compose(
            mailbox,
            to=message.to.value,
            body=message.body,
            html=message.html,
            quoted=quoted,
            subject=message.subject or interaction.subject,
            reply_to=self.tokens.address(mailbox.address, message.interaction_id),
            now=self._clock(),
            files=tuple(files),
        )
        await send_mail(mailbox, mail, backoff_seconds=self.backoff_seconds)
        return DeliveryReceipt(PROVIDER, str(mail["Message-ID"]), "sent")

    def mailbox_for(self, queue: str | None) -> MailboxSettings:
        """The mailbox whose mail feeds the queue, else the first one."""
        found = [m for m in self._mailboxes.values() if queue is not None and m.queue == queue]
        return found[0] if found else next(iter(self._mailboxes.values()))

    async def send_message(
        self, mailbox: MailboxSettings, *, to: str, subject: str, body: str
    ) -> str:
        """Send mail that answers nothing (a chat transcript); its Message-ID."""
        mail = compose(
            mailbox,
            to=to,
            body=body,
            html=None,
            quoted=None,
            subject=subject,
            reply_to=mailbox.address,
            now=self._clock(),
        )
        await send_mail(mailbox, mail, backoff_seconds=self.backoff_seconds)
        return str(mail["Message-ID"])

    def _mailbox(self, name: object) -> MailboxSettings:
        if isinstance(name, str) and name in self._mailboxes:
            return self._mailboxes[name]
        return next(iter(self._mailboxes.values()))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
