"""Calling Twilio's REST API with retries where a retry can succeed (429, 5xx, network)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from twilio.base.exceptions import TwilioRestException

from hub.errors import ChannelAuthFailed, ChannelError, ChannelNotReady, NotFound

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


async def with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    attempts: int = 4,
    backoff_seconds: float = 0.5,
) -> T:
    """Run a REST call; retry 429 and 5xx with exponential backoff, never another 4xx.

    ``what`` names the request in errors ("the message", "the hold").
    """
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except TwilioRestException as err:
            if err.status in (401, 403):
                raise ChannelAuthFailed(f"Twilio refused the credentials: {err.msg}") from err
            if err.status == 404:
                raise NotFound(f"Twilio does not know {what}: {err.msg}") from err
            if err.status not in RETRY_STATUSES:
                raise ChannelError(
                    f"Twilio refused {what}: {err.msg}", twilio_code=err.code
                ) from err
            if attempt == attempts:
                raise ChannelNotReady(
                    f"Twilio answered {err.status} {attempts} times; {what} did not happen",
                    twilio_code=err.code,
                ) from err
        except OSError as err:
            if attempt == attempts:
                raise ChannelNotReady(f"cannot reach Twilio: {err}") from err
        await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
