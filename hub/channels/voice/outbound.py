"""Calls out: the interaction's conference at Twilio, who is dialled in, held, muted or removed.

Every party is dialled into (or leaves) the interaction's conference through the Conference
Participants API (https://www.twilio.com/docs/voice/api/conference-participant-resource):
an agent joining in the browser (``client:agent-7``) or on their own phone, a supervisor
listening, whispering (``coaching``) or barging in, a number a call is transferred to, and the
customer of a callback or a click-to-call. Hold and mute are updates of a participant; a
participant leaves by being removed; hanging up ends the conference.

This is the channel's edge only: what a leg is and what the hub keeps of it are the call
service's (``hub.services.calls``), which asks for these changes through its ``Conference``
port.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from twilio.base import values
from twilio.rest import Client

from hub.channels.twilio.account import TwilioAccount
from hub.channels.twilio.client import HubTwilioHttpClient, twilio_client
from hub.channels.twilio.rest import with_retries
from hub.channels.voice.agents import agent_identity
from hub.channels.voice.twiml import (
    CONFERENCE_EVENTS,
    CONFERENCE_PATH,
    HOLD_PATH,
    LEG_EVENTS,
    RECORDING_PATH,
    STATUS_PATH,
    conference_name,
    for_interaction,
)
from hub.config import Settings
from hub.domain.calls import LegRole, MonitorMode
from hub.services.calls import Dialled

T = TypeVar("T")


class TwilioConference:
    """The ``Conference`` port over Twilio's REST API (retried as ``with_retries`` says)."""

    def __init__(self, settings: Settings) -> None:
        self._account = TwilioAccount.from_settings(settings, "voice")
        self._settings = settings
        self._client: Client | None = None
        self._http: HubTwilioHttpClient | None = None
        self.backoff_seconds = 0.5

    async def close(self) -> None:
        """Release the REST client's connections."""
        if self._http is not None:
            await self._http.close()
            self._client = self._http = None

    def _rest(self) -> Client:
        if self._client is None:
            self._client, self._http = twilio_client(self._settings)
        return self._client

    async def _twilio(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        return await with_retries(operation, what=what, backoff_seconds=self.backoff_seconds)

    def browser(self, user_id: int) -> str:
        return f"client:{agent_identity(user_id)}"

    def own_number(self) -> str | None:
        return next(iter(self._account.queues), None)

    async def dial(
        self,
        interaction_id: int,
        *,
        to: str,
        role: LegRole,
        caller_id: str,
        monitor: MonitorMode | None = None,
        coach: str | None = None,
        record: bool = False,
    ) -> Dialled:
        public = self._account.public_url
        options: dict[str, Any] = {}
        if record:
            options["conference_record"] = "record-from-start"
            options["conference_recording_status_callback"] = for_interaction(
                public, RECORDING_PATH, interaction_id
            )
        participant = await self._twilio(
            f"the call to {to}",
            lambda: (
                self._rest()
                .conferences(conference_name(interaction_id))
                .participants.create_async(
                    from_=caller_id,
                    to=to,
                    label=f"{role.value}-{secrets.token_hex(4)}",
                    early_media=True,
                    beep="false",
                    # Listening in never starts a conference: only the parties to it do.
                    start_conference_on_enter=role is not LegRole.SUPERVISOR,
                    end_conference_on_exit=role is LegRole.CUSTOMER,
                    muted=monitor is MonitorMode.LISTEN,
                    coaching=coach is not None,
                    call_sid_to_coach=coach or values.unset,
                    status_callback=public + STATUS_PATH,
                    status_callback_event=LEG_EVENTS,
                    conference_status_callback=for_interaction(
                        public, CONFERENCE_PATH, interaction_id
                    ),
                    conference_status_callback_event=CONFERENCE_EVENTS.split(),
                    **options,
                )
            ),
        )
        return Dialled(str(participant.call_sid), participant.conference_sid)

    async def hold(self, conference_sid: str, call_sid: str, on: bool) -> None:
        # The holdUrl is the hub's TwiML, which loops the music (a bare MP3 plays once).
        hold_url = self._settings.public_url + HOLD_PATH
        participant = self._participant(conference_sid, call_sid)
        await self._twilio(
            "the hold",
            lambda: participant.update_async(
                hold=on,
                hold_url=hold_url if on else values.unset,
                hold_method="POST" if on else values.unset,
            ),
        )

    async def mute(self, conference_sid: str, call_sid: str, on: bool) -> None:
        participant = self._participant(conference_sid, call_sid)
        await self._twilio("the mute", lambda: participant.update_async(muted=on))

    async def monitor(
        self, conference_sid: str, call_sid: str, mode: MonitorMode, coach: str | None
    ) -> None:
        participant = self._participant(conference_sid, call_sid)
        await self._twilio(
            "the change of mode",
            lambda: participant.update_async(
                muted=mode is MonitorMode.LISTEN,
                coaching=coach is not None,
                call_sid_to_coach=coach or values.unset,
            ),
        )

    async def remove(self, conference_sid: str, call_sid: str) -> None:
        participant = self._participant(conference_sid, call_sid)
        await self._twilio("the leg", participant.delete_async)

    async def end(self, conference_sid: str) -> None:
        await self._twilio(
            "the hang-up",
            lambda: self._rest().conferences(conference_sid).update_async(status="completed"),
        )

    async def find(self, interaction_id: int) -> str | None:
        name = conference_name(interaction_id)
        found = await self._twilio(
            "the conference",
            lambda: self._rest().conferences.list_async(friendly_name=name, limit=20),
        )
        return next((str(c.sid) for c in found if str(c.status) != "completed"), None)

    async def call_status(self, call_sid: str) -> tuple[str, int | None]:
        call = await self._twilio("the call", lambda: self._rest().calls(call_sid).fetch_async())
        duration = str(getattr(call, "duration", "") or "")
        return str(getattr(call, "status", "")), int(duration) if duration.isdigit() else None

    def _participant(self, conference_sid: str, call_sid: str) -> Any:
        """A Participant resource: Twilio names it by the conference's sid."""
        return self._rest().conferences(conference_sid).participants(call_sid)
