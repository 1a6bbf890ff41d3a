"""Timeline events: append them once, read them newest first."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Integer, String, Table, and_, bindparam, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TextualSelect

from hub.crm_store.database import insert_many
from hub.crm_store.tables import TimelineEventRow
from hub.domain.interaction import Channel
from hub.domain.timeline import Attachment, Direction, EventKind, TimelineEvent
from hub.errors import ValidationError

EVENTS = cast(Table, TimelineEventRow.__table__)


def _newest_sql(dialect: str) -> TextualSelect:
    """The newest ``:limit`` events of each customer in the JSON array ``:ids``: one indexed
    page per customer from ``(customer_id, occurred_at, id)``, however long their histories,
    in one statement whose text is the same however many customers there are (a UNION of a
    page per customer took longer to compile than to run, once per count)."""
    # Built from this module's constants only; the ids and the limit are bound parameters.
    columns = ", ".join(f"e.{column.name}" for column in EVENTS.c)
    page = (
        "SELECT {0} FROM timeline_events AS x WHERE x.customer_id = {1}"
        " ORDER BY x.occurred_at DESC, x.id DESC LIMIT :limit"
    )
    if dialect == "postgresql":
        sql = (
            f"SELECT {columns} FROM jsonb_array_elements_text(CAST(:ids AS jsonb)) AS c(id)"  # noqa: S608
            f" CROSS JOIN LATERAL ({page.format('x.*', 'CAST(c.id AS BIGINT)')}) AS e"
        )
    else:  # SQLite: no LATERAL; the page, a list of ids, picks the rows by their key
        sql = (
            f"SELECT {columns} FROM json_each(:ids) AS c"  # noqa: S608
            f" CROSS JOIN timeline_events AS e ON e.id IN ({page.format('x.id', 'c.value')})"
        )
    return (
        text(sql)
        .bindparams(bindparam("ids", type_=String), bindparam("limit", type_=Integer))
        .columns(*EVENTS.c)
    )


_NEWEST = {dialect: _newest_sql(dialect) for dialect in ("postgresql", "sqlite")}


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append in bulk (``TimelineRepository.append_many``)."""

    customer_id: int
    interaction_id: int | None
    kind: EventKind
    direction: Direction
    occurred_at: datetime
    channel: Channel | None
    body: str | None
    attachments: tuple[Attachment, ...] = ()
    provider: str | None = None
    provider_ref: str | None = None
    author_id: int | None = None
    data: dict[str, Any] | None = None
    # Its interaction is held by nobody (it opened just now, or waits in a queue): no console
    # shows it, so nobody is to be told of the event (``TimelineEventAdded.unheld``).
    unheld: bool = False


def event_row(e: NewEvent) -> dict[str, Any]:
    """A new event's columns but its id, in the table's order."""
    return {
        "customer_id": e.customer_id,
        "interaction_id": e.interaction_id,
        "kind": e.kind.value,
        "channel": None if e.channel is None else e.channel.value,
        "direction": e.direction.value,
        "occurred_at": e.occurred_at,
        "body": e.body,
        "attachments": [asdict(a) for a in e.attachments],
        "provider": e.provider,
        "provider_ref": e.provider_ref,
        "author_id": e.author_id,
        "data": e.data or {},
    }


# Enum members by value: a dict lookup costs a fifth of calling the enum, 150 times a record.
_KINDS = {kind.value: kind for kind in EventKind}
_DIRECTIONS = {direction.value: direction for direction in Direction}
_CHANNELS = {channel.value: channel for channel in Channel}

# The table's columns in order, as ``_event_of`` unpacks them.
_COLUMNS = (
    "id",
    "customer_id",
    "interaction_id",
    "kind",
    "channel",
    "direction",
    "occurred_at",
    "body",
    "attachments",
    "provider",
    "provider_ref",
    "author_id",
    "data",
)
if tuple(column.name for column in EVENTS.c) != _COLUMNS:
    raise RuntimeError("timeline_events' columns changed: update _COLUMNS and _event_of")


