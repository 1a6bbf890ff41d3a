"""Mailbox read positions and quarantined messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm_store.tables import MailboxCursorRow, QuarantineRow


@dataclass(frozen=True, slots=True)
class MailboxCursor:
    """How far a mailbox has been read."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A message that could not be taken in, and why."""

    id: int
    mailbox: str
    uidvalidity: int
    uid: int
    reason: str
    raw_path: str | None
    size: int
    created_at: datetime


class MailRepository:
    """Mailbox cursors and the quarantine."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def cursor(self, mailbox: str) -> MailboxCursor | None:
        """Where reading the mailbox stopped, or None before the first message."""
        row = await self._session.get(MailboxCursorRow, mailbox)
        return None if row is None else MailboxCursor(row.uidvalidity, row.last_uid)

    async def advance(self, mailbox: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
        """Record that every message up to last_uid (under uidvalidity) has been taken."""
        row = await self._session.get(MailboxCursorRow, mailbox)
        if row is None:
            self._session.add(
                MailboxCursorRow(
                    mailbox=mailbox, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now
                )
            )
        elif (row.uidvalidity, row.last_uid) != (uidvalidity, last_uid):
            row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, last_uid, now
        await self._session.flush()

    async def quarantine(
        self,
        *,
        mailbox: str,
        uidvalidity: int,
        uid: int,
        digest: str,
        reason: str,
        raw_path: str | None,
        size: int,
        now: datetime,
    ) -> bool:
        """Keep a message that could not be taken in, once per mailbox and content (its
        SHA-256), however often it is delivered; False when it was kept before."""
        found = await self._session.scalar(
            select(QuarantineRow.id).where(
                QuarantineRow.mailbox == mailbox,
                (QuarantineRow.digest == digest)
                | ((QuarantineRow.uidvalidity == uidvalidity) & (QuarantineRow.uid == uid)),
            )
        )
        if found is not None:
            return False
        self._session.add(
            QuarantineRow(
                mailbox=mailbox,
                uidvalidity=uidvalidity,
                uid=uid,
                digest=digest,
                reason=reason,
                raw_path=raw_path,
                size=size,
                created_at=now,
            )
        )
        await self._session.flush()
        return True

    async def quarantined(self, *, limit: int, before_id: int | None = None) -> list[Quarantined]:
        """The newest quarantined messages first."""
        query = select(QuarantineRow).order_by(QuarantineRow.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(QuarantineRow.id < before_id)
        return [
            Quarantined(
                r.id, r.mailbox, r.uidvalidity, r.uid, r.reason, r.raw_path, r.size, r.created_at
            )
            for r in await self._session.scalars(query)
        ]
