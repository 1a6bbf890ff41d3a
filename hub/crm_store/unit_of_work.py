"""The store and its unit of work: one transaction, whose events are stored with it."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Self

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.bus import EventBus
from hub.crm_store.accounts import AccountRepository
from hub.crm_store.audit import AuditRepository
from hub.crm_store.calls import CallRepository
from hub.crm_store.config_versions import ConfigVersionRepository
from hub.crm_store.customers import CustomerRepository
from hub.crm_store.database import insert_many
from hub.crm_store.grants import GrantCache
from hub.crm_store.intake import IntakeRepository, PlainWrite
from hub.crm_store.interactions import InteractionRepository
from hub.crm_store.mail import MailRepository
from hub.crm_store.outbox import OUTBOX, OutboxDispatcher, Ownership, rows
from hub.crm_store.timeline import TimelineRepository
from hub.domain.events import Event, TimelineEventAdded, TimelineEventUpdated
from hub.errors import StoreConflict, StoreError


class Store:
    """The customer store: hands out units of work on one engine, and dispatches its outbox."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: EventBus,
        ownership: Ownership | None = None,
        *,
        reader: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.reader = reader  # read-only connections beside the writer (SQLite), if any
        self.bus = bus
        self.outbox = OutboxDispatcher(engine, bus, ownership)
        self.grants = GrantCache()  # authenticated tokens, for a few seconds
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._readings = (
            self._sessions
            if reader is None
            else async_sessionmaker(reader, expire_on_commit=False, autoflush=False)
        )
        self._statements = (
            async_sessionmaker(
                engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
                autoflush=False,
            )
            if engine.dialect.name == "postgresql"
            else None
        )

    @property
    def dialect(self) -> str:
        """The database's dialect name: sqlite or postgresql."""
        return self.engine.dialect.name

    def unit_of_work(self) -> UnitOfWork:
        """Start a unit of work (use it with ``async with``)."""
        return UnitOfWork(self._sessions(), self.outbox)

    def autocommit(self) -> UnitOfWork | None:
        """A unit of work whose every statement commits on its own, with no BEGIN or COMMIT
        round trip (PostgreSQL), for writes that are one statement; None on SQLite, whose
        statements cost no round trip."""
        if self._statements is None:
            return None
        return UnitOfWork(self._statements(), self.outbox)

    def reading(self) -> UnitOfWork:
        """Start a unit of work that only reads (hot reads: records, pushes, routing's
        arrivals): on SQLite it runs on a read-only connection, beside the writer, and sees
        everything committed before it began."""
        return UnitOfWork(self._readings(), self.outbox)

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (DBAPIError, OSError) as err:
            raise StoreError(f"the database does not answer: {err}") from err

    async def close(self) -> None:
        """Close every pooled connection."""
        reader = self.reader
        if reader is not None and reader.sync_engine.pool is not self.engine.sync_engine.pool:
            await reader.dispose()  # a pool of its own (SQLite's read-only connections)
        await self.engine.dispose()


class UnitOfWork:
    """One transaction over the repositories; recorded events go into the outbox with it."""

    def __init__(self, session: AsyncSession, outbox: OutboxDispatcher) -> None:
        self.session = session
        self._outbox = outbox
        self._events: list[Event] = []
        self.customers = CustomerRepository(session)
        self.interactions = InteractionRepository(session)
        self.timeline = TimelineRepository(session)
        self.intake = IntakeRepository(session)
        self.accounts = AccountRepository(session)
        self.audit = AuditRepository(session)
        self.calls = CallRepository(session)
        self.mail = MailRepository(session)
        self.config = ConfigVersionRepository(session)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.session.rollback()  # a no-op after commit
        finally:
            await self.session.close()
        if isinstance(exc, IntegrityError):
            raise StoreConflict(f"a uniqueness rule refused the write: {exc.orig}") from exc
        if isinstance(exc, DBAPIError):
            raise StoreError(f"the database failed: {exc.orig}") from exc

    def record(self, event: Event) -> None:
        """Remember an event to store with this unit of work (delivered after commit)."""
        self._events.append(event)

    async def commit(self) -> None:
        """Write the recorded events into the outbox, commit, and wake the dispatcher.

        Subscribers hear of the events only after commit (DESIGN.md: push after commit), and
        an event exists exactly when its data does: a crash cannot keep one without the other.
        """
        events = self._recorded()
        created = time.time()
        try:
            ids: list[int] = []
            if events:
                ids = await insert_many(self.session, OUTBOX, rows(events, created))
            await self.session.commit()
        except IntegrityError as err:
            raise StoreConflict(f"a uniqueness rule refused the write: {err.orig}") from err
        self._committed(ids, events, created)

    async def commit_plain(self, batch: PlainWrite) -> None:
        """Write a batch of plain inbound messages and the recorded events in one statement
        (``IntakeRepository.write_plain``; a unit of work from ``Store.autocommit``), then
        wake the dispatcher, as ``commit`` does."""
        events = self._recorded()
        created = time.time()
        try:
            ids = await self.intake.write_plain(batch, rows(events, created))
        except IntegrityError as err:
            raise StoreConflict(f"a uniqueness rule refused the write: {err.orig}") from err
        self._committed(ids, events, created)

    def _committed(self, ids: list[int], events: list[Event], created: float) -> None:
        if events:
            self._outbox.committed(
                [(outbox_id, event, created) for outbox_id, event in zip(ids, events, strict=True)]
            )

    def _recorded(self) -> list[Event]:
        """What this unit of work recorded, with its timeline appends and changes."""
        events, self._events = self._events, []
        timeline = self.timeline
        events += [TimelineEventAdded(*added) for added in timeline.appended]
        added = {event_id for _, _, event_id, _ in timeline.appended}
        # An event added and changed in one transaction is announced once, as added.
        events += [
            TimelineEventUpdated(*changed)
            for changed in dict.fromkeys(timeline.updated)
            if changed[2] not in added
        ]
        timeline.appended.clear()
        timeline.updated.clear()
        return events

    async def flush(self) -> None:
        """Send pending writes, so generated ids and constraint violations show now."""
        await self.session.flush()
