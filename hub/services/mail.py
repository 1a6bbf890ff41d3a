"""What the email channel keeps of mailboxes: where reading stopped, quarantined messages,
bounces of our replies.

The email channel (``hub.channels.email``) reads mailboxes over IMAP, parses and threads mail
and sends replies over SMTP; the mail itself goes through the core path (``Hub.receive``), and
the channel's own bookkeeping is kept here, one unit of work each.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from hub.crm_store.mail import MailboxCursor
from hub.crm_store.unit_of_work import Store
from hub.errors import StoreConflict

PROVIDER = "email"


class MailRecords:
    """Mailbox cursors, the quarantine and bounces, as the email channel learns them."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def cursor(self, mailbox: str) -> MailboxCursor | None:
        """Where reading the mailbox stopped, or None before its first message."""
        async with self._store.reading() as uow:
            return await uow.mail.cursor(mailbox)

    async def advance(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        """Every message up to ``last_uid`` (under ``uidvalidity``) is taken."""
        async with self._store.unit_of_work() as uow:
            await uow.mail.advance(mailbox, uidvalidity, last_uid, self._clock())
            await uow.commit()

    async def quarantine(
        self,
        *,
        mailbox: str,
        uidvalidity: int,
        uid: int,
        digest: str,
        reason: str,
        raw_path: str,
        size: int,
    ) -> bool:
        """Keep a message that could not be taken in, once per mailbox and content; False
        when it was kept before (delivered again, or quarantined meanwhile from a copy)."""
        try:
            async with self._store.unit_of_work() as uow:
                added = await uow.mail.quarantine(
                    mailbox=mailbox,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    digest=digest,
                    reason=reason,
                    raw_path=raw_path,
                    size=size,
                    now=self._clock(),
                )
                await uow.commit()
        except StoreConflict:
            return False
        return added

    async def bounced(
        self,
        message_id: str,
        *,
        action: str,
        status: str | None,
        diagnostic: str | None,
        recipients: tuple[str, ...],
    ) -> None:
        """A delivery status report about a reply of ours: its delivery says so."""
        async with self._store.unit_of_work() as uow:
            sent = await uow.timeline.by_provider_ref(PROVIDER, message_id)
            if sent is None:
                return
            await uow.timeline.update_delivery(
                sent.id,
                status="bounced" if action == "failed" else action,
                error=diagnostic,
                error_code=status,
                bounced_recipients=list(recipients),
            )
            await uow.commit()
