"""The voice channel adapter: Twilio's signed call webhooks, TwiML answers, hang-ups."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from aiohttp import web
from twilio.twiml.voice_response import VoiceResponse

from hub.channels.base import (
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    OutboundMessage,
)
from hub.channels.twilio.account import TwilioAccount
from hub.channels.voice.agents import agent_of, join_twiml, refuse_twiml
from hub.channels.voice.inbound import (
    ENDED,
    closed_twiml,
    hold_twiml,
    parse_call,
    to_inbound_message,
)
from hub.config import Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.interaction import Channel, InteractionState
from hub.domain.timeline import Attachment, Direction, EventKind
from hub.errors import ChannelConfigError, MalformedRequest
from hub.http import HUB, public

if TYPE_CHECKING:
    from hub.routing.service import RoutingService

CALL_PATH = "/webhooks/twilio/voice"
STATUS_PATH = "/webhooks/twilio/voice/status"
VOICEMAIL_PATH = "/webhooks/twilio/voice/voicemail"
AGENT_PATH = "/webhooks/twilio/voice/agent"  # the TwiML app's voice URL
WAITING = frozenset({InteractionState.NEW, InteractionState.QUEUED, InteractionState.OFFERED})


class VoiceChannel(ChannelAdapter):
    """Incoming calls wait in a conference for an agent; hang-ups while waiting are abandons."""

    channel: ClassVar[Channel] = Channel.VOICE
    capabilities: ClassVar[Capability] = Capability.VOICE

    def __init__(self, settings: Settings, store: Store, routing: RoutingService | None) -> None:
        self._account = TwilioAccount.from_settings(settings, "voice")
        self._settings = settings
        self._store = store
        self._routing = routing

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        raise ChannelConfigError(
            "a phone call carries no text messages; reply by SMS or email instead",
            interaction_id=message.interaction_id,
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(CALL_PATH, self.handle_call),
            web.post(STATUS_PATH, self.handle_status),
            web.post(VOICEMAIL_PATH, self.handle_voicemail),
            web.post(AGENT_PATH, self.handle_agent),
        ]

    @public  # authenticated by Twilio's signature
    async def handle_agent(self, request: web.Request) -> web.Response:
        """An agent's browser calls in: join them to the conference of their assigned call."""
        params = await self._account.verified_form(request)
        agent = agent_of(params.get("From", ""))
        wanted = params.get("interaction", "")
        if agent is None or not wanted.isdigit():
            return _xml(refuse_twiml("This line is for agents joining a call."))
        async with self._store.unit_of_work() as uow:
            interaction = await uow.interactions.get(int(wanted))
        if (
            interaction is None
            or interaction.channel is not Channel.VOICE
            or interaction.state is not InteractionState.ASSIGNED
            or interaction.assigned_user_id != agent
        ):
            return _xml(refuse_twiml("That call is not assigned to you."))
        return _xml(join_twiml(interaction.id))

    @public  # authenticated by Twilio's signature
    async def handle_voicemail(self, request: web.Request) -> web.Response:
        """A caller left a voicemail outside hours: keep it on the call, thank, hang up."""
        params = await self._account.verified_form(request)
        sid, url = params.get("CallSid"), params.get("RecordingUrl")
        if not sid or not url:
            raise MalformedRequest("the recording webhook lacks CallSid or RecordingUrl")
        seconds = params.get("RecordingDuration", "")
        now = request.app[HUB].clock()
        async with self._store.unit_of_work() as uow:
            call = await uow.timeline.by_provider_ref("twilio", sid)
            done = await uow.timeline.by_provider_ref("twilio", f"{sid}:voicemail")
            if call is not None and done is None:
                await uow.timeline.append(
                    customer_id=call.customer_id,
                    interaction_id=call.interaction_id,
                    kind=EventKind.CALL,
                    direction=Direction.INBOUND,
                    occurred_at=now,
                    channel=Channel.VOICE,
                    body=f"Voicemail ({seconds} s)" if seconds.isdigit() else "Voicemail",
                    attachments=(Attachment("voicemail", "audio/wav", url=url),),
                    provider="twilio",
                    provider_ref=f"{sid}:voicemail",
                    data={"recording_sid": params.get("RecordingSid")},
                )
                await uow.commit()
        response = VoiceResponse()
        response.say("Thank you. We will call you back.")
        response.hangup()
        return web.Response(text=str(response), content_type="application/xml")

    @public  # authenticated by Twilio's signature
    async def handle_call(self, request: web.Request) -> web.Response:
        """A call comes in: store it as work, then answer with TwiML (hold, or closed)."""
        params = await self._account.verified_form(request)
        call = parse_call(params, self._settings.default_region)
        now = request.app[HUB].clock()
        received = await self.sink()(to_inbound_message(call, queues=self._account.queues, now=now))
        twilio = self._settings.twilio
        queue = None
        if self._routing is not None and self._routing.router is not None:
            queue = self._routing.router.policy.queue_for(
                Channel.VOICE, self._account.queues.get(call.to)
            )
        if queue is not None and queue.calendar is not None and not queue.calendar.is_open(now):
            voicemail = (
                self._account.public_url + VOICEMAIL_PATH
                if queue.closed_action == "voicemail"
                else None
            )
            twiml = closed_twiml(
                queue.closed_message,
                voicemail_action=voicemail,
                max_seconds=twilio.voicemail_seconds,
            )
        else:
            assert received.interaction_id is not None
            twiml = hold_twiml(
                received.interaction_id,
                greeting=twilio.voice_greeting,
                hold_music_url=twilio.hold_music_url,
            )
        return web.Response(text=twiml, content_type="application/xml")

    @public  # authenticated by Twilio's signature
    async def handle_status(self, request: web.Request) -> web.Response:
        """A call ended: note it; a caller who hung up while waiting is an abandoned contact."""
        params = await self._account.verified_form(request)
        call = parse_call(params, self._settings.default_region)
        if call.status not in ENDED:
            return web.Response(status=204)
        now = request.app[HUB].clock()
        async with self._store.unit_of_work() as uow:
            event = await uow.timeline.by_provider_ref("twilio", call.call_sid)
            if event is None or event.interaction_id is None:
                return web.Response(status=204)  # not a call we took in
            if await uow.timeline.by_provider_ref("twilio", f"{call.call_sid}:{call.status}"):
                return web.Response(status=204)  # Twilio retried the callback: already noted
            interaction = await uow.interactions.get(event.interaction_id)
            await uow.timeline.append(
                customer_id=event.customer_id,
                interaction_id=event.interaction_id,
                kind=EventKind.CALL,
                direction=Direction.INBOUND,
                occurred_at=now,
                channel=Channel.VOICE,
                body=f"Call ended ({call.status}"
                + (f", {call.duration} s)" if call.duration is not None else ")"),
                provider="twilio",
                provider_ref=f"{call.call_sid}:{call.status}",  # a repeated callback is a no-op
                data={"call_status": call.status, "duration": call.duration},
            )
            await uow.commit()
        if interaction is not None and interaction.state in WAITING and self._routing is not None:
            await self._routing.abandon(interaction.id, "caller hung up")
        return web.Response(status=204)


def _xml(twiml: str) -> web.Response:
    return web.Response(text=twiml, content_type="application/xml")
