"""The fax channel: faxes in and out through a provider's API, and from fax-to-email gateways.

Inbound, the provider's signed webhook is stored (one event per fax id) and answered at once;
after commit the document is fetched from its short-lived link (with retries), kept under
``data_dir/fax/{event}/``, drawn page by page (thumbnails for the console) and read by
Tesseract, in a background worker, never on the webhook's path. The text becomes the event's
body, so customer search finds it. Outbound, an agent's PDF (or reply text, rendered to a PDF)
is offered to the provider at a signed, expiring link; its statuses come back as webhooks and
only ever move forward; busy and no-answer are tried again as configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import structlog
from aiohttp import web

from hub.channels.base import (
    STOP_SECONDS,
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    OutboundMessage,
)
from hub.channels.fax import documents
from hub.channels.fax.inbound import failed_fax, gateway_fax, received_fax
from hub.channels.fax.outbound import DOCUMENTS, DocumentLinks, document_of
from hub.channels.fax.provider import ExpiredLink, FaxEvent, FaxProvider
from hub.channels.fax.telnyx import TelnyxFax
from hub.config import FaxGatewaySettings, Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.events import AttachmentsOwed
from hub.domain.identity import try_normalize_phone
from hub.domain.interaction import Channel
from hub.domain.timeline import Attachment
from hub.errors import (
    ChannelConfigError,
    HubError,
    MalformedRequest,
    NotFound,
    ValidationError,
)
from hub.http import path_id, public
from hub.services.faxes import FaxRecords
from hub.services.receive import Received

log = structlog.get_logger(__name__)

WEBHOOK = "/webhooks/fax/telnyx"
MAX_WEBHOOK_BYTES = 256 * 1024
# The statuses of an outbound fax, in the order they happen (the last two are final).
_ORDER = ("sending", "queued", "media.processed", "sending.started", "delivered", "failed")
_SHOWN = {"media.processed": "processing", "sending.started": "sending"}
RESUME_DAYS = 7  # at start, faxes this recent that were not read yet are read


def _rank(status: object) -> int:
    return _ORDER.index(status) if status in _ORDER else -1


class FaxChannel(ChannelAdapter):
    """Faxes with customers: documents on the timeline, read and searchable."""

    channel: ClassVar[Channel] = Channel.FAX
    capabilities: ClassVar[Capability] = Capability.OUTBOUND | Capability.ATTACHMENTS
    sends_files: ClassVar[bool] = True
    max_body: ClassVar[int | None] = 20_000

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], datetime]) -> None:
        fax = settings.fax
        if fax.provider is None and not fax.gateways:
            raise ChannelConfigError("the fax channel needs fax.provider or fax.gateways")
        self.settings = settings
        self.store = store
        self.records = FaxRecords(store)
        self.clock = clock
        self.provider: FaxProvider | None = TelnyxFax(fax) if fax.provider == "telnyx" else None
        self.folder = Path(settings.data_dir) / "fax"
        self.links = DocumentLinks(Path(settings.data_dir) / "fax-link.key")
        self._reading: asyncio.Queue[int | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._later: set[asyncio.Task[None]] = set()
        store.bus.subscribe(AttachmentsOwed, self._on_attachments_owed)

    async def start(self, sink: Any) -> None:
        await super().start(sink)
        self._reader = asyncio.create_task(self._read_documents(), name="fax documents")
        await self._resume()

    async def _resume(self) -> None:
        """Pick up the faxes a stopped hub had not finished: fetch or read them, send again."""
        since = self.clock() - timedelta(days=RESUME_DAYS)
        recent, sent = await self.records.recent(since)
        for event in sent:
            if event.data.get("status") == "retrying" and self.provider is not None:
                due = _instant(event.data.get("retry_at")) or self.clock()
                wait = max(0.0, (due - self.clock()).total_seconds())
                self._retry_later(event.id, event.data, int(event.data.get("attempts") or 1), wait)
        for event in recent:
            if "ocr" in event.data or not event.attachments:
                continue
            document = event.attachments[0]
            if document.path:
                await self._reading.put(event.id)
            elif document.url and self.provider is not None and not document.error:
                # Its link has most likely expired by now: the fetch renews it.
                self.spawn(self._fetch(event.id, document.url, str(event.data.get("fax_id", ""))))

    async def stop(self) -> None:
        await super().stop()  # downloads in flight finish first: they queue documents
        for task in self._later:
            task.cancel()
        if self._reader is not None:
            # A document being read gets a moment; unread ones are read at the next start.
            await self._reading.put(None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reader, STOP_SECONDS)
            self._reader = None
        if self.provider is not None:
            await self.provider.close()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(WEBHOOK, self.handle_webhook),
            web.get(DOCUMENTS + r"/{event_id:\d+}", self.serve_document),
        ]

    # -- inbound ----------------------------------------------------------------------------

    def queue_for(self, our_number: str) -> str | None:
        """The queue the fax number called feeds (fax.numbers), if it is one of ours."""
        region = self.settings.default_region
        ours = try_normalize_phone(our_number, region)
        if ours is None:
            return None
        for number, queue in self.settings.fax.numbers.items():
            if try_normalize_phone(number, region) == ours:
                return queue
        return None

    @public  # authenticated by the provider's Ed25519 signature
    async def handle_webhook(self, request: web.Request) -> web.Response:
        """A fax received, or an outbound fax's status; answered once it is committed."""
        if self.provider is None:
            raise NotFound("no fax provider is set up (fax.provider)")
        if request.content_length is not None and request.content_length > MAX_WEBHOOK_BYTES:
            raise MalformedRequest("the webhook is too large")
        body = await request.read()
        self.provider.verify(request.headers, body, self.clock())
        event = self.provider.parse(body)
        if event is None:
            return web.json_response({"ok": True, "ignored": "not a fax event"})
        if event.direction == "inbound" and event.kind == "received":
            await self._received(event)
        elif event.direction == "inbound" and event.kind == "failed":
            await self._reception_failed(event)
        elif event.direction == "outbound":
            await self._status(event)
        return web.json_response({"ok": True})

    async def _received(self, event: FaxEvent) -> None:
        assert self.provider is not None
        received = await self.sink()(
            received_fax(
                event,
                provider=self.provider.name,
                region=self.settings.default_region,
                queue=self.queue_for(event.to),
                now=self.clock(),
            )
        )
        if not received.duplicate:
            return  # the core recorded AttachmentsOwed with it: fetched once that is delivered
        stored = await self.records.event(received.event_id)
        kept = stored is not None and any(a.path for a in stored.attachments)
        # A retry of a fax whose document could not be fetched brings a fresh link: use it.
        if event.media_url and not kept:
            self.spawn(self._fetch(received.event_id, event.media_url, event.fax_id))

    async def _on_attachments_owed(self, event: AttachmentsOwed) -> None:
        """Fetch a received fax's document once its message is committed (the outbox says
        so; a hub that stops first fetches it at its next start). Beside the lanes: a slow
        link holds up no other interaction's events."""
        if event.channel is not Channel.FAX or self.provider is None or not self.running:
            return
        stored = await self.records.event(event.event_id)
        if stored is None or not stored.attachments:
            return
        document = stored.attachments[0]
        if document.owed and document.url:
            self.spawn(self._fetch(stored.id, document.url, str(stored.data.get("fax_id", ""))))

    async def _reception_failed(self, event: FaxEvent) -> None:
        """A fax that did not come through: on the sender's timeline, no work."""
        assert self.provider is not None
        meaning, _ = self.provider.failure(event.failure_reason)
        await self.sink()(
            failed_fax(
                event,
                meaning,
                provider=self.provider.name,
                region=self.settings.default_region,
                now=self.clock(),
            )
        )

    async def _fetch(self, event_id: int, url: str, fax_id: str) -> None:
        """Fetch a received fax's document, keep it, queue it to read.

        Its link expires (Telnyx's in 10 minutes): an expired one, after a restart or a long
        outage, is renewed through the provider and fetched again.
        """
        assert self.provider is not None
        limit = self.settings.fax.max_document_bytes
        try:
            try:
                data = await self.provider.download(url, max_bytes=limit)
            except ExpiredLink:
                if not fax_id:
                    raise
                url = await self.provider.refresh(fax_id)
                log.info("fax document link renewed", event_id=event_id, fax_id=fax_id)
                data = await self.provider.download(url, max_bytes=limit)
            kind = documents.kind_of(data)
        except HubError as err:
            log.warning("fax document not fetched", event_id=event_id, error=err.message)
            await self.records.document_failed(event_id, err.message)
            return
        await self.keep_document(event_id, data, kind, source=url)

    async def keep_document(self, event_id: int, data: bytes, kind: str, source: str) -> None:
        """Keep a fax's document on its event and queue it to be drawn and read."""
        suffix = "pdf" if kind == documents.PDF else "tif"
        path = self.folder / str(event_id) / f"document.{suffix}"
        await asyncio.to_thread(_write, path, data)
        attachment = Attachment(
            f"fax-{event_id}.{suffix}", kind, size=len(data), url=source, path=str(path)
        )
        await self.records.document_kept(event_id, attachment)
        await self._reading.put(event_id)

    async def _read_documents(self) -> None:
        """The background worker: page pictures and OCR, one document at a time."""
        while (event_id := await self._reading.get()) is not None:
            try:
                await self.read_document(event_id)
            except Exception as err:  # a document PDFium or Pillow cannot read: say so, go on
                log.exception("fax document not read", event_id=event_id)
                with contextlib.suppress(HubError):
                    await self._unreadable(event_id, f"the document cannot be read: {err}")

    async def _unreadable(self, event_id: int, reason: str) -> None:
        ocr = {"status": "failed", "error": reason[:300]}
        await self.records.progress(event_id, ocr=ocr, document_error=reason[:300])

    async def read_document(self, event_id: int) -> None:
        """Draw a kept document's pages and read their text onto the event."""
        event = await self.records.event(event_id)
        if event is None or not event.attachments or not event.attachments[0].path:
            return
        document = event.attachments[0]
        data = await asyncio.to_thread(Path(str(document.path)).read_bytes)
        folder = self.folder / str(event_id)
        drawn = await asyncio.to_thread(documents.pages, data, folder)
        thumbnails = tuple(
            Attachment(
                f"page-{p.number}.png",
                "image/png",
                size=p.thumbnail.stat().st_size,
                path=str(p.thumbnail),
                inline=True,
            )
            for p in drawn
        )
        texts: list[str] = []
        ocr: dict[str, Any] = {"languages": self.settings.fax.ocr_languages}
        if documents.tesseract_available():
            cores = asyncio.Semaphore(os.cpu_count() or 2)

            async def read(image: Path) -> str:
                async with cores:
                    return await documents.read_text(image, ocr["languages"])

            try:
                texts = list(await asyncio.gather(*(read(p.image) for p in drawn)))
                ocr["status"] = "read"
            except (RuntimeError, TimeoutError, OSError) as err:
                ocr |= {"status": "failed", "error": str(err)[:300]}
        else:
            ocr["status"] = "unavailable"  # Tesseract is not installed
        for page in drawn:  # the full-size pictures were for Tesseract only
            page.image.unlink(missing_ok=True)
        text = "\n\n".join(t for t in texts if t)
        await self.records.document_read(
            event_id, (document, *thumbnails), text, page_count=len(drawn), ocr=ocr
        )

    # -- from fax-to-email gateways ---------------------------------------------------------

    def gateway_for(self, address: str) -> FaxGatewaySettings | None:
        """The gateway that sends mail from this address, if any."""
        address = address.casefold()
        return next(
            (g for g in self.settings.fax.gateways if g.address.casefold() == address), None
        )

    async def take_gateway_mail(
        self,
        gateway: FaxGatewaySettings,
        *,
        message_id: str,
        subject: str,
        text: str,
        attachments: tuple[Attachment, ...],
    ) -> Received | None:
        """A gateway's mail as the fax it carries; None when it is not one (then it is email)."""
        message = gateway_fax(
            gateway,
            message_id=message_id,
            subject=subject,
            text=text,
            attachments=attachments,
            region=self.settings.default_region,
            now=self.clock(),
        )
        if message is None:
            return None
        received = await self.sink()(message)
        if not received.duplicate:
            await self._reading.put(received.event_id)
        return received

    # -- outbound ---------------------------------------------------------------------------

    def document_link(self, event_id: int) -> str:
        """Where the provider fetches an outbound fax's document: signed, for a while."""
        return self.links.link(self.settings.public_url, event_id, self.clock().timestamp())

    @public  # the link's signature and expiry authenticate it (the provider fetches it)
    async def serve_document(self, request: web.Request) -> web.StreamResponse:
        """An outbound fax's document, for the provider that sends it."""
        event_id = path_id(request, "event_id")
        expires, signature = request.query.get("expires", ""), request.query.get("sig", "")
        if not self.links.valid(event_id, expires, signature, self.clock().timestamp()):
            raise NotFound("no such document (or the link has expired)")
        path = self.folder / "outbound" / str(event_id) / "document.pdf"
        if not await asyncio.to_thread(path.is_file):
            raise NotFound("no such document")
        return web.FileResponse(path, headers={"Content-Type": documents.PDF})

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Fax the agent's PDF (or their text, rendered) to the customer's fax number."""
        if self.provider is None:
            raise ChannelConfigError("faxes go out through a provider: set fax.provider")
        if message.event_id is None:
            raise ValidationError("an outbound fax needs its timeline event")
        data = await document_of(message)
        ours = message.reply_from or next(iter(self.settings.fax.numbers), None)
        if ours is None:
            raise ChannelConfigError("no fax number to send from: set fax.numbers")
        pages = await asyncio.to_thread(documents.page_count, data)
        path = self.folder / "outbound" / str(message.event_id) / "document.pdf"
        await asyncio.to_thread(_write, path, data)
        sent = Attachment("fax.pdf", documents.PDF, size=len(data), path=str(path))
        await self.records.outgoing(message.event_id, sent, pages=pages, ours=ours)
        fax_id = await self._send(message.to.value, ours, message.event_id)
        return DeliveryReceipt(self.provider.name, fax_id, "queued")

    async def _send(self, to: str, ours: str, event_id: int) -> str:
        assert self.provider is not None
        return await self.provider.send(
            to=to,
            sender=ours,
            media_url=self.document_link(event_id),
            webhook_url=self.settings.public_url + WEBHOOK,
        )

    async def _status(self, event: FaxEvent) -> None:
        """An outbound fax's progress: forward only; busy or no answer tried again later."""
        assert self.provider is not None
        stored = await self.sent_message(self.store, self.provider.name, event.fax_id)
        if stored is None:
            return
        current = stored.data.get("fax_status")
        if _rank(event.kind) <= _rank(current):
            return  # late or repeated: never undo a later status
        changes: dict[str, Any] = {
            "fax_status": event.kind,
            "status": _SHOWN.get(event.kind, event.kind),
        }
        if event.kind == "delivered":
            changes["pages_sent"] = event.page_count or stored.data.get("page_count")
        if event.kind == "failed":
            meaning, retryable = self.provider.failure(event.failure_reason)
            changes |= {"failure_reason": event.failure_reason, "failure": meaning}
            attempts = int(stored.data.get("attempts") or 1)
            if retryable and attempts <= self.settings.fax.retries:
                wait = self.settings.fax.retry_seconds
                due = self.clock() + timedelta(seconds=wait)
                # when it is due is kept: a hub restarted meanwhile sends it then
                changes |= {
                    "status": "retrying",
                    "fax_status": "sending",
                    "retry_at": due.isoformat(),
                }
                self._retry_later(stored.id, stored.data, attempts, wait)
        await self.records.progress(stored.id, **changes)

    def _retry_later(self, event_id: int, data: dict[str, Any], attempts: int, wait: float) -> None:
        async def again() -> None:
            await asyncio.sleep(wait)
            to, ours = str(data.get("to")), str(data.get("sent_from"))
            try:
                fax_id = await self._send(to, ours, event_id)
            except HubError as err:
                await self.records.progress(event_id, status="failed", error=err.message)
                return
            await self.records.progress(
                event_id,
                provider_ref=fax_id,
                status="queued",
                fax_status="queued",
                attempts=attempts + 1,
            )

        task = asyncio.create_task(again(), name=f"fax retry {event_id}")
        self._later.add(task)
        task.add_done_callback(self._later.discard)


def _instant(value: object) -> datetime | None:
    """A time kept in an event's data (ISO 8601), or None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
