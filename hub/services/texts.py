"""What the SMS channel keeps of text messages: delivery statuses and opt-outs (consent).

The SMS channel (``hub.channels.sms``) verifies Twilio's webhooks and sends; a number that
opted out (STOP to us, or to Twilio, which then refuses with error 21610) is kept here, and no
SMS is sent to it until it opts back in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from hub.crm_store.unit_of_work import Store
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel
from hub.domain.timeline import TimelineEvent

PROVIDER = "twilio"
# Twilio's message statuses in the order they happen
# (https://www.twilio.com/docs/messaging/api/message-resource#message-status-values); the last
# three are final. A status the hub does not know yet is kept only on a message with none.
STATUSES = (
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "partially_delivered",
    "delivered",
    "read",
    "undelivered",
    "failed",
    "canceled",
)
UNSUBSCRIBED = "21610"  # Twilio: the recipient texted STOP to Twilio's own opt-out handling


def _rank(status: object) -> int:
    return STATUSES.index(status) if status in STATUSES else -1


class TextRecords:
    """The SMS events of the timeline and the numbers' consent, as the SMS channel learns them."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def opted_out(self, number: IdentityRef) -> bool:
        async with self._store.reading() as uow:
            return await uow.customers.is_opted_out(number)

    async def opt_out(self, number: IdentityRef) -> None:
        async with self._store.unit_of_work() as uow:
            await uow.customers.set_opt_out(number, self._clock())
            await uow.commit()

    async def delivery(self, sid: str, status: str, error_code: str | None) -> None:
        """A message's delivery status; statuses only move forward (callbacks can come late).
        Twilio's 21610 means the number opted out at Twilio: so it has at the hub."""
        async with self._store.unit_of_work() as uow:
            event = await uow.timeline.by_provider_ref(PROVIDER, sid)
            current = event.data.get("status") if event is not None else None
            if event is None or _rank(status) < _rank(current):
                return
            changes: dict[str, Any] = {"status": status}
            if error_code:
                changes["error_code"] = error_code
            await uow.timeline.update_delivery(event.id, **changes)
            to = event.data.get("to")
            if error_code == UNSUBSCRIBED and isinstance(to, str):
                await uow.customers.set_opt_out(IdentityRef(IdentityKind.PHONE, to), self._clock())
            await uow.commit()

    async def media_owed(self, since: datetime) -> list[TimelineEvent]:
        """Messages since then whose media is still to be fetched."""
        async with self._store.reading() as uow:
            recent = await uow.timeline.recent_messages(Channel.SMS, since=since, limit=1000)
        return [e for e in recent if any(a.owed for a in e.attachments)]
