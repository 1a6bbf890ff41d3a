"""The SMS channel adapter: Twilio's signed inbound webhook, opt-out keywords."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, ClassVar

import structlog
from aiohttp import web
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from hub.channels.base import (
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    InboundSink,
    OutboundMessage,
)
from hub.channels.sms.inbound import parse_webhook, to_inbound_message
from hub.channels.sms.outbound import send_sms
from hub.channels.twilio.account import TwilioAccount
from hub.channels.twilio.client import HubTwilioHttpClient, twilio_client
from hub.channels.twilio.media import RESUME_DAYS, keep_media, owed_event
from hub.config import Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.events import AttachmentsOwed
from hub.domain.interaction import Channel
from hub.domain.timeline import Attachment
from hub.errors import ChannelConfigError, ChannelError, Conflict, MalformedRequest
from hub.http import public
from hub.services.texts import UNSUBSCRIBED, TextRecords

log = structlog.get_logger(__name__)
EMPTY_TWIML = str(MessagingResponse())  # the answer to every inbound SMS, built once

INBOUND_PATH = "/webhooks/twilio/sms"  # our numbers' SMS URL
STATUS_PATH = "/webhooks/twilio/sms/status"


class SmsChannel(ChannelAdapter):
    """SMS and MMS with customers, through Twilio."""

    channel: ClassVar[Channel] = Channel.SMS
    capabilities: ClassVar[Capability] = Capability.OUTBOUND | Capability.ATTACHMENTS
    max_body: ClassVar[int | None] = 1600  # Twilio's limit for one message's body

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], datetime]) -> None:
        self._account = TwilioAccount.from_settings(settings, "SMS")
        self._region = settings.default_region
        self._store = store
        self.texts = TextRecords(store, clock)
        self._clock = clock
        self._settings = settings
        self._client: Client | None = None
        self._http: HubTwilioHttpClient | None = None
        self.backoff_seconds = 0.5
        store.bus.subscribe(AttachmentsOwed, self._on_attachments_owed)

    async def start(self, sink: InboundSink) -> None:
        await super().start(sink)
        await self._resume_media()

    async def _resume_media(self) -> None:
        """Fetch the MMS media a stopped hub had not fetched yet (Twilio keeps it for us).

        The event records each attachment's URL when the message commits; a file kept, or a
        fetch that gave up, records its path or error. Anything with neither is still owed.
        """
        owed = await self.texts.media_owed(self._clock() - timedelta(days=RESUME_DAYS))
        for event in owed:
            self.spawn(self._keep(event.id, event.attachments))
        if owed:
            log.info("fetching MMS media a stopped hub had not fetched", messages=len(owed))

    async def _on_attachments_owed(self, event: AttachmentsOwed) -> None:
        """Fetch an MMS's media once its message is committed (the outbox says so).

        Fetched beside the lanes, not in one: a slow link must not hold up the events of other
        interactions. A hub that stops first fetches what is still owed at its next start.
        """
        if event.channel is not Channel.SMS or not self.running:
            return
        stored = await owed_event(self._store, event.event_id)
        if stored is not None:
            self.spawn(self._keep(stored.id, stored.attachments))

    def _keep(self, event_id: int, media: tuple[Attachment, ...]) -> Coroutine[Any, Any, None]:
        return keep_media(
            self._store, self._settings, event_id, media, backoff_seconds=self.backoff_seconds
        )

    async def stop(self) -> None:
        await super().stop()
        if self._http is not None:
            await self._http.close()
            self._client = self._http = None

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Send an SMS from the number the customer wrote to (else our first number)."""
        if await self.texts.opted_out(message.to):
            raise Conflict(
                f"{message.to.value} has opted out of SMS (texted STOP); not sent",
                code="sms_opted_out",
            )
        sender = message.reply_from or next(iter(self._account.queues), None)
        if sender is None:
            raise ChannelConfigError("no Twilio number to send from: set twilio.numbers")
        if self._client is None:
            self._client, self._http = twilio_client(self._settings)
        try:
            sent = await send_sms(
                self._client,
                to=message.to.value,
                sender=sender,
                body=message.body,
                status_callback=self._account.public_url + STATUS_PATH,
                backoff_seconds=self.backoff_seconds,
            )
        except ChannelError as err:
            if str(err.details.get("twilio_code")) != UNSUBSCRIBED:
                raise
            # Twilio knows the number opted out (STOP handled by Twilio): so must the hub.
            await self.texts.opt_out(message.to)
            raise Conflict(
                f"{message.to.value} has opted out of SMS at Twilio (error 21610); not sent",
                code="sms_opted_out",
            ) from err
        return DeliveryReceipt("twilio", sent.sid, sent.status)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(INBOUND_PATH, self.handle_inbound),
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
        await self.texts.delivery(sid, status, params.get("ErrorCode"))
        return web.Response(status=204)

    @public  # authenticated by Twilio's signature instead of a user's token
    async def handle_inbound(self, request: web.Request) -> web.Response:
        """Store an inbound SMS (once per MessageSid), then answer Twilio with empty TwiML."""
        params = await self._account.verified_form(request)
        webhook = parse_webhook(params, self._region)
        now = self._clock()
        await self.sink()(to_inbound_message(webhook, queues=self._account.queues, now=now))
        # Answered only now, after commit: a lost answer makes Twilio retry, harmlessly.
        return web.Response(text=EMPTY_TWIML, content_type="application/xml")
