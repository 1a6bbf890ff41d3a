"""Telnyx Programmable Fax: the first fax provider behind the hub's fax contract.

- Webhooks (https://developers.telnyx.com/docs/programmable-fax/receiving-webhooks):
  ``{"data": {"event_type", "id", "occurred_at", "payload": {"fax_id", "direction", "from",
  "to", "media_url", "page_count", "status", "failure_reason"}}}``, for ``fax.received``,
  ``fax.queued``, ``fax.media.processed``, ``fax.sending.started``, ``fax.delivered`` and
  ``fax.failed``. They may come twice or out of order.
- Signatures (https://developers.telnyx.com/docs/messaging/webhooks#webhook-signing): the
  ``telnyx-signature-ed25519`` header is the base64 Ed25519 signature, by Telnyx's key, of
  ``"{telnyx-timestamp}|{raw body}"``; the hub checks it with the account's public key and
  refuses timestamps too far from now (replays).
- Sending (https://developers.telnyx.com/api/programmable-fax/send-fax): ``POST /v2/faxes``
  with ``connection_id``, ``media_url`` (Telnyx fetches the document there), ``from``, ``to``;
  Telnyx answers 202 with the fax.
- A received fax's ``media_url`` is a presigned link that lives 10 minutes (403 after);
  ``POST /v2/faxes/{id}/actions/refresh`` renews it, and ``GET /v2/faxes/{id}`` gives it.
  ``partial_content: true`` marks a fax of which only some pages came through.
- Failure reasons (https://support.telnyx.com/en/articles/4967498-programmable-fax-errors):
  ``FAILURES`` below, each explained and marked as worth another try or not.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Any

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from multidict import CIMultiDictProxy

from hub.channels.fax.provider import ExpiredLink, FaxEvent
from hub.config import FaxSettings
from hub.errors import (
    BadSignature,
    ChannelAuthFailed,
    ChannelConfigError,
    ChannelError,
    ChannelNotReady,
    MalformedRequest,
)
from hub.http import loads_json

NAME = "telnyx"
SIGNATURE = "telnyx-signature-ed25519"
TIMESTAMP = "telnyx-timestamp"
ATTEMPTS = 4
# Telnyx's failure_reason values: what each means, and whether a later try may go through.
FAILURES: dict[str, tuple[str, bool]] = {
    "user_busy": ("the line was busy", True),
    "receiver_no_answer": ("nobody answered", True),
    "receiver_no_response": ("the number did not respond", True),
    "receiver_call_dropped": ("the call dropped part way", True),
    "receiver_communication_error": ("the call failed on the way", True),
    "receiver_recovery_on_timer_expire": ("the far end timed out", True),
    "fax_initial_communication_timeout": ("no fax machine answered (no fax tones)", True),
    "fax_signaling_error": ("the fax machines could not agree (signalling error)", True),
    "service_unavailable": ("Telnyx could not take the fax just then", True),
    # Telnyx could not fetch the hub's document link: each try signs a fresh one.
    "file_download_failed": ("Telnyx could not fetch the document from the hub", True),
    "receiver_decline": ("the number declined the call", False),
    "receiver_invalid_number_format": ("the number is not a valid phone number", False),
    "receiver_unallocated_number": ("the number is not in service", False),
    "file_format_invalid": ("the document is not a valid PDF", False),
    "file_size_limit_exceeded": ("the document is larger than 50 MB", False),
    "page_count_limit_exceeded": ("the document has more than 350 pages", False),
    # Older names, still seen in webhooks.
    "busy": ("the line was busy", True),
    "no_answer": ("nobody answered", True),
    "no_answer_from_remote": ("nobody answered", True),
}


class TelnyxFax:
    """Telnyx's fax API and webhooks (a FaxProvider)."""

    name = NAME

    def __init__(self, settings: FaxSettings) -> None:
        if settings.api_key is None or not settings.public_key:
            raise ChannelConfigError(
                "the Telnyx fax provider needs fax.api_key and fax.public_key "
                "(HUB_FAX__API_KEY, HUB_FAX__PUBLIC_KEY)"
            )
        try:
            raw = base64.b64decode(settings.public_key, validate=True)
            self._key = Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError) as err:
            raise ChannelConfigError("fax.public_key is not a base64 Ed25519 public key") from err
        self._settings = settings
        self._api_key = settings.api_key.get_secret_value()
        self._http: aiohttp.ClientSession | None = None
        self.backoff_seconds = 0.5

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        return self._http

    def verify(self, headers: CIMultiDictProxy[str], body: bytes, now: datetime) -> None:
        """Raise BadSignature unless Telnyx signed this body, recently."""
        signature, stamp = headers.get(SIGNATURE), headers.get(TIMESTAMP)
        if not signature or not stamp:
            raise BadSignature("the webhook is not signed (telnyx-signature-ed25519)")
        try:
            sent = int(stamp)
            self._key.verify(base64.b64decode(signature), stamp.encode() + b"|" + body)
        except (ValueError, binascii.Error, InvalidSignature) as err:
            raise BadSignature("the webhook's signature does not match") from err
        if abs(now.timestamp() - sent) > self._settings.webhook_tolerance_seconds:
            raise BadSignature("the webhook's timestamp is too old (a replay?)")

    @staticmethod
    def parse(body: bytes) -> FaxEvent | None:
        """The fax event a webhook carries; None for events that are not about faxes."""
        document = loads_json(body)
        try:
            data = document["data"]
            event_type = str(data["event_type"])
            payload = data["payload"]
        except (KeyError, TypeError) as err:
            raise MalformedRequest(
                "not a Telnyx webhook: data.event_type and data.payload"
            ) from err
        if not event_type.startswith("fax."):
            return None
        if not isinstance(payload, dict):
            raise MalformedRequest(f"the {event_type} webhook's payload is not an object")
        missing = [k for k in ("fax_id", "from", "to") if not payload.get(k)]
        if missing:
            raise MalformedRequest(f"the {event_type} webhook lacks {', '.join(missing)}")
        pages = str(payload.get("page_count"))
        return FaxEvent(
            event_id=_text(data, "id", 100) or "",
            kind=event_type.removeprefix("fax."),
            fax_id=_text(payload, "fax_id", 100) or "",
            direction=_text(payload, "direction", 20) or "inbound",
            sender=_text(payload, "from", 100) or "",
            to=_text(payload, "to", 100) or "",
            media_url=_text(payload, "media_url", 4000),
            page_count=int(pages) if pages.isdigit() and len(pages) < 6 else None,
            failure_reason=_text(payload, "failure_reason", 200),
            partial=payload.get("partial_content") is True,
        )

    @staticmethod
    def failure(reason: str | None) -> tuple[str, bool]:
        """What Telnyx's failure reason means, and whether to try again later."""
        if not reason:
            return "no reason given", False
        return FAILURES.get(reason, (reason.replace("_", " "), False))

    async def refresh(self, fax_id: str) -> str:
        """A received fax's new media_url: the refresh action, then the fax itself."""
        await self._call("POST", f"/v2/faxes/{fax_id}/actions/refresh", None)
        answer = await self._call("GET", f"/v2/faxes/{fax_id}", None)
        try:
            return str(answer["data"]["media_url"])
        except (KeyError, TypeError) as err:
            raise ChannelError(f"Telnyx gave fax {fax_id} no media_url") from err

    async def send(self, *, to: str, sender: str, media_url: str, webhook_url: str) -> str:
        """Ask Telnyx to fax the document at media_url; its fax id."""
        body = {
            "connection_id": self._settings.connection_id,
            "media_url": media_url,
            "to": to,
            "from": sender,
            "webhook_url": webhook_url,
        }
        answer = await self._call("POST", "/v2/faxes", body)
        try:
            return str(answer["data"]["id"])
        except (KeyError, TypeError) as err:
            raise ChannelError("Telnyx answered the fax request without an id") from err

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        url = self._settings.api_base_url.rstrip("/") + path
        headers = {"Authorization": f"Bearer {self._api_key}"}
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._session().request(method, url, json=body, headers=headers) as r:
                    if r.status in (401, 403):
                        raise ChannelAuthFailed(f"Telnyx refused the API key ({r.status})")
                    if r.status == 429 or r.status >= 500:
                        raise ChannelNotReady(f"Telnyx answered {r.status}")
                    if r.status >= 400:
                        detail = (await r.text())[:300]
                        raise ChannelError(f"Telnyx refused {method} {path} ({r.status}): {detail}")
                    return await r.json()
            except (ChannelNotReady, aiohttp.ClientError, TimeoutError) as err:
                if attempt == ATTEMPTS:
                    raise ChannelNotReady(f"Telnyx cannot be reached: {err}") from err
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """A fax's document from its (short-lived) link, with retries."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._session().get(url) as response:
                    if response.status in (403, 404, 410):  # a presigned link past its time
                        raise ExpiredLink(f"the document link answered {response.status}")
                    if response.status >= 400:
                        raise ChannelNotReady(f"the document link answered {response.status}")
                    data = bytearray()
                    async for chunk in response.content.iter_chunked(65536):
                        data += chunk
                        if len(data) > max_bytes:
                            raise ChannelError(f"the document is larger than {max_bytes} bytes")
                    return bytes(data)
            except (ChannelNotReady, aiohttp.ClientError, TimeoutError) as err:
                if attempt == ATTEMPTS:
                    raise ChannelNotReady(f"the document could not be fetched: {err}") from err
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")


def _text(fields: dict[str, Any], key: str, longest: int) -> str | None:
    """A field that must be text (a fax id, a number, a link) of a sane length, if present."""
    value = fields.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > longest:
        raise MalformedRequest(f"the webhook's {key} is not text of at most {longest} characters")
    return value
