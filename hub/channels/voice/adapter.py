"""The voice channel adapter: Twilio's signed call webhooks, answered with TwiML.

A call comes in (``CALL_PATH``): it is stored first, then answered. With an IVR menu the call
is kept on the caller's timeline and the menu's answer (``MENU_PATH``) opens the interaction in
the chosen queue. Then, by the queue's hours and the recording setting: the closed message with
a voicemail or a callback offer, the recording consent question (``CONSENT_PATH``), or the
wait in the interaction's conference, where the wait URL (``WAIT_PATH``) tells the caller their
place in line between the hold music. Status callbacks of every leg (``STATUS_PATH``) and the
conference's events (``CONFERENCE_PATH``) go to the call service (``hub.services.calls``), which
keeps the legs: this module verifies, parses and answers, and opens no unit of work itself.
Recordings and voicemails are fetched when the outbox delivers the ``AttachmentsOwed`` that was
committed with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

import structlog
from aiohttp import web

from hub.channels.base import (
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    InboundSink,
    OutboundMessage,
)
from hub.channels.twilio.account import TwilioAccount
from hub.channels.twilio.media import (
    RECORDING_MAX_BYTES,
    RESUME_DAYS,
    keep_media,
    mp3,
    owed_event,
)
from hub.channels.voice.agents import agent_of
from hub.channels.voice.inbound import CallWebhook, parse_call, to_inbound_message
from hub.channels.voice.twiml import (
    AGENT_PATH,
    CALL_PATH,
    CALLBACK_PATH,
    CONFERENCE_PATH,
    CONSENT_PATH,
    DIALED_PATH,
    HOLD_PATH,
    MENU_PATH,
    RECORDING_PATH,
    STATUS_PATH,
    TWILIO_HOLD_MUSIC,
    VOICEMAIL_PATH,
    WAIT_PATH,
    closed_twiml,
    consent_twiml,
    for_interaction,
    hold_twiml,
    join_twiml,
    menu_prompt,
    menu_twiml,
    on_hold_twiml,
    said_twiml,
    wait_twiml,
)
from hub.config import Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.events import AttachmentsOwed
from hub.domain.interaction import Channel
from hub.domain.timeline import Attachment, TimelineEvent
from hub.errors import ChannelConfigError, HubError, MalformedRequest
from hub.http import id_in, public
from hub.services.calls import CallService
from hub.services.receive import Received

log = structlog.get_logger(__name__)
RECORDING_ATTEMPTS = 6
WAIT_ANSWER_SECONDS = 2.0  # the wait URL answers within this, announcement or not

if TYPE_CHECKING:
    from datetime import datetime

    from hub.routing.service import RoutingService


class VoiceChannel(ChannelAdapter):
    """Incoming calls wait in a conference for an agent; hang-ups while waiting are abandons."""

    channel: ClassVar[Channel] = Channel.VOICE
    capabilities: ClassVar[Capability] = Capability.VOICE

    def __init__(
        self,
        settings: Settings,
        store: Store,
        routing: RoutingService | None,
        calls: CallService,
        clock: Callable[[], datetime],
    ) -> None:
        self._account = TwilioAccount.from_settings(settings, "voice")
        self._settings = settings
        self._store = store
        self._routing = routing
        self.calls = calls
        self._clock = clock
        self.backoff_seconds = 2.0  # then 4, 8, 16, 32 s: a recording's download, six tries
        store.bus.subscribe(AttachmentsOwed, self._on_attachments_owed)

    async def stop(self) -> None:
        await super().stop()
        await self.calls.close()

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        raise ChannelConfigError(
            "a phone call carries no text messages; reply by SMS or email instead",
            interaction_id=message.interaction_id,
        )

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(CALL_PATH, self.handle_call),
            web.post(MENU_PATH, self.handle_menu),
            web.post(CONSENT_PATH, self.handle_consent),
            web.post(WAIT_PATH, self.handle_wait),
            web.post(HOLD_PATH, self.handle_hold),
            web.post(DIALED_PATH, self.handle_dialed),
            web.post(STATUS_PATH, self.handle_status),
            web.post(CONFERENCE_PATH, self.handle_conference),
            web.post(RECORDING_PATH, self.handle_recording),
            web.post(VOICEMAIL_PATH, self.handle_voicemail),
            web.post(CALLBACK_PATH, self.handle_callback),
            web.post(AGENT_PATH, self.handle_agent),
        ]

    # -- a call comes in -----------------------------------------------------------------------

    @public  # authenticated by Twilio's signature
    async def handle_call(self, request: web.Request) -> web.Response:
        """A call comes in: store it (as work, unless a menu comes first), then answer."""
        params = await self._account.verified_form(request)
        call = parse_call(params, self._settings.default_region)
        now = self._clock()
        menu = self._settings.twilio.menu
        if menu:
            await self.sink()(to_inbound_message(call, queue=None, now=now, creates_work=False))
            return _xml(self._menu(attempt=1))
        received = await self.sink()(
            to_inbound_message(call, queue=self._account.queues.get(call.to), now=now)
        )
        return _xml(await self._answer(call, received, now))

    def _menu(self, *, attempt: int) -> str:
        menu = self._settings.twilio.menu
        prompt = self._settings.twilio.menu_prompt or menu_prompt(menu)
        action = f"{self._account.public_url}{MENU_PATH}?attempt={attempt}"
        return menu_twiml(prompt, menu, action, sorry=attempt > 1)

    @public  # authenticated by Twilio's signature
    async def handle_menu(self, request: web.Request) -> web.Response:
        """The caller's menu choice (a key, or a queue's name spoken) opens the interaction."""
        params = await self._account.verified_form(request)
        call = parse_call(params, self._settings.default_region)
        digits, speech = params.get("Digits", ""), params.get("SpeechResult", "")
        choice = choose(self._settings.twilio.menu, digits, speech)
        attempt = request.query.get("attempt", "1")
        tries = int(attempt) if attempt.isdigit() else 1
        if choice is None and (digits or speech) and tries < 3:
            return _xml(self._menu(attempt=tries + 1))
        now = self._clock()
        message = to_inbound_message(
            call,
            queue=choice or self._account.queues.get(call.to),
            now=now,
            body=f"Chose {choice} in the menu" if choice else "Made no choice in the menu",
            ref=f"{call.call_sid}:menu",
        )
        received = await self.sink()(message)
        return _xml(await self._answer(call, received, now))

    async def _answer(self, call: CallWebhook, received: Received, now: datetime) -> str:
        """Keep the caller's leg, then: closed, ask to record, or wait for an agent."""
        interaction_id = received.interaction_id
        assert interaction_id is not None  # a call that creates work has an interaction
        interaction = await self.calls.caller_waiting(interaction_id, call.call_sid, call.caller)
        twilio, public_url = self._settings.twilio, self._account.public_url
        queue = None
        if self._routing is not None and interaction is not None:
            named = self._routing.queue_name(interaction.queue_id or -1)
            queue = self._routing.policy.queue_for(Channel.VOICE, named)
        if queue is not None and queue.calendar is not None and not queue.calendar.is_open(now):
            # nobody to call back when the number is withheld: a voicemail instead
            callback = queue.closed_action == "callback" and call.caller is not None
            voicemail = queue.closed_action == "voicemail" or (
                queue.closed_action == "callback" and not callback
            )
            return closed_twiml(
                queue.closed_message,
                voicemail_action=public_url + VOICEMAIL_PATH if voicemail else None,
                callback_action=for_interaction(public_url, CALLBACK_PATH, interaction_id)
                if callback
                else None,
                max_seconds=twilio.voicemail_seconds,
            )
        if twilio.recording == "ask":
            return consent_twiml(
                f"{twilio.voice_greeting} {twilio.recording_notice}",
                for_interaction(public_url, CONSENT_PATH, interaction_id),
            )
        announce = twilio.recording == "announce"
        return self._hold(
            interaction_id,
            say=(twilio.voice_greeting, twilio.recording_notice)
            if announce
            else (twilio.voice_greeting,),
            record=announce,
        )

    def _hold(self, interaction_id: int, *, say: tuple[str, ...], record: bool) -> str:
        twilio, public_url = self._settings.twilio, self._account.public_url
        if twilio.announce_wait:  # the hub's own TwiML: place in line, music, again
            wait_url, method = for_interaction(public_url, WAIT_PATH, interaction_id), "POST"
        else:  # a static audio file: fetched with GET (static hosts refuse POST)
            wait_url, method = twilio.hold_music_url or TWILIO_HOLD_MUSIC, "GET"
        return hold_twiml(
            interaction_id,
            public_url=public_url,
            say=say,
            record=record,
            wait_url=wait_url,
            wait_method=method,
        )

    @public  # authenticated by Twilio's signature
    async def handle_consent(self, request: web.Request) -> web.Response:
        """Pressing 1 allows recording; anything else (or nothing) records nothing."""
        params = await self._account.verified_form(request)
        interaction_id = _interaction_in(request)
        agreed = params.get("Digits") == "1"
        await self.calls.caller_did(
            _call_sid(params),
            "Caller agreed to recording" if agreed else "Caller declined recording",
            mark="consent",
            data={"recording_consent": agreed},
        )
        return _xml(self._hold(interaction_id, say=(), record=agreed))

    @public  # authenticated by Twilio's signature
    async def handle_wait(self, request: web.Request) -> web.Response:
        """What a waiting caller hears next: their place in line, then the hold music.

        Answered quickly and always with valid TwiML: a wait URL that fails ends the Dial.
        Without an estimate to give (the store or routing slow or failing), music alone.
        """
        await self._account.verified_form(request)
        interaction_id = _interaction_in(request)
        place = None
        if self._routing is not None:
            try:
                place = await asyncio.wait_for(
                    self._routing.place_in_line(interaction_id), WAIT_ANSWER_SECONDS
                )
            except (TimeoutError, HubError):
                log.warning("no place in line to announce", interaction_id=interaction_id)
        again = for_interaction(self._account.public_url, WAIT_PATH, interaction_id)
        return _xml(
            wait_twiml(
                place.position if place else None,
                place.estimated_seconds if place else None,
                hold_music_url=self._settings.twilio.hold_music_url,
                again_url=again,
            )
        )

    @public  # authenticated by Twilio's signature
    async def handle_hold(self, request: web.Request) -> web.Response:
        """The holdUrl: music, looped, while an agent holds the customer."""
        await self._account.verified_form(request)
        return _xml(on_hold_twiml(self._settings.twilio.hold_music_url))

    @public  # authenticated by Twilio's signature
    async def handle_dialed(self, request: web.Request) -> web.Response:
        """The waiting caller's Dial ended while they are still on the line.

        Work still waiting (a wait URL that failed, a conference that ended early) puts the
        caller back in the conference, without the greeting again; anything else is goodbye.
        """
        params = await self._account.verified_form(request)
        interaction_id = _interaction_in(request)
        if await self.calls.still_waiting(interaction_id):
            log.warning(
                "a waiting caller's conference ended; putting them back",
                interaction_id=interaction_id,
                dial_status=params.get("DialCallStatus"),
            )
            return _xml(self._hold(interaction_id, say=(), record=False))
        return _xml(said_twiml("Thank you for calling. Goodbye."))

    # -- outside hours -------------------------------------------------------------------------

    @public  # authenticated by Twilio's signature
    async def handle_voicemail(self, request: web.Request) -> web.Response:
        """A caller left a voicemail outside hours: keep it on the call, thank, hang up.

        Two requests come here, in either order: the Record's action (the caller is done;
        answered with TwiML) and its recording status callback (the audio is ready: fetched
        then, not before, since Twilio's recordings need processing).
        """
        params = await self._account.verified_form(request)
        url = params.get("RecordingUrl")
        if not url:
            raise MalformedRequest("the recording webhook lacks RecordingUrl")
        seconds = params.get("RecordingDuration", "")
        await self.calls.caller_did(
            _call_sid(params),
            f"Voicemail ({seconds} s)" if seconds.isdigit() else "Voicemail",
            mark="voicemail",
            attachments=(Attachment("voicemail", "audio/mpeg", url=mp3(url)),),
            data={"recording_sid": params.get("RecordingSid")},
            fetch=params.get("RecordingStatus") == "completed",
        )
        if "RecordingStatus" not in params:
            return _xml(said_twiml("Thank you. We will call you back."))
        return web.Response(status=204)

    @public  # authenticated by Twilio's signature
    async def handle_callback(self, request: web.Request) -> web.Response:
        """Pressing 1 asks for a callback: the call stays in line, and nobody waits on hold."""
        params = await self._account.verified_form(request)
        _interaction_in(request)
        if params.get("Digits") != "1":
            return _xml(said_twiml("Goodbye."))
        number = params.get("From", "")
        await self.calls.caller_did(
            _call_sid(params),
            f"Callback requested to {number}",
            mark="callback",
            data={"callback_number": number},
        )
        return _xml(
            said_twiml(
                "Thank you. We will call you back at this number when we open. "
                "You keep your place in line."
            )
        )

    async def _on_attachments_owed(self, event: AttachmentsOwed) -> None:
        """Fetch a recording or voicemail once the provider said it is ready (the outbox says
        so), and keep it under data_dir like MMS media.

        A recording still being processed answers 404, so the tries are spread over about a
        minute; a fetch that gave up earlier is tried again (the provider says it is ready now),
        and what is still owed when the hub stops is fetched at its next start.
        """
        if event.channel is not Channel.VOICE or not self.running:
            return
        stored = await owed_event(self._store, event.event_id)
        if stored is not None:
            self._keep(stored, again=True)

    def _keep(self, event: TimelineEvent, *, again: bool = False) -> None:
        self.spawn(
            keep_media(
                self._store,
                self._settings,
                event.id,
                event.attachments,
                attempts=RECORDING_ATTEMPTS,
                backoff_seconds=self.backoff_seconds,
                max_bytes=RECORDING_MAX_BYTES,
                again=again,
            )
        )

    async def start(self, sink: InboundSink) -> None:
        await super().start(sink)
        await self._resume_recordings()

    async def _resume_recordings(self) -> None:
        """Fetch the recordings a stopped hub was owed (Twilio keeps them until deleted)."""
        owed = await self.calls.owed_recordings(self._clock() - timedelta(days=RESUME_DAYS))
        for event in owed:
            self._keep(event)
        if owed:
            log.info("fetching recordings a stopped hub had not fetched", events=len(owed))

    # -- what Twilio reports -------------------------------------------------------------------

    @public  # authenticated by Twilio's signature
    async def handle_status(self, request: web.Request) -> web.Response:
        """A leg rang, was answered or ended: the call service notes it."""
        params = await self._account.verified_form(request)
        sid, status = params.get("CallSid"), params.get("CallStatus")
        if not sid or not status:
            raise MalformedRequest("the status callback lacks CallSid or CallStatus")
        duration = params.get("CallDuration", "")
        await self.calls.on_status(sid, status, int(duration) if duration.isdigit() else None)
        return web.Response(status=204)

    @public  # authenticated by Twilio's signature
    async def handle_conference(self, request: web.Request) -> web.Response:
        """A conference event (join, leave, hold): the call service keeps what it learns."""
        params = await self._account.verified_form(request)
        await self.calls.on_conference(_interaction_in(request), params)
        return web.Response(status=204)

    @public  # authenticated by Twilio's signature
    async def handle_recording(self, request: web.Request) -> web.Response:
        """A call's recording is ready: it goes on the call's timeline, once."""
        params = await self._account.verified_form(request)
        interaction_id = _interaction_in(request)
        sid, url = params.get("RecordingSid"), params.get("RecordingUrl")
        if not sid or not url:
            raise MalformedRequest("the recording callback lacks RecordingSid or RecordingUrl")
        if params.get("RecordingStatus", "completed") != "completed":
            return web.Response(status=204)  # in-progress or absent: nothing to fetch yet
        seconds = params.get("RecordingDuration", "")
        await self.calls.recording_ready(
            interaction_id,
            sid,
            f"Call recording ({seconds} s)" if seconds.isdigit() else "Call recording",
            Attachment("recording", "audio/mpeg", url=mp3(url)),
            {"recording_sid": sid, "duration": int(seconds) if seconds.isdigit() else None},
        )
        return web.Response(status=204)

    @public  # authenticated by Twilio's signature
    async def handle_agent(self, request: web.Request) -> web.Response:
        """An agent's browser calls in: join them to the conference of their assigned call."""
        params = await self._account.verified_form(request)
        agent = agent_of(params.get("From", ""))
        wanted = id_in(params.get("interaction", ""))
        if agent is None or wanted is None:
            return _xml(said_twiml("This line is for agents joining a call."))
        mine = await self.calls.agent_dialled_in(
            wanted, agent, params.get("CallSid"), params.get("From")
        )
        if not mine:
            return _xml(said_twiml("That call is not assigned to you."))
        return _xml(join_twiml(wanted))


def choose(menu: dict[str, str], digits: str, speech: str) -> str | None:
    """The queue a menu answer picks: the key pressed, or a queue's name in what was said."""
    if digits:
        return menu.get(digits[0])
    said = speech.casefold()
    for queue in sorted(set(menu.values()), key=len, reverse=True):
        if queue.casefold() in said:
            return queue
    return None


def _call_sid(params: dict[str, str]) -> str:
    sid = params.get("CallSid")
    if not sid:
        raise MalformedRequest("the webhook lacks CallSid")
    return sid


def _interaction_in(request: web.Request) -> int:
    value = id_in(request.query.get("interaction", ""))
    if value is None:
        raise MalformedRequest("the webhook URL lacks ?interaction= (an interaction's id)")
    return value


def _xml(twiml: str) -> web.Response:
    return web.Response(text=twiml, content_type="application/xml")
