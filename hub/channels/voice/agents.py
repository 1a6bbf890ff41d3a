"""Agents on calls in the browser: Voice access tokens, and the TwiML that joins them up.

The console's Twilio Voice SDK connects with a token the hub issues (an AccessToken with a
VoiceGrant for our TwiML app, https://www.twilio.com/docs/iam/access-tokens). Twilio then asks
the TwiML app's URL (``/webhooks/twilio/voice/agent``, signed) what to do with the agent's
call: join the conference of the interaction they were assigned, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from hub.config import Settings
from hub.errors import ChannelNotReady

TOKEN_SECONDS = 3600
IDENTITY_PREFIX = "agent-"


@dataclass(frozen=True, slots=True)
class VoiceToken:
    """A Voice SDK token for one agent."""

    token: str
    identity: str
    expires_at: datetime


def agent_identity(user_id: int) -> str:
    """The Voice client identity of an agent (Twilio sends it back as ``client:agent-7``)."""
    return f"{IDENTITY_PREFIX}{user_id}"


def agent_of(caller: str) -> int | None:
    """The agent a ``client:agent-7`` caller is, or None."""
    name = caller.removeprefix("client:")
    if not name.startswith(IDENTITY_PREFIX) or not name[len(IDENTITY_PREFIX) :].isdigit():
        return None
    return int(name[len(IDENTITY_PREFIX) :])


def voice_token(settings: Settings, user_id: int, now: datetime) -> VoiceToken:
    """An access token letting an agent's browser make and take calls through our TwiML app."""
    twilio = settings.twilio
    if not (
        twilio.account_sid and twilio.api_key_sid and twilio.api_key_secret and twilio.twiml_app_sid
    ):
        raise ChannelNotReady(
            "calls in the browser need HUB_TWILIO__API_KEY_SID, HUB_TWILIO__API_KEY_SECRET "
            "and HUB_TWILIO__TWIML_APP_SID"
        )
    identity = agent_identity(user_id)
    expires_at = now + timedelta(seconds=TOKEN_SECONDS)
    token = AccessToken(
        twilio.account_sid,
        twilio.api_key_sid,
        twilio.api_key_secret.get_secret_value(),
        identity=identity,
        nbf=int(now.timestamp()),
        valid_until=int(expires_at.timestamp()),  # our clock, not the library's
        grants=[VoiceGrant(outgoing_application_sid=twilio.twiml_app_sid, incoming_allow=True)],
    )
    return VoiceToken(str(token.to_jwt()), identity, expires_at)
