"""Twilio's voice webhooks -> InboundMessage.

Fields: https://www.twilio.com/docs/voice/twiml#request-parameters (CallSid, From, To,
CallStatus, CallDuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.channels.caller_id import WITHHELD, caller_number
from hub.domain.identity import IdentityKind, IdentityRef, anonymous, try_normalize_phone
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.timeline import EventKind
from hub.errors import MalformedRequest


@dataclass(frozen=True, slots=True)
class CallWebhook:
    """The parts of a voice webhook the hub uses."""

    call_sid: str
    caller: str | None  # E.164; None when the caller withholds their number
    to: str  # E.164 when it reads as a number (one of ours), else as Twilio sent it
    status: str
    duration: int | None


def parse_call(params: dict[str, str], default_region: str) -> CallWebhook:
    """Read a voice webhook's form, or raise MalformedRequest naming what is missing.

    A withheld caller id (``anonymous``, ``+266696687`` ...) is a caller without a number, not
    a malformed webhook: the call is answered like any other.
    """
    missing = [name for name in ("CallSid", "From", "To") if not params.get(name)]
    if missing:
        raise MalformedRequest(f"the webhook lacks {', '.join(missing)}", missing=missing)
    caller = caller_number(params["From"], default_region)
    to = try_normalize_phone(params["To"], default_region) or params["To"].strip()
    duration = params.get("CallDuration")
    return CallWebhook(
        params["CallSid"],
        caller,
        to,
        params.get("CallStatus", ""),
        int(duration) if duration and duration.isdigit() else None,
    )


def to_inbound_message(
    call: CallWebhook,
    *,
    queue: str | None,
    now: datetime,
    body: str = "Incoming call",
    ref: str | None = None,
    creates_work: bool = True,
) -> InboundMessage:
    """An incoming call as a CALL event on the caller's timeline, routed like any work.

    A call that meets the IVR menu first is stored without work (``creates_work`` False);
    the caller's choice then opens the interaction in the chosen queue (``ref`` CallSid:menu).
    """
    withheld = call.caller is None
    return InboundMessage(
        channel=Channel.VOICE,
        sender=anonymous("twilio", call.call_sid)
        if call.caller is None
        else IdentityRef(IdentityKind.PHONE, call.caller),
        received_at=now,
        body=body,
        provider="twilio",
        provider_ref=ref or call.call_sid,
        name="Withheld number" if withheld else None,
        queue=queue,
        thread_key=f"call:{call.call_sid}",  # every call is an interaction of its own
        creates_work=creates_work,
        data={
            "to": call.to,
            "from": call.caller or WITHHELD,
            "call_sid": call.call_sid,
            **({"sender_withheld": True} if withheld else {}),
        },
        event_kind=EventKind.CALL,
    )
