"""Twilio's inbound message webhook -> InboundMessage.

Fields: https://www.twilio.com/docs/messaging/guides/webhook-request (From, To, Body,
MessageSid, NumMedia, MediaUrlN, MediaContentTypeN). Opt-out keywords as Twilio's defaults
(https://help.twilio.com/articles/223134027): the whole message, case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.domain.identity import IdentityKind, IdentityRef, normalize_phone
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.timeline import Attachment
from hub.errors import InvalidIdentity, MalformedRequest

MAX_MEDIA = 10  # Twilio sends at most 10 media per MMS


class Keyword(StrEnum):
    """What a one-word message asks of us."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


KEYWORDS = {
    **dict.fromkeys(
        ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
        Keyword.OPT_OUT,
    ),
    **dict.fromkeys(("START", "YES", "UNSTOP"), Keyword.OPT_IN),
    **dict.fromkeys(("HELP", "INFO"), Keyword.HELP),
}


OPT_OUT_TYPES = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}


@dataclass(frozen=True, slots=True)
class SmsWebhook:
    """The parts of Twilio's inbound message webhook the hub uses."""

    message_sid: str
    sender: str  # E.164
    to: str  # E.164, one of our numbers
    body: str
    media: tuple[Attachment, ...]
    opt_out_type: str | None = None  # Advanced Opt-Out's verdict: STOP, START or HELP

    @property
    def keyword(self) -> Keyword | None:
        """The opt-out, opt-in or help keyword this message is, if it is one.

        With Twilio's Advanced Opt-Out the account's own keywords (in any language) are
        Twilio's to recognize, and ``OptOutType`` says what the message was: it wins.
        """
        if self.opt_out_type:
            return OPT_OUT_TYPES.get(self.opt_out_type.strip().upper())
        return KEYWORDS.get(self.body.strip().upper())


def parse_webhook(params: dict[str, str], default_region: str) -> SmsWebhook:
    """Read the webhook's form, or raise MalformedRequest naming what is missing."""
    missing = [name for name in ("From", "To") if not params.get(name)]
    sid = params.get("MessageSid") or params.get("SmsMessageSid")
    if not sid:
        missing.append("MessageSid")
    if missing or sid is None:
        raise MalformedRequest(f"the webhook lacks {', '.join(missing)}", missing=missing)
    try:
        sender = normalize_phone(params["From"], default_region)
        to = normalize_phone(params["To"], default_region)
    except InvalidIdentity as err:
        raise MalformedRequest(f"the webhook's numbers do not read: {err.message}") from err
    try:
        count = min(int(params.get("NumMedia", "0") or 0), MAX_MEDIA)
    except ValueError as err:
        raise MalformedRequest("NumMedia is not a number") from err
    media = tuple(
        Attachment(
            filename=f"media-{n}",
            content_type=params.get(f"MediaContentType{n}", "application/octet-stream"),
            url=params[f"MediaUrl{n}"],
        )
        for n in range(count)
        if params.get(f"MediaUrl{n}")
    )
    return SmsWebhook(
        sid, sender, to, params.get("Body", ""), media, params.get("OptOutType") or None
    )


def to_inbound_message(
    webhook: SmsWebhook, *, queues: dict[str, str], now: datetime
) -> InboundMessage:
    """The provider-neutral message; our number decides the queue (unknown: the default)."""
    keyword = webhook.keyword
    return InboundMessage(
        channel=Channel.SMS,
        sender=IdentityRef(IdentityKind.PHONE, webhook.sender),
        received_at=now,
        body=webhook.body,
        provider="twilio",
        provider_ref=webhook.message_sid,
        queue=queues.get(webhook.to),
        attachments=webhook.media,
        data={
            "to": webhook.to,
            "from": webhook.sender,
            **({"keyword": keyword.value} if keyword else {}),
            **({} if webhook.to in queues else {"unmapped_number": True}),
        },
        creates_work=keyword is None or keyword is Keyword.HELP,
        # recorded in the message's own transaction: an opt-out is never lost (TCPA)
        opt_out={Keyword.OPT_OUT: True, Keyword.OPT_IN: False}.get(keyword) if keyword else None,
    )
