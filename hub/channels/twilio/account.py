"""What the Twilio channels know of the account: its token, our numbers, our public URL."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from hub.channels.twilio.signature import verified_form
from hub.config import Settings
from hub.domain.identity import normalize_phone
from hub.errors import ChannelConfigError


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    """The account's webhook key, and which queue each of our numbers feeds."""

    auth_token: str
    public_url: str
    settings: Settings  # read at each use: admins change the numbers while the hub runs

    @classmethod
    def from_settings(cls, settings: Settings, channel: str) -> TwilioAccount:
        """Read the account from settings, or ChannelConfigError naming what is missing."""
        token = settings.twilio.auth_token
        if token is None:
            raise ChannelConfigError(f"HUB_TWILIO__AUTH_TOKEN is needed for the {channel} channel")
        return cls(token.get_secret_value(), settings.public_url, settings)

    @property
    def queues(self) -> dict[str, str]:
        """Our numbers (E.164) and the queue each one's contacts go to."""
        region = self.settings.default_region
        return {normalize_phone(n, region): q for n, q in self.settings.twilio.numbers.items()}

    async def verified_form(self, request: web.Request) -> dict[str, str]:
        """The webhook's form, if the account signed it (BadSignature, 403, otherwise)."""
        return await verified_form(request, self.auth_token, self.public_url)
