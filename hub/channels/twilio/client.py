"""The real ``twilio`` library, asynchronous, pointed at ``twilio.api_base_url``."""

from __future__ import annotations

from typing import Any

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from hub.config import Settings
from hub.errors import ChannelConfigError

TWILIO_API = "https://api.twilio.com"


class HubTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """twilio's aiohttp client, sending credentials as a header (aiohttp 3.14 deprecates auth=)."""

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        auth = kwargs.pop("auth", None)
        if auth is not None:
            headers = dict(kwargs.pop("headers", None) or {})
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
            kwargs["headers"] = headers
        return await super().request(method, url, *args, **kwargs)


def twilio_client(settings: Settings) -> tuple[Client, HubTwilioHttpClient]:
    """A twilio Client for the account (and its HTTP client, to close at shutdown)."""
    twilio = settings.twilio
    if twilio.account_sid is None or twilio.auth_token is None:
        raise ChannelConfigError(
            "HUB_TWILIO__ACCOUNT_SID and HUB_TWILIO__AUTH_TOKEN are needed to send through Twilio"
        )
    http = HubTwilioHttpClient()
    client = Client(twilio.account_sid, twilio.auth_token.get_secret_value(), http_client=http)
    # Every domain keeps its own base URL; Messages live on the api domain.
    client.api.base_url = twilio.api_base_url.rstrip("/")
    return client, http
