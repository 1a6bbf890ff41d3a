"""The SMS channel adapter: Twilio's signed inbound webhook, opt-out keywords."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from aiohttp import web
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from hub.channels.base import (
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    OutboundMessage,
)
from hub.channels.sms.inbound import Keyword, parse_webhook, to_inbound_message
from hub.channels.sms.outbound import send_sms
from hub.channels.twilio.account import TwilioAccount
from hub.channels.twilio.client import HubTwilioHttpClient, twilio_client
from hub.channels.twilio.media import keep_media
from hub.config import Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel
from hub.domain.timeline import Direction, EventKind
from hub.errors import ChannelConfigError, Conflict, MalformedRequest
from hub.http import HUB, public

STATUS_PATH = "/webhooks/twilio/sms/status"
# Twilio's message statuses in the order they happen; the last three are final.
_ORDER = ("accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed")


def _rank(status: object) -> int:
    return _ORDER.index(status) if status in _ORDER else -1


class SmsChannel(ChannelAdapter):
    """SMS and MMS with customers, through Twilio."""

    channel: ClassVar[Channel] = Channel.SMS
    capabilities: ClassVar[Capability] = Capability.OUTBOUND | Capability.ATTACHMENTS
    max_body: ClassVar[int | None] = 1600  # Twilio's limit for one message's body

    def __init__(self, settings: Settings, store: Store) -> None:
        self._account = TwilioAccount.from_settings(settings, "SMS")
        self._region = settings.default_region
        self._store = store
        self._settings = settings
        self._client: Client | None = None
        self._http: HubTwilioHttpClient | None = None
        self.backoff_seconds = 0.5

    async def stop(self) -> None:
        await super().stop()
        if self._http is not None:
            await self._http.close()
            self._client = self._http = None

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Send an SMS from the number the customer wrote to (else our first number)."""
        async with self._store.unit_of_work() as uow:
            if await uow.customers.is_opted_out(message.to):
                raise Conflict(
                    f"{message.to.value} has opted out of SMS (texted STOP); not sent",
                    code="sms_opted_out",
                )
        sender = message.reply_from or next(iter(self._account.queues), None)
        if sender is None:
            raise ChannelConfigError("no Twilio number to send from: set twilio.numbers")
        if self._client is None:
            self._client, self._http = twilio_client(self._settings)
        sent = await send_sms(
            self._client,
            to=message.to.value,
            sender=sender,
            body=message.body,
            status_callback=self._account.public_url + STATUS_PATH,
            backoff_seconds=self.backoff_seconds,
        )
        return DeliveryReceipt("twilio", sent.sid, sent.status)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/webhooks/twilio/sms", self.handle_inbound),
            web.post(STATUS_PATH, self.handle_status),
        ]

    @public  # authenticated by Twilio's signature
    async def handle_status(self, request: web.Request) -> web.Response:
        """Record a delivery status (statuses only move forward: callbacks can come late)."""
        params = await self._account.verified_form(request)
        sid, status = params.get("MessageSid"), params.get("MessageStatus")
        if not sid or not status:
            raise MalformedRequest("the status callback lacks MessageSid or MessageStatus")
        await self.sent_message(self._store, "twilio", sid)  # it may not be recorded yet
        async with self._store.unit_of_work() as uow:  # read again: in this transaction
            event = await uow.timeline.by_provider_ref("twilio", sid)
            if event is not None and _rank(status) >= _rank(event.data.get("status")):
                changes: dict[str, Any] = {"status": status}
                if params.get("ErrorCode"):
                    changes["error_code"] = params["ErrorCode"]
                await uow.timeline.update_delivery(event.id, **changes)
                await uow.commit()
        return web.Response(status=204)

    @public  # authenticated by Twilio's signature instead of a user's token
    async def handle_inbound(self, request: web.Request) -> web.Response:
        """Store an inbound SMS (once per MessageSid), then answer Twilio with empty TwiML."""
        params = await self._account.verified_form(request)
        webhook = parse_webhook(params, self._region)
        now = request.app[HUB].clock()
        received = await self.sink()(
            to_inbound_message(webhook, queues=self._account.queues, now=now)
        )
        if webhook.media and not received.duplicate:
            self.spawn(
                keep_media(
                    self._store,
                    self._settings,
                    received.event_id,
                    webhook.media,
                    backoff_seconds=self.backoff_seconds,
                )
            )
        if webhook.keyword in (Keyword.OPT_OUT, Keyword.OPT_IN) and not received.duplicate:
            await self._consent(
                IdentityRef(IdentityKind.PHONE, webhook.sender),
                received.customer_id,
                opted_out=webhook.keyword is Keyword.OPT_OUT,
                now=now,
            )
        # Answered only now, after commit: a lost answer makes Twilio retry, harmlessly.
        return web.Response(text=str(MessagingResponse()), content_type="application/xml")

    async def _consent(
        self, sender: IdentityRef, customer_id: int, *, opted_out: bool, now: datetime
    ) -> None:
        async with self._store.unit_of_work() as uow:
            await uow.customers.set_opt_out(sender, now if opted_out else None)
            await uow.timeline.append(
                customer_id=customer_id,
                kind=EventKind.STATUS_CHANGE,
                direction=Direction.INTERNAL,
                occurred_at=now,
                channel=Channel.SMS,
                body=f"{sender.value} {'opted out of' if opted_out else 'opted back in to'} SMS",
                data={"sms_opt_out": opted_out},
            )
            await uow.commit()
