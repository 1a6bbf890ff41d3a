"""Sending SMS through Twilio's Messages API, with retries where a retry can succeed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from hub.errors import ChannelAuthFailed, ChannelError, ChannelNotReady

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Sent:
    """Twilio took the message."""

    sid: str
    status: str


async def send_sms(
    client: Client,
    *,
    to: str,
    sender: str,
    body: str,
    status_callback: str,
    attempts: int = 4,
    backoff_seconds: float = 0.5,
) -> Sent:
    """Create the message; retry 429 and 5xx with exponential backoff, never a 4xx."""
    for attempt in range(1, attempts + 1):
        try:
            message = await client.messages.create_async(
                to=to, from_=sender, body=body, status_callback=status_callback
            )
            return Sent(str(message.sid), str(message.status))
        except TwilioRestException as err:
            if err.status in (401, 403):
                raise ChannelAuthFailed(f"Twilio refused the credentials: {err.msg}") from err
            if err.status not in RETRY_STATUSES:
                raise ChannelError(
                    f"Twilio refused the message: {err.msg}", twilio_code=err.code
                ) from err
            if attempt == attempts:
                raise ChannelNotReady(
                    f"Twilio answered {err.status} {attempts} times; not sent",
                    twilio_code=err.code,
                ) from err
        except OSError as err:
            if attempt == attempts:
                raise ChannelNotReady(f"cannot reach Twilio: {err}") from err
        await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
