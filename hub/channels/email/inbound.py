"""One fetched message -> the customer's timeline: parsed, threaded, stored once, or quarantined.

Noise (auto-replies, list mail, bounces) is kept on the timeline without work. A bounce also
marks the reply of ours it bounced (``bounced``, with the failed recipients and the reason).
A message the hub cannot take in is kept under ``data_dir/quarantine`` with its reason, and the
mailbox goes on with the next one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

import structlog

from hub.channels.base import FaxGateways, InboundSink
from hub.channels.email.parse import (
    Bounce,
    ParsedEmail,
    UnreadableEmail,
    content_digest,
    parse_email,
)
from hub.channels.email.threading import PROVIDER, ReplyTokens, decide
from hub.config import MailboxSettings, Settings
from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.identity import IdentityKind, IdentityRef, normalize_identity
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.errors import InvalidIdentity
from hub.services.files import keep_files
from hub.services.mail import MailRecords

log = structlog.get_logger(__name__)
MAX_BYTES = 50 * 1024 * 1024  # larger messages are quarantined, not parsed
CONCURRENCY = 64  # conversations stored at once (their messages share the group commit)
# Threading reads at once. Each holds a pooled connection while it runs; 64 at once overflowed
# PostgreSQL's pool, which closes an overflow connection when it comes back, so every batch
# opened (and prepared statements on) new connections: a third of the ingest's processor time.
READS = 8


class Outcome(StrEnum):
    """What became of a fetched message."""

    STORED = "stored"  # new work, or a reply on an interaction
    NOISE = "noise"  # kept on the timeline, no work (auto-reply, list, bounce)
    DUPLICATE = "duplicate"  # the same Message-ID was taken before
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Fetched:
    """A message as the mailbox gave it."""

    mailbox: MailboxSettings
    uidvalidity: int
    uid: int
    raw: bytes


class MailIngest:
    """Takes fetched messages into the store through the core's receive path."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        records: MailRecords,
        sink: Callable[[], InboundSink],
        tokens: ReplyTokens,
        clock: Callable[[], datetime],
        *,
        fax: FaxGateways | None = None,
    ) -> None:
        self._fax = fax
        self._settings = settings
        self._store = store
        self._records = records
        self._sink = sink
        self._tokens = tokens
        self._clock = clock
        self._folder = Path(settings.data_dir)
        self._reads = asyncio.Semaphore(READS)

    async def take_batch(self, batch: list[Fetched]) -> list[Outcome]:
        """Store a batch: parsed in a worker thread, then stored conversation by conversation.

        Messages that may thread onto each other (the same sender, or a shared root Message-ID)
        are stored one after another in UID order; separate conversations go at the same time.
        """
        parsed = await asyncio.to_thread(lambda: [_parse(fetched) for fetched in batch])
        outcomes: dict[int, Outcome] = {}
        limit = asyncio.Semaphore(CONCURRENCY)
        # Which messages were stored before this batch, in one read for the batch. A Message-ID
        # the batch holds twice is looked up again at its second copy, once the first (in the
        # same conversation, so stored before it) has committed.
        ids = [p.message_id for p in parsed if not isinstance(p, str)]
        async with self._store.reading() as uow:
            stored = set(await uow.timeline.by_provider_refs(PROVIDER, ids))
        repeated = {i for i, count in Counter(ids).items() if count > 1}

        async def conversation(members: list[int]) -> None:
            async with limit:
                for n in members:
                    message = parsed[n]
                    if not isinstance(message, str) and message.message_id in stored:
                        outcomes[n] = Outcome.DUPLICATE
                        continue
                    outcomes[n] = await self._take_parsed(batch[n], message, repeated)

        await asyncio.gather(*(conversation(group) for group in _conversations(parsed)))
        return [outcomes[n] for n in range(len(batch))]

    async def _take_parsed(
        self, fetched: Fetched, parsed: ParsedEmail | str, repeated: set[str]
    ) -> Outcome:
        if isinstance(parsed, str):
            reason = parsed
        else:
            try:
                return await self._store_parsed(fetched, parsed, parsed.message_id in repeated)
            except InvalidIdentity as err:
                reason = err.message
        await self._quarantine(fetched, reason)
        return Outcome.QUARANTINED

    async def _store_parsed(self, fetched: Fetched, parsed: ParsedEmail, repeated: bool) -> Outcome:
        """Store a message its batch had not stored before (``repeated``: its Message-ID
        came earlier in the batch, so it may have been stored since)."""
        assert parsed.sender is not None
        sender = normalize_identity(IdentityKind.EMAIL, parsed.sender.email, "US")
        now = self._clock()
        # Only reads: a conversation's messages are stored one after another, so each reads
        # what the one before it committed.
        async with self._reads, self._store.reading() as uow:
            if repeated and (
                await uow.timeline.by_provider_ref(PROVIDER, parsed.message_id) is not None
            ):
                return Outcome.DUPLICATE
            bounced = await self._bounced_reply(uow, parsed)
            if bounced is not None:
                # A bounce of one of our replies goes on that customer's timeline, beside it.
                sender = bounced
            thread = await decide(
                uow,
                parsed,
                sender,
                tokens=self._tokens,
                now=now,
                subject_window=timedelta(days=self._settings.email.subject_window_days),
            )
        folder = (
            self._folder / "mail" / fetched.mailbox.name / f"{fetched.uidvalidity}-{fetched.uid}"
        )
        attachments = await asyncio.to_thread(keep_files, folder, parsed.attachments)
        gateway = self._fax.gateway_for(sender.value) if self._fax is not None else None
        if self._fax is not None and gateway is not None:
            fax = await self._fax.take_gateway_mail(
                gateway,
                message_id=parsed.message_id,
                subject=parsed.subject,
                text=parsed.text,
                attachments=attachments,
            )
            if fax is not None:
                return Outcome.DUPLICATE if fax.duplicate else Outcome.STORED
        mailbox = fetched.mailbox
        answer_to = parsed.reply_to or parsed.sender
        received = await self._sink()(
            InboundMessage(
                channel=Channel.EMAIL,
                sender=sender,
                received_at=now,
                body=parsed.text,
                provider=PROVIDER,
                provider_ref=parsed.message_id,
                name=parsed.sender.name or None,
                subject=parsed.subject or None,
                thread_key=thread.key,
                queue=mailbox.queue,
                attachments=attachments,
                creates_work=parsed.noise is None,
                data={
                    "mailbox": mailbox.name,
                    "from": answer_to.email,
                    "from_name": parsed.sender.name,
                    "to": mailbox.address,
                    "recipients": list(parsed.recipients),
                    "message_id": parsed.message_id,
                    "in_reply_to": parsed.in_reply_to,
                    "references": list(parsed.references),
                    "sent_at": parsed.date.isoformat() if parsed.date else None,
                    "html": parsed.html,
                    "charsets": list(parsed.charsets),
                    "threading": thread.as_data(),
                    "noise": parsed.noise.value if parsed.noise else None,
                    "noise_reason": parsed.noise_reason,
                    **({"sender_note": parsed.sender_note} if parsed.sender_note else {}),
                    **({"repairs": list(parsed.repairs)} if parsed.repairs else {}),
                    **({"bounced_from": parsed.sender.email} if bounced is not None else {}),
                },
            )
        )
        if received.duplicate:
            return Outcome.DUPLICATE
        if parsed.bounce is not None:
            await self._mark_bounced(parsed.bounce)
        return Outcome.NOISE if parsed.noise is not None else Outcome.STORED

    @staticmethod
    async def _bounced_reply(uow: UnitOfWork, parsed: ParsedEmail) -> IdentityRef | None:
        """The address of ours a bounce is about (the reply it bounces was sent to it)."""
        if parsed.bounce is None or parsed.bounce.original_message_id is None:
            return None
        sent = await uow.timeline.by_provider_ref(PROVIDER, parsed.bounce.original_message_id)
        to = sent.data.get("to") if sent is not None else None
        if not isinstance(to, str) or "@" not in to:
            return None
        try:
            return normalize_identity(IdentityKind.EMAIL, to, "US")
        except InvalidIdentity:
            return None

    async def _mark_bounced(self, bounce: Bounce) -> None:
        if bounce.original_message_id is None:
            return
        await self._records.bounced(
            bounce.original_message_id,
            action=bounce.action,
            status=bounce.status,
            diagnostic=bounce.diagnostic,
            recipients=bounce.recipients,
        )

    async def _quarantine(self, fetched: Fetched, reason: str) -> None:
        """Keep the message for an admin, once by its content: delivered again, it is known."""
        digest = content_digest(fetched.raw)
        folder = self._folder / "quarantine" / fetched.mailbox.name
        path = folder / f"{digest}.eml"

        def keep() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(fetched.raw)

        await asyncio.to_thread(keep)
        added = await self._records.quarantine(
            mailbox=fetched.mailbox.name,
            uidvalidity=fetched.uidvalidity,
            uid=fetched.uid,
            digest=digest,
            reason=reason,
            raw_path=str(path),
            size=len(fetched.raw),
        )
        log.warning(
            "email quarantined" if added else "email quarantined before, delivered again",
            mailbox=fetched.mailbox.name,
            uid=fetched.uid,
            reason=reason,
        )


