"""What channel adapters hand to the core: a provider-neutral inbound message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.domain.identity import IdentityClaim, IdentityRef
from hub.domain.interaction import Channel
from hub.domain.timeline import Attachment, EventKind


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A contact from a customer, normalised at the edge.

    ``sender`` is the identity the channel vouches for (the carrier's From number, the chat
    session's visitor id). ``claims`` are further identities the message asserts; only verified
    ones may resolve the customer, unverified ones become merge suggestions on conflict.
    ``provider`` + ``provider_ref`` name the message at its source, so a retry is a no-op.
    ``creates_work`` False (an SMS STOP, an auto-reply, a bounce) keeps the message on the
    customer's timeline without opening an interaction or offering anything to an agent.
    ``opt_out`` True (STOP) or False (START) changes the sender's consent to the channel's
    messages, in the same transaction as the message: a crash can lose neither without the
    other, and the provider's retry brings both.
    """

    channel: Channel
    sender: IdentityRef
    received_at: datetime
    body: str = ""
    provider: str | None = None
    provider_ref: str | None = None
    name: str | None = None
    claims: tuple[IdentityClaim, ...] = ()
    subject: str | None = None
    thread_key: str | None = None
    queue: str | None = None
    attachments: tuple[Attachment, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    creates_work: bool = True
    opt_out: bool | None = None
    event_kind: EventKind = EventKind.MESSAGE  # CALL for an incoming phone call
