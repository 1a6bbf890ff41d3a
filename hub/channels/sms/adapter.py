"""The SMS channel adapter: Twilio's signed inbound webhook, opt-out keywords."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from aiohttp import web
from twilio.twiml.messaging_response import MessagingResponse

from hub.channels.base import (
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    InboundSink,
    OutboundMessage,
)
from hub.channels.sms.inbound import Keyword, parse_webhook, to_inbound_message
from hub.channels.twilio.signature import verified_form
from hub.config import Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.identity import IdentityKind, IdentityRef, normalize_phone
from hub.domain.interaction import Channel
from hub.domain.timeline import Direction, EventKind
from hub.errors import ChannelConfigError, ChannelNotReady
from hub.http import HUB, public


class SmsChannel(ChannelAdapter):
    """SMS and MMS with customers, through Twilio."""

    channel: ClassVar[Channel] = Channel.SMS
    capabilities: ClassVar[Capability] = Capability.ATTACHMENTS

    def __init__(self, settings: Settings, store: Store) -> None:
        token = settings.twilio.auth_token
        if token is None:
            raise ChannelConfigError("HUB_TWILIO__AUTH_TOKEN is needed for the SMS channel")
        self._token = token.get_secret_value()
        self._public_url = settings.public_url
        self._region = settings.default_region
        self._queues = {
            normalize_phone(number, settings.default_region): queue
            for number, queue in settings.twilio.numbers.items()
        }
        self._store = store
        self._sink: InboundSink | None = None

    async def start(self, sink: InboundSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        raise ChannelNotReady(
            "sending SMS is not built yet (issue 4 continues)",
            interaction_id=message.interaction_id,
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhooks/twilio/sms", self.handle_inbound)]

    @public  # authenticated by Twilio's signature instead of a user's token
    async def handle_inbound(self, request: web.Request) -> web.Response:
        """Store an inbound SMS (once per MessageSid), then answer Twilio with empty TwiML."""
        if self._sink is None:
            raise ChannelNotReady("the SMS channel is not started")
        params = await verified_form(request, self._token, self._public_url)
        webhook = parse_webhook(params, self._region)
        now = request.app[HUB].clock()
        received = await self._sink(to_inbound_message(webhook, queues=self._queues, now=now))
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