def _event_of(row: Sequence[Any]) -> TimelineEvent:
    """A domain event from a Core row of all the table's columns, in order (``_COLUMNS``).

    Unpacked, not read by name: a row's 13 attributes cost 3 us by name, 0.13 us unpacked,
    and a record or a screen pop builds 20-50 of these.
    """
    (
        event_id,
        customer_id,
        interaction_id,
        kind,
        channel,
        direction,
        occurred_at,
        body,
        attachments,
        provider,
        provider_ref,
        author_id,
        data,
    ) = row
    return TimelineEvent(
        event_id,
        customer_id,
        _KINDS[kind],
        _DIRECTIONS[direction],
        occurred_at,
        interaction_id,
        None if channel is None else _CHANNELS[channel],
        body,
        tuple(Attachment(**a) for a in attachments) if attachments else (),
        provider,
        provider_ref,
        author_id,
        dict(data) if data else {},
    )


def _event(row: Any) -> TimelineEvent:
    """A domain event from an ORM instance or a Core row (same attribute names)."""
    return _event_of([getattr(row, name) for name in _COLUMNS])


def encode_cursor(event: TimelineEvent) -> str:
    """An opaque cursor that continues a page after this event."""
    micros = int(event.occurred_at.timestamp() * 1_000_000)
    return base64.urlsafe_b64encode(f"{micros}:{event.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Read a cursor made by encode_cursor, or raise ValidationError."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, event_id = base64.urlsafe_b64decode(padded).decode().split(":")
        at = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        return at, int(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError) as err:
        raise ValidationError("the cursor is not one this API gave out", field="before") from err


class TimelineRepository:
    """Reads and appends timeline events."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # (customer, interaction, event, unheld) appended in this unit of work: announced after
        # commit
        self.appended: list[tuple[int, int | None, int, bool]] = []
        # events changed in this unit of work (delivery status, attachments): announced too
        self.updated: list[tuple[int, int | None, int]] = []

    async def by_provider_ref(self, provider: str, provider_ref: str) -> TimelineEvent | None:
        """The event a provider already delivered under this reference, or None."""
        row = await self._session.scalar(
            select(TimelineEventRow).where(
                TimelineEventRow.provider == provider,
                TimelineEventRow.provider_ref == provider_ref,
            )
        )
        return None if row is None else _event(row)

    async def by_provider_refs(
        self, provider: str, provider_refs: Sequence[str]
    ) -> dict[str, TimelineEvent]:
        """The events a provider already delivered under any of these references, by
        reference, in one query."""
        if not provider_refs:
            return {}
        connection = await self._session.connection()  # Core: none of the ORM's machinery
        rows = await connection.execute(
            select(EVENTS).where(
                EVENTS.c.provider == provider, EVENTS.c.provider_ref.in_(sorted(set(provider_refs)))
            )
        )
        return {event.provider_ref or "": event for event in map(_event_of, rows)}

    async def append(
        self,
        *,
        customer_id: int,
        kind: EventKind,
        direction: Direction,
        occurred_at: datetime,
        interaction_id: int | None = None,
        channel: Channel | None = None,
        body: str | None = None,
        attachments: tuple[Attachment, ...] = (),
        provider: str | None = None,
        provider_ref: str | None = None,
        author_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> TimelineEvent:
        """Append an event; a repeated provider reference fails at flush (StoreConflict)."""
        row = TimelineEventRow(
            customer_id=customer_id,
            interaction_id=interaction_id,
            kind=kind.value,
            channel=None if channel is None else channel.value,
            direction=direction.value,
            occurred_at=occurred_at,
            body=body,
            attachments=[asdict(a) for a in attachments],
            provider=provider,
            provider_ref=provider_ref,
            author_id=author_id,
            data=data or {},
        )
        self._session.add(row)
        await self._session.flush()
        self.appended.append((row.customer_id, row.interaction_id, row.id, False))
        return _event(row)

    async def append_many(self, events: Sequence[NewEvent]) -> list[int]:
        """Append events with one multi-row insert; their ids, in order (announced at commit)."""
        if not events:
            return []
        ids = await insert_many(self._session, EVENTS, [event_row(e) for e in events])
        self.appended.extend(
            (e.customer_id, e.interaction_id, event_id, e.unheld)
            for e, event_id in zip(events, ids, strict=True)
        )
        return ids

    async def latest_inbound(self, interaction_id: int) -> TimelineEvent | None:
        """The customer's latest message on an interaction (who wrote, to which address)."""
        row = await self._session.scalar(
            select(TimelineEventRow)
            .where(
                TimelineEventRow.interaction_id == interaction_id,
                TimelineEventRow.direction == Direction.INBOUND.value,
            )
            .order_by(TimelineEventRow.occurred_at.desc(), TimelineEventRow.id.desc())
            .limit(1)
        )
        return None if row is None else _event(row)

    async def event(self, event_id: int) -> TimelineEvent | None:
        """One event, or None."""
        row = await self._session.get(TimelineEventRow, event_id)
        return None if row is None else _event(row)

    async def events(self, event_ids: Sequence[int]) -> dict[int, TimelineEvent]:
        """These events (those that exist) by id, in one query."""
        ids = sorted(set(event_ids))
        if not ids:
            return {}
        rows = await self._session.execute(select(EVENTS).where(EVENTS.c.id.in_(ids)))
        return {row.id: _event(row) for row in rows}

    async def _change(self, event_id: int, **values: Any) -> None:
        """Set columns of a stored event, noted to be announced after commit."""
        row = await self._session.get(TimelineEventRow, event_id)
        if row is None:
            return
        for name, value in values.items():
            setattr(row, name, value)
        await self._session.flush()
        self.updated.append((row.customer_id, row.interaction_id, row.id))

    async def set_attachments(self, event_id: int, attachments: tuple[Attachment, ...]) -> None:
        """Replace an event's attachment records (after fetching them)."""
        await self._change(event_id, attachments=[asdict(a) for a in attachments])

    async def recent_messages(
        self,
        channel: Channel,
        *,
        since: datetime,
        limit: int,
        direction: Direction = Direction.INBOUND,
        kind: EventKind = EventKind.MESSAGE,
    ) -> list[TimelineEvent]:
        """A channel's messages (inbound, unless told) since a time, newest first."""
        query = (
            select(TimelineEventRow.__table__)
            .where(
                TimelineEventRow.channel == channel.value,
                TimelineEventRow.kind == kind.value,
                TimelineEventRow.direction == direction.value,
                TimelineEventRow.occurred_at >= since,
            )
            .order_by(TimelineEventRow.occurred_at.desc(), TimelineEventRow.id.desc())
            .limit(limit)
        )
        return [_event(row) for row in await self._session.execute(query)]

    async def set_body(self, event_id: int, body: str) -> None:
        """Replace an event's text (what OCR read off a fax)."""
        await self._change(event_id, body=body)

    async def update_delivery(
        self,
        event_id: int,
        *,
        provider: str | None = None,
        provider_ref: str | None = None,
        **data: Any,
    ) -> None:
        """Record what the provider said about an outbound message (its id, its status)."""
        row = await self._session.get(TimelineEventRow, event_id)
        if row is None:
            return
        changes: dict[str, Any] = {"data": {**(row.data or {}), **data}}
        if provider is not None:
            changes["provider"] = provider
        if provider_ref is not None:
            changes["provider_ref"] = provider_ref
        await self._change(event_id, **changes)

    async def page(
        self, customer_id: int, *, limit: int, before: tuple[datetime, int] | None = None
    ) -> list[TimelineEvent]:
        """The customer's events newest first, starting after the ``before`` position."""
        # Core rows, not ORM instances: the timeline is the hot read path and is read-only here.
        query = (
            select(TimelineEventRow.__table__)
            .where(TimelineEventRow.customer_id == customer_id)
            .order_by(TimelineEventRow.occurred_at.desc(), TimelineEventRow.id.desc())
            .limit(limit)
        )
        if before is not None:
            at, event_id = before
            query = query.where(
                or_(
                    TimelineEventRow.occurred_at < at,
                    and_(TimelineEventRow.occurred_at == at, TimelineEventRow.id < event_id),
                )
            )
        return [_event(row) for row in await self._session.execute(query)]

    async def newest_of(
        self, customer_ids: Sequence[int], *, limit: int
    ) -> dict[int, list[TimelineEvent]]:
        """Each customer's newest events (newest first), in one statement (``_newest_sql``)."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        found: dict[int, list[TimelineEvent]] = {customer_id: [] for customer_id in ids}
        connection = await self._session.connection()  # Core: none of the ORM's machinery
        statement = _NEWEST[connection.dialect.name]
        for row in await connection.execute(statement, {"ids": json.dumps(ids), "limit": limit}):
            event = _event_of(row)
            found[event.customer_id].append(event)
        for events in found.values():  # the pages come back in no promised order
            events.sort(key=lambda e: (e.occurred_at, e.id), reverse=True)
        return found