def _parse(fetched: Fetched) -> ParsedEmail | str:
    """The parsed message, or why it cannot be taken in (blocking: run in a thread)."""
    try:
        if len(fetched.raw) > MAX_BYTES:
            raise UnreadableEmail(f"larger than {MAX_BYTES} bytes")
        return parse_email(fetched.raw)
    except UnreadableEmail as err:
        return str(err)
    except Exception as err:  # a message that breaks the parser must not stop the mailbox
        log.exception("email could not be read", mailbox=fetched.mailbox.name, uid=fetched.uid)
        return f"{type(err).__name__}: {err}"


def _conversations(parsed: list[ParsedEmail | str]) -> list[list[int]]:
    """Indexes grouped so that messages that may thread together share a group (union-find)."""
    parent = list(range(len(parsed)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    first_of: dict[str, int] = {}
    for n, message in enumerate(parsed):
        if isinstance(message, str) or message.sender is None:
            continue
        keys = [message.sender.email.lower(), message.message_id, *message.references]
        keys += [message.in_reply_to] if message.in_reply_to else []
        for key in keys:
            if key in first_of:
                parent[root(n)] = root(first_of[key])
            else:
                first_of[key] = n
    groups: dict[int, list[int]] = {}
    for n in range(len(parsed)):
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())
