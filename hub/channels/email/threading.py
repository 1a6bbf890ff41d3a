"""Which interaction a message belongs to, and why (RFC 5322 threading, then our own hints).

In order, the first that answers decides:

1. **References**: In-Reply-To, then References newest first, against Message-IDs we have seen
   or sent (every email event keeps its Message-ID as its provider reference).
2. **Reply token**: our replies go out with Reply-To ``local+{interaction}.{signature}@domain``;
   a message to such an address (with a signature we made) belongs to that interaction, even
   when the customer's mail program dropped the headers.
3. **Subject**: the same sender's open email interaction whose subject normalizes the same
   (Re:, Fwd:, AW:, WG:, SV:, 回复:, 答复:, 转发: ... removed), opened within the window.
4. Otherwise a new interaction, keyed by the message's own Message-ID.

The decision and its reason go on the timeline event (``data["threading"]``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hub.channels.email.parse import ParsedEmail, normalize_subject
from hub.crm_store.unit_of_work import UnitOfWork
from hub.domain.identity import IdentityRef
from hub.domain.interaction import Channel
from hub.keys import key_file

PROVIDER = "email"
TOKEN = re.compile(r"^(?P<local>[^+@]+)\+(?P<interaction>\d+)\.(?P<signature>[a-z2-7]{10})@")


@dataclass(frozen=True, slots=True)
class Thread:
    """Where a message goes: the thread key to join (or open), how it was found, and why."""

    key: str
    how: str  # references | reply_token | subject | new
    reason: str
    interaction_id: int | None = None

    def as_data(self) -> dict[str, object]:
        return {"how": self.how, "reason": self.reason, "interaction_id": self.interaction_id}


class ReplyTokens:
    """Signed plus-addresses that name an interaction: ``support+42.k3j5h7m2q4@example.com``."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> ReplyTokens:
        """The key kept in path (made on first use, readable by the hub's user only)."""
        return cls(key_file(path))

    def _signature(self, interaction_id: int) -> str:
        digest = hmac.new(self._key, str(interaction_id).encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode().lower()[:10]

    def address(self, mailbox_address: str, interaction_id: int) -> str:
        """Our mailbox's address with the interaction's token."""
        local, _, domain = mailbox_address.partition("@")
        return f"{local}+{interaction_id}.{self._signature(interaction_id)}@{domain}"

    def interaction_of(self, address: str) -> int | None:
        """The interaction a token address names, if we signed it."""
        found = TOKEN.match(address.lower())
        if found is None:
            return None
        interaction_id = int(found["interaction"])
        if not hmac.compare_digest(found["signature"], self._signature(interaction_id)):
            return None
        return interaction_id


async def decide(
    uow: UnitOfWork,
    parsed: ParsedEmail,
    sender: IdentityRef,
    *,
    tokens: ReplyTokens,
    now: datetime,
    subject_window: timedelta,
) -> Thread:
    """Decide the thread of an inbound message (see the module's docstring)."""
    referenced = _referenced(parsed)
    known = await uow.timeline.by_provider_refs(PROVIDER, referenced)  # one query for all
    held = {
        i.id: i
        for i in await uow.interactions.many(
            e.interaction_id for e in known.values() if e.interaction_id is not None
        )
    }
    for message_id in referenced:
        event = known.get(message_id)
        if event is None or event.interaction_id is None:
            continue
        interaction = held.get(event.interaction_id)
        if interaction is None or interaction.thread_key is None:
            continue
        header = "In-Reply-To" if message_id == parsed.in_reply_to else "References"
        reason = f"{header} names {message_id}, a message of interaction #{interaction.id}"
        if not interaction.is_open:
            reason += "; that one is closed, so a new interaction carries the thread on"
        return Thread(interaction.thread_key, "references", reason, interaction.id)
    for address in parsed.recipients:
        interaction_id = tokens.interaction_of(address)
        if interaction_id is None:
            continue
        interaction = await uow.interactions.get(interaction_id)
        if interaction is not None and interaction.thread_key is not None:
            return Thread(
                interaction.thread_key,
                "reply_token",
                f"sent to {address}, the reply address of interaction #{interaction_id}",
                interaction_id,
            )
    wanted = normalize_subject(parsed.subject)
    if wanted:
        since = now - subject_window
        for holder in await uow.customers.holders(sender):
            for interaction in await uow.interactions.open_of_customer(holder.customer_id):
                if (
                    interaction.channel is Channel.EMAIL
                    and interaction.thread_key is not None
                    and interaction.opened_at >= since
                    and normalize_subject(interaction.subject or "") == wanted
                ):
                    return Thread(
                        interaction.thread_key,
                        "subject",
                        f'same sender and subject "{parsed.subject}" as open interaction '
                        f"#{interaction.id}, opened within {subject_window.days} days",
                        interaction.id,
                    )
    reason = "no known In-Reply-To, References or reply address"
    if wanted:
        reason += f', and no open interaction of {sender.value} about "{parsed.subject}"'
    return Thread(f"email:{parsed.message_id}", "new", reason + ": a new conversation")


def _referenced(parsed: ParsedEmail) -> list[str]:
    """In-Reply-To first, then References newest first, each once."""
    ordered = [parsed.in_reply_to] if parsed.in_reply_to else []
    ordered += reversed(parsed.references)
    return list(dict.fromkeys(ordered))
