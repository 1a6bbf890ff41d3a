"""Sending SMS through Twilio's Messages API, with retries where a retry can succeed."""

from __future__ import annotations

from dataclasses import dataclass

from twilio.rest import Client

from hub.channels.twilio.rest import with_retries


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
    message = await with_retries(
        lambda: client.messages.create_async(
            to=to, from_=sender, body=body, status_callback=status_callback
        ),
        what="the message",
        attempts=attempts,
        backoff_seconds=backoff_seconds,
    )
    return Sent(str(message.sid), str(message.status))
