"""Faxes in: what a provider's webhook or a fax-to-email gateway's mail hands the core.

Pure functions from a verified ``FaxEvent`` (or a gateway's mail) to an ``InboundMessage``;
the adapter verifies, the core stores, and the document is fetched after commit.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from hub.channels.caller_id import WITHHELD, caller_number
from hub.channels.fax import documents
from hub.channels.fax.provider import FaxEvent
from hub.config import FaxGatewaySettings
from hub.domain.identity import IdentityKind, IdentityRef, anonymous
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.timeline import Attachment

GATEWAY = "email-fax"  # the provider name of faxes that came through a fax-to-email gateway


def sender_of(event: FaxEvent, provider: str, region: str) -> tuple[IdentityRef, dict[str, Any]]:
    """Who sent the fax, and what the event keeps of it: a withheld number (``anonymous``,
    a placeholder) is a sender of its own, never anybody's customer record."""
    number = caller_number(event.sender, region)
    if number is None:
        return anonymous(provider, event.fax_id), {"from": WITHHELD, "sender_withheld": True}
    return IdentityRef(IdentityKind.FAX, number), {"from": number}


def received_fax(
    event: FaxEvent, *, provider: str, region: str, queue: str | None, now: datetime
) -> InboundMessage:
    """A fax received: work in the queue its number feeds, its document to fetch."""
    sender, who = sender_of(event, provider, region)
    return InboundMessage(
        channel=Channel.FAX,
        sender=sender,
        received_at=now,
        provider=provider,
        provider_ref=event.fax_id,
        queue=queue,
        attachments=(Attachment(f"fax-{event.fax_id}", documents.PDF, url=event.media_url),),
        name="Withheld number" if "sender_withheld" in who else None,
        data={
            **who,
            "to": event.to,
            "fax_id": event.fax_id,
            "page_count": event.page_count,
            # Only some pages came through: the document is what did.
            "status": "received in part" if event.partial else "received",
            "partial": event.partial,
            "document": "fetching",
        },
    )


def failed_fax(
    event: FaxEvent, meaning: str, *, provider: str, region: str, now: datetime
) -> InboundMessage:
    """A fax that did not come through: a line on the sender's timeline, no work."""
    sender, who = sender_of(event, provider, region)
    return InboundMessage(
        channel=Channel.FAX,
        sender=sender,
        received_at=now,
        body=f"A fax from {who['from']} did not come through ({meaning}).",
        provider=provider,
        provider_ref=f"{event.fax_id}:failed",
        creates_work=False,
        data={
            **who,
            "to": event.to,
            "status": "failed",
            "failure_reason": event.failure_reason,
        },
    )


def gateway_fax(
    gateway: FaxGatewaySettings,
    *,
    message_id: str,
    subject: str,
    text: str,
    attachments: tuple[Attachment, ...],
    region: str,
    now: datetime,
) -> InboundMessage | None:
    """A gateway's mail as the fax it carries; None when it is not one (then it is email):
    it needs a kept PDF or TIFF, and the sender's number in its subject or text."""
    kept = [a for a in attachments if a.path and a.content_type in (documents.PDF, documents.TIFF)]
    number = None
    for where in (subject, text):
        for found in re.finditer(gateway.number_pattern, where or ""):
            read = caller_number(found.group(1) if found.groups() else found.group(0), region)
            if read is not None:
                number = IdentityRef(IdentityKind.FAX, read)
                break
        if number is not None:
            break
    if not kept or number is None:
        return None
    return InboundMessage(
        channel=Channel.FAX,
        sender=number,
        received_at=now,
        provider=GATEWAY,
        provider_ref=message_id,
        queue=gateway.queue,
        attachments=(kept[0],),
        data={
            "from": number.value,
            "to": gateway.address,
            "gateway": gateway.address,
            "subject": subject,
            "status": "received",
            "document": "kept",
        },
    )
