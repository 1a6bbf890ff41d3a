"""A wire-level Telnyx fax for development and tests: Telnyx cannot be reached from here.

It speaks ``POST /v2/faxes`` (202, as Telnyx answers), ``GET /v2/faxes/{id}`` and
``POST /v2/faxes/{id}/actions/refresh``, each behind the Bearer API key, in Telnyx-shaped JSON;
fetches the document the hub offers at its ``media_url`` as Telnyx does (failing the fax with
``file_download_failed`` if it cannot), and reports the fax's progress through webhooks signed
exactly as Telnyx signs them (Ed25519 over ``"{timestamp}|{body}"``, base64, in
``telnyx-signature-ed25519`` with ``telnyx-timestamp``). It plays senders too: a fax received is
a ``fax.received`` webhook whose ``media_url`` is a presigned link here that lives 10 minutes
and then answers 403, as Telnyx's do, until the refresh action gives a new one; a fax may come
in part (``partial_content``). Tests can make links fail, numbers busy or unanswered (with
Telnyx's failure reasons), and webhooks repeat or come out of order.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.bench.figures import serve_app

WEBHOOK_SECONDS = 2.0  # how long Telnyx waits for a webhook's 2xx


@dataclass
class SentFax:
    """A fax the hub asked us to send."""

    fax_id: str
    to: str
    sender: str
    media_url: str
    webhook_url: str
    document: bytes | None = None
    events: list[str] = field(default_factory=list)


@dataclass
class _Media:
    data: bytes
    content_type: str
    expires: float
    fail_first: int = 0
    fetched: int = 0


class TelnyxSimulator:
    """Telnyx's fax API and webhooks, on loopback."""

    def __init__(
        self,
        *,
        api_key: str,
        hub_url: str,
        media_seconds: float = 600,  # Telnyx's received-fax links live 10 minutes
        clock: Callable[[], float] = time.time,
        private_key: bytes | None = None,
        on_fax: Callable[[SentFax], None] | None = None,
    ) -> None:
        self.api_key = api_key
        self.clock = clock  # what webhooks are stamped with (the hub refuses stale ones)
        self.on_fax = on_fax  # told of each fax the hub sent, once it is delivered or failed
        self.hub_url = hub_url.rstrip("/")
        self.media_seconds = media_seconds
        self.media_delay = 0.0  # how long a document download takes to start
        self._key = (
            Ed25519PrivateKey.from_private_bytes(private_key)
            if private_key is not None
            else Ed25519PrivateKey.generate()
        )
        self.sent: dict[str, SentFax] = {}
        self.received: dict[str, dict[str, Any]] = {}  # inbound faxes by id, with their link
        self.media: dict[str, _Media] = {}
        self.callbacks: list[tuple[str, int]] = []  # (event type, the hub's answer)
        self.outcomes: dict[str, list[str]] = {}  # number -> failure reasons for its next sends
        self.requests: list[dict[str, Any]] = []
        self.base = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def public_key(self) -> str:
        """The key the hub checks webhooks with (fax.public_key), base64 as Telnyx shows it."""
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    async def start(self, port: int = 0) -> str:
        """Listen on loopback (port 0: any free one); the base URL."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v2/faxes", self._create)
        app.router.add_get("/v2/faxes/{fax_id}", self._read)
        app.router.add_post("/v2/faxes/{fax_id}/actions/refresh", self._refresh)
        app.router.add_get("/media/{token}", self._serve_media)
        app.router.add_post("/dev/faxes", self._dev_receive)
        self._runner, self.base = await serve_app(app, port=port)
        self._http = aiohttp.ClientSession()
        return self.base

    async def _dev_receive(self, request: web.Request) -> web.Response:
        """`hub dev fax`: a customer faxes the hub (JSON: from, to, document in base64)."""
        body = await request.json()
        document = base64.b64decode(body["document"])
        kind = "image/tiff" if document[:4] in (b"II*\x00", b"MM\x00*") else "application/pdf"
        status, fax_id = await self.receive_fax(
            sender=body["from"], to=body["to"], document=document, content_type=kind
        )
        return web.json_response({"hub_status": status, "fax_id": fax_id})

    async def stop(self) -> None:
        await self.settle()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def settle(self) -> None:
        """Wait for the webhooks in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- signing and sending webhooks -------------------------------------------------------

    def signed(self, body: bytes, *, at: float | None = None) -> dict[str, str]:
        """The headers Telnyx sends with a webhook body."""
        stamp = str(int(at if at is not None else self.clock()))
        signature = self._key.sign(stamp.encode() + b"|" + body)
        return {
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": stamp,
            "Content-Type": "application/json",
        }

    @staticmethod
    def payload(event_type: str, fax: dict[str, Any]) -> bytes:
        """A webhook body in Telnyx's shape."""
        return json.dumps(
            {
                "data": {
                    "event_type": event_type,
                    "id": str(uuid.uuid4()),
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "payload": fax,
                    "record_type": "event",
                },
                "meta": {"attempt": 1, "delivered_to": ""},
            }
        ).encode()

    async def webhook(self, event_type: str, fax: dict[str, Any], url: str | None = None) -> int:
        """Send one signed webhook to the hub; its HTTP status (0: no answer in time).

        Telnyx waits 2 s for a 2xx; a slower answer counts as none (and Telnyx tries again).
        """
        assert self._http is not None
        body = self.payload(event_type, fax)
        target = url or f"{self.hub_url}/webhooks/fax/telnyx"
        try:
            async with self._http.post(
                target,
                data=body,
                headers=self.signed(body),
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_SECONDS),
            ) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            status = 0
        self.callbacks.append((event_type, status))
        return status

    # -- a customer faxing us -----------------------------------------------------------------

    def host(
        self, data: bytes, content_type: str, *, fail_first: int = 0, expired: bool = False
    ) -> str:
        """A short-lived link to a document, as Telnyx gives for a received fax."""
        token = secrets.token_urlsafe(12)
        lives = -1.0 if expired else self.media_seconds
        self.media[token] = _Media(data, content_type, time.monotonic() + lives, fail_first)
        return f"{self.base}/media/{token}"

    async def receive_fax(
        self, *, sender: str, to: str, document: bytes, content_type: str = "application/pdf",
        pages: int | None = None, fax_id: str | None = None, fail_first: int = 0,
        partial: bool = False, expired: bool = False,
    ) -> tuple[int, str]:  # fmt: skip
        """A fax arrives from sender: the fax.received webhook; (the hub's status, fax id)."""
        fax_id = fax_id or str(uuid.uuid4())
        fax = {
            "fax_id": fax_id,
            "connection_id": "sim-connection",
            "direction": "inbound",
            "from": sender,
            "to": to,
            "media_url": self.host(document, content_type, fail_first=fail_first, expired=expired),
            "page_count": pages,
            "partial_content": partial,
            "status": "received",
        }
        self.received[fax_id] = fax | {"document": (document, content_type)}
        return await self.webhook("fax.received", fax), fax_id

    async def _serve_media(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.media_delay)
        media = self.media.get(request.match_info["token"])
        if media is None or time.monotonic() > media.expires:
            return web.Response(  # what an S3 presigned link past its time answers
                status=403,
                text="<Error><Code>AccessDenied</Code>"
                "<Message>Request has expired</Message></Error>",
                content_type="application/xml",
            )
        media.fetched += 1
        if media.fetched <= media.fail_first:
            return web.Response(status=503, text="try again")
        return web.Response(body=media.data, content_type=media.content_type)

    # -- the hub sending a fax ----------------------------------------------------------------

    def _refused(self, request: web.Request) -> web.Response | None:
        """401 unless the request carries the account's API key, as on every Telnyx route."""
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response(
                {"errors": [{"code": "10009", "title": "Authentication failed"}]}, status=401
            )
        return None

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        self.requests.append(body)
        missing = [k for k in ("connection_id", "media_url", "to", "from") if not body.get(k)]
        if missing:
            errors = [{"title": "Invalid parameter", "detail": f"{k} is required"} for k in missing]
            return web.json_response({"errors": errors}, status=422)
        fax = SentFax(
            str(uuid.uuid4()), body["to"], body["from"], body["media_url"], body["webhook_url"]
        )
        self.sent[fax.fax_id] = fax
        task = asyncio.create_task(self._progress(fax))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"data": self._fax_json(fax, "queued")}, status=202)

    async def _read(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        fax_id = request.match_info["fax_id"]
        inbound = self.received.get(fax_id)
        if inbound is not None:
            shown = {k: v for k, v in inbound.items() if k not in ("fax_id", "document")}
            return web.json_response({"data": shown | {"id": fax_id, "record_type": "fax"}})
        fax = self.sent.get(fax_id)
        if fax is None:
            return web.json_response({"errors": [{"title": "Not found"}]}, status=404)
        return web.json_response(
            {"data": self._fax_json(fax, fax.events[-1] if fax.events else "queued")}
        )

    async def _refresh(self, request: web.Request) -> web.Response:
        """A received fax's expired media_url renewed (read it back with GET)."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        self.requests.append({"refresh": request.match_info["fax_id"]})
        inbound = self.received.get(request.match_info["fax_id"])
        if inbound is None:
            return web.json_response({"errors": [{"title": "Not found"}]}, status=404)
        inbound["media_url"] = self.host(*inbound["document"])
        return web.json_response({"data": {"result": "ok"}})

    def _fax_json(self, fax: SentFax, status: str) -> dict[str, Any]:
        return {
            "id": fax.fax_id,
            "record_type": "fax",
            "connection_id": "sim-connection",
            "direction": "outbound",
            "from": fax.sender,
            "to": fax.to,
            "media_url": fax.media_url,
            "status": status,
        }

    async def _progress(self, fax: SentFax) -> None:
        """What Telnyx does with a fax to send: fetch it, then report each step."""
        assert self._http is not None
        async with self._http.get(fax.media_url) as response:
            if response.status == 200:
                fax.document = await response.read()
        state: dict[str, Any] = {
            "fax_id": fax.fax_id,
            "direction": "outbound",
            "from": fax.sender,
            "to": fax.to,
        }
        if fax.document is None:
            await self._report(
                fax, "fax.failed", state | {"failure_reason": "file_download_failed"}
            )
            return
        pages = fax.document.count(b"/Type /Page") - fax.document.count(b"/Type /Pages") or 1
        for step in ("fax.queued", "fax.media.processed", "fax.sending.started"):
            await self._report(fax, step, state)
        failures = self.outcomes.get(fax.to, [])
        if failures:
            reason = failures.pop(0)
            await self._report(fax, "fax.failed", state | {"failure_reason": reason})
        else:
            await self._report(fax, "fax.delivered", state | {"page_count": pages})

    async def _report(self, fax: SentFax, event_type: str, state: dict[str, Any]) -> None:
        fax.events.append(event_type)
        await self.webhook(event_type, state | {"status": event_type[4:]}, fax.webhook_url)
        if self.on_fax is not None and event_type in ("fax.delivered", "fax.failed"):
            self.on_fax(fax)
