"""Twilio's voice webhooks -> InboundMessage, and the TwiML that answers a caller.

Fields: https://www.twilio.com/docs/voice/twiml#request-parameters (CallSid, From, To,
CallStatus, CallDuration). The caller waits in a conference named for the interaction, so the
agent who accepts it joins that conference (``startConferenceOnEnter`` false: the caller hears
hold music until the agent is in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from twilio.twiml.voice_response import Dial, VoiceResponse

from hub.domain.identity import IdentityKind, IdentityRef, normalize_phone
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.timeline import EventKind
from hub.errors import InvalidIdentity, MalformedRequest

# Statuses with which a call is over (https://www.twilio.com/docs/voice/api/call-resource).
ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True, slots=True)
class CallWebhook:
    """The parts of a voice webhook the hub uses."""

    call_sid: str
    caller: str  # E.164
    to: str  # E.164, one of our numbers
    status: str
    duration: int | None


def parse_call(params: dict[str, str], default_region: str) -> CallWebhook:
    """Read a voice webhook's form, or raise MalformedRequest naming what is missing."""
    missing = [name for name in ("CallSid", "From", "To") if not params.get(name)]
    if missing:
        raise MalformedRequest(f"the webhook lacks {', '.join(missing)}", missing=missing)
    try:
        caller = normalize_phone(params["From"], default_region)
        to = normalize_phone(params["To"], default_region)
    except InvalidIdentity as err:
        raise MalformedRequest(f"the webhook's numbers do not read: {err.message}") from err
    duration = params.get("CallDuration")
    return CallWebhook(
        params["CallSid"],
        caller,
        to,
        params.get("CallStatus", ""),
        int(duration) if duration and duration.isdigit() else None,
    )


def to_inbound_message(
    call: CallWebhook, *, queues: dict[str, str], now: datetime
) -> InboundMessage:
    """An incoming call as work: a CALL event on the caller's timeline, routed like any work."""
    return InboundMessage(
        channel=Channel.VOICE,
        sender=IdentityRef(IdentityKind.PHONE, call.caller),
        received_at=now,
        body="Incoming call",
        provider="twilio",
        provider_ref=call.call_sid,
        queue=queues.get(call.to),
        data={"to": call.to, "from": call.caller, "call_sid": call.call_sid},
        event_kind=EventKind.CALL,
    )


def conference_name(interaction_id: int) -> str:
    """The conference a caller waits in, and the accepting agent joins."""
    return f"interaction-{interaction_id}"


def hold_twiml(interaction_id: int, *, greeting: str, hold_music_url: str | None) -> str:
    """Greet, then wait in the interaction's conference until an agent joins."""
    response = VoiceResponse()
    response.say(greeting)
    dial = Dial()
    dial.conference(
        conference_name(interaction_id),
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        wait_url=hold_music_url,
        beep=False,
    )
    response.append(dial)
    return str(response)


def closed_twiml(message: str, *, voicemail_action: str | None, max_seconds: int) -> str:
    """Outside hours: say so; take a voicemail if the queue wants one."""
    response = VoiceResponse()
    response.say(message)
    if voicemail_action is not None:
        response.record(action=voicemail_action, max_length=max_seconds, play_beep=True)
    response.hangup()
    return str(response)
