"""The fax contract: what the fax channel needs of a provider (Telnyx first; Sinch next).

A provider checks and reads its own webhooks into ``FaxEvent``s, sends a document it fetches
from a link the hub signs, and downloads received documents from its short-lived links.
Nothing provider-specific goes past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from multidict import CIMultiDictProxy

from hub.errors import ChannelError


class ExpiredLink(ChannelError):
    """A received fax's document link no longer works: the provider can give a fresh one."""


@dataclass(frozen=True, slots=True)
class FaxEvent:
    """What a provider's webhook says, in the hub's words."""

    event_id: str
    kind: str  # received | queued | media.processed | sending.started | delivered | failed
    fax_id: str
    direction: str  # inbound | outbound
    sender: str
    to: str
    media_url: str | None
    page_count: int | None
    failure_reason: str | None
    partial: bool = False  # a received fax of which only some pages came through


class FaxProvider(Protocol):
    """A fax provider's API and webhooks."""

    name: str
    backoff_seconds: float

    def verify(self, headers: CIMultiDictProxy[str], body: bytes, now: datetime) -> None:
        """Raise BadSignature unless the provider signed this webhook body, recently."""

    def parse(self, body: bytes) -> FaxEvent | None:
        """The fax event a webhook carries (None: not about faxes; MalformedRequest: junk)."""

    async def send(self, *, to: str, sender: str, media_url: str, webhook_url: str) -> str:
        """Fax the document at media_url; the provider's fax id."""

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """A received document, whole, from the provider's link (retrying what may pass).

        ExpiredLink when the link has expired (``refresh`` gives a new one).
        """

    async def refresh(self, fax_id: str) -> str:
        """A fresh link to a received fax's document, its old one having expired."""

    def failure(self, reason: str | None) -> tuple[str, bool]:
        """What a failure reason means, in words, and whether trying again later may succeed."""

    async def close(self) -> None:
        """Release connections."""
