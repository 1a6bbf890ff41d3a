"""The store and its unit of work: one transaction, whose events leave only after commit."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hub.bus.base import EventBus
from hub.crm_store.accounts import AccountRepository
from hub.crm_store.audit import AuditRepository
from hub.crm_store.calls import CallRepository
from hub.crm_store.config_versions import ConfigVersionRepository
from hub.crm_store.customers import CustomerRepository
from hub.crm_store.interactions import InteractionRepository
from hub.crm_store.mail import MailRepository
from hub.crm_store.timeline import TimelineRepository
from hub.domain.events import Event, TimelineEventAdded, TimelineEventUpdated
from hub.errors import StoreConflict, StoreError


class Store:
    """The customer store: hands out units of work on one engine."""

    def __init__(self, engine: AsyncEngine, bus: EventBus) -> None:
        self.engine = engine
        self.bus = bus
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)

    @property
    def dialect(self) -> str:
        """The database's dialect name: sqlite or postgresql."""
        return self.engine.dialect.name

    def unit_of_work(self) -> UnitOfWork:
        """Start a unit of work (use it with ``async with``)."""
        return UnitOfWork(self._sessions(), self.bus)

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (DBAPIError, OSError) as err:
            raise StoreError(f"the database does not answer: {err}") from err

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


class UnitOfWork:
    """One transaction over the repositories; recorded events are published after commit."""

    def __init__(self, session: AsyncSession, bus: EventBus) -> None:
        self.session = session
        self._bus = bus
        self._events: list[Event] = []
        self.customers = CustomerRepository(session)
        self.interactions = InteractionRepository(session)
        self.timeline = TimelineRepository(session)
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
        """Remember an event to publish once this unit of work commits."""
        self._events.append(event)

    async def commit(self) -> None:
        """Commit, then publish what was recorded (never before: DESIGN.md, push after commit)."""
        try:
            await self.session.commit()
        except IntegrityError as err:
            raise StoreConflict(f"a uniqueness rule refused the write: {err.orig}") from err
        events, self._events = self._events, []
        timeline = self.timeline
        events += [TimelineEventAdded(*added) for added in timeline.appended]
        added = {event_id for _, _, event_id in timeline.appended}
        # An event added and changed in one transaction is announced once, as added.
        events += [
            TimelineEventUpdated(*changed)
            for changed in dict.fromkeys(timeline.updated)
            if changed[2] not in added
        ]
        timeline.appended.clear()
        timeline.updated.clear()
        await self._bus.publish(events)

    async def flush(self) -> None:
        """Send pending writes, so generated ids and constraint violations show now."""
        await self.session.flush()
