"""What the fax channel keeps of faxes: their documents, page pictures, text and progress.

The fax channel (``hub.channels.fax``) verifies the provider's webhooks, fetches, draws and
reads documents and talks to the provider; every fax is a timeline event, and what the channel
learns of one is kept here, one unit of work each.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from hub.crm_store.unit_of_work import Store
from hub.domain.interaction import Channel
from hub.domain.timeline import Attachment, Direction, TimelineEvent

RECENT = 500  # at most this many faxes each way are looked at when the hub starts


class FaxRecords:
    """The fax events of the timeline, as the fax channel changes them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def event(self, event_id: int) -> TimelineEvent | None:
        async with self._store.reading() as uow:
            return await uow.timeline.event(event_id)

    async def recent(self, since: datetime) -> tuple[list[TimelineEvent], list[TimelineEvent]]:
        """Faxes received and sent since then (newest first): what a stopped hub may owe."""
        async with self._store.reading() as uow:
            received = await uow.timeline.recent_messages(Channel.FAX, since=since, limit=RECENT)
            sent = await uow.timeline.recent_messages(
                Channel.FAX, since=since, limit=RECENT, direction=Direction.OUTBOUND
            )
        return received, sent

    async def document_kept(self, event_id: int, document: Attachment) -> None:
        """A received fax's document is kept on disk: on its event, to be read."""
        async with self._store.unit_of_work() as uow:
            await uow.timeline.set_attachments(event_id, (document,))
            await uow.timeline.update_delivery(event_id, document="kept")
            await uow.commit()

    async def document_failed(self, event_id: int, error: str) -> None:
        """A received fax's document could not be fetched: the event says why."""
        async with self._store.unit_of_work() as uow:
            event = await uow.timeline.event(event_id)
            if event is None:
                return
            kept = tuple(replace(a, error=error) for a in event.attachments)
            await uow.timeline.set_attachments(event_id, kept)
            await uow.timeline.update_delivery(event_id, document="failed", document_error=error)
            await uow.commit()

    async def document_read(
        self,
        event_id: int,
        files: tuple[Attachment, ...],
        text: str,
        *,
        page_count: int,
        ocr: dict[str, Any],
    ) -> None:
        """A document's pages drawn (``files``: the document, then thumbnails) and its text read:
        the text becomes the event's body, so customer search finds it."""
        async with self._store.unit_of_work() as uow:
            await uow.timeline.set_attachments(event_id, files)
            await uow.timeline.set_body(event_id, text)
            await uow.timeline.update_delivery(event_id, page_count=page_count, ocr=ocr)
            await uow.commit()

    async def outgoing(self, event_id: int, document: Attachment, *, pages: int, ours: str) -> None:
        """An outbound fax's document, ready for the provider to fetch."""
        async with self._store.unit_of_work() as uow:
            await uow.timeline.set_attachments(event_id, (document,))
            await uow.timeline.update_delivery(
                event_id, page_count=pages, attempts=1, sent_from=ours
            )
            await uow.commit()

    async def progress(self, event_id: int, **changes: Any) -> None:
        """What the channel learnt of a fax's delivery, reading or sending (its event's data)."""
        async with self._store.unit_of_work() as uow:
            await uow.timeline.update_delivery(event_id, **changes)
            await uow.commit()
