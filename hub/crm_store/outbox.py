"""The transactional outbox: events stored with their rows, dispatched after commit.

A unit of work writes the domain events it recorded into the ``outbox`` table in its own
transaction (``rows``), so an event exists exactly when the data it describes does. The
dispatcher reads new rows after commit, hands them to the bus's lanes, and deletes each row
once every subscriber had it. A process that dies with events unhandled leaves their rows
behind, and whoever dispatches next delivers them: at least once, in order per partition.

Who dispatches which rows is an ``Ownership``:

- ``LocalOwnership``: this process, every partition (the embedded hub on SQLite);
- ``PostgresLeases``: the partitions this process holds a PostgreSQL advisory lock on, a fair
  share of the live processes' (each holds a shared "member" lock, so they can be counted),
  woken by LISTEN/NOTIFY (a trigger on the table notifies at commit). A process that dies
  drops its connection and with it its locks; the others take its partitions within a second
  and deliver what it left.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, cast

import asyncpg
import structlog
from sqlalchemy import Table, Text, delete, func, select
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.bus import PARTITIONS, Envelope, EventBus, partition_of
from hub.bus.codec import decode, encode
from hub.crm_store.tables import OutboxRow
from hub.domain.events import Event

log = structlog.get_logger(__name__)

OUTBOX = cast(Table, OutboxRow.__table__)
NOTIFY_CHANNEL = "hub_outbox"
LOCK_CLASS = 0x6875  # the first key of the hub's advisory locks ("hu")
MEMBER_LOCK = 1_000  # its second key for "this process dispatches"; partitions are 0-15
DELETE_EVERY = 0.2  # seconds: delivered rows are deleted together, a write of its own each time


def rows(events: Sequence[Event], now: float) -> list[dict[str, Any]]:
    """The outbox rows for events recorded in a unit of work."""
    written = []
    for event in events:
        type_name, data = encode(event)
        written.append(
            {"partition": partition_of(event), "type": type_name, "data": data, "created_at": now}
        )
    return written


class Ownership(abc.ABC):
    """Which partitions of the outbox this process dispatches."""

    several_writers = True  # other processes commit rows too (ids may commit out of order)

    async def start(self, wake: Callable[[int | None], None]) -> None:  # noqa: B027
        """Begin; call wake when rows may have arrived from elsewhere (with the database
        backend's process id that wrote them, where known)."""

    @abc.abstractmethod
    def owned(self) -> frozenset[int] | None:
        """The partitions owned now (None: all of them)."""

    async def rebalance(self, release: Callable[[int], Awaitable[None]]) -> bool:
        """Take or give back partitions; True if any were taken (their rows need reading)."""
        return False

    async def stop(self) -> None:  # noqa: B027  (optional hook)
        """Give every partition back."""


class LocalOwnership(Ownership):
    """One process writes and dispatches everything."""

    several_writers = False

    def owned(self) -> frozenset[int] | None:
        return None


class PostgresLeases(Ownership):
    """Partitions leased with advisory locks on a connection of their own; NOTIFY wakes."""

    def __init__(self, database_url: str, *, every: float = 1.0) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._every = every
        self._connection: asyncpg.Connection | None = None
        self._owned: set[int] = set()
        self._wake: Callable[[int | None], None] = lambda _pid: None
        self._next_check = 0.0

    async def start(self, wake: Callable[[int | None], None]) -> None:
        self._wake = wake
        await self._connect()

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        await connection.execute("SELECT pg_advisory_lock_shared($1, $2)", LOCK_CLASS, MEMBER_LOCK)
        await connection.add_listener(NOTIFY_CHANNEL, self._notified)
        connection.add_termination_listener(self._lost)
        self._connection = connection

    def _notified(self, _connection: object, pid: int, *_: object) -> None:
        self._wake(pid)

    def _lost(self, _connection: object) -> None:
        if self._owned:
            log.warning("outbox: lost the database connection holding partitions")
        self._owned.clear()
        self._connection = None

    def owned(self) -> frozenset[int] | None:
        return frozenset(self._owned)

    async def rebalance(self, release: Callable[[int], Awaitable[None]]) -> bool:
        if time.monotonic() < self._next_check:
            return False
        self._next_check = time.monotonic() + self._every
        connection = self._connection
        if connection is None or connection.is_closed():
            self._owned.clear()
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError) as err:
                log.warning("outbox: cannot reach the database to lease partitions", error=str(err))
                return False
            connection = self._connection
            assert connection is not None
        members = await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = $1 AND objid = $2"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            LOCK_CLASS,
            MEMBER_LOCK,
        )
        share = math.ceil(PARTITIONS / max(int(members or 1), 1))
        while len(self._owned) > share:
            partition = max(self._owned)
            self._owned.discard(partition)  # read no more of it, then hand it over
            await release(partition)
            await connection.fetchval("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, partition)
        taken = False
        candidates = [p for p in range(PARTITIONS) if p not in self._owned]
        random.shuffle(candidates)  # processes starting together do not all try the same ones
        for partition in candidates:
            if len(self._owned) >= share:
                break
            if await connection.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, partition
            ):
                self._owned.add(partition)
                taken = True
        return taken

    async def stop(self) -> None:
        connection, self._connection = self._connection, None
        self._owned.clear()
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await connection.close(timeout=5)


class OutboxDispatcher:
    """Reads committed events from the outbox into the bus; deletes them once delivered."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: EventBus,
        ownership: Ownership | None = None,
        *,
        max_in_flight: int = 2_000,
        poll: float = 1.0,
        sweep: float = 1.0,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._ownership = ownership or LocalOwnership()
        self._max_in_flight = max_in_flight
        self._poll = poll
        self._sweep_every = sweep
        self._in_flight: dict[int, tuple[int, float]] = {}  # outbox id -> (partition, created)
        self._done: list[int] = []  # delivered, not yet deleted
        self._deleting: set[int] = set()
        # Deleted while the current read ran: its snapshot may still hold them.
        self._gone: set[int] = set()
        self._newest = 0  # the highest id read
        self._last_sweep = 0.0
        self._more = False  # the last read stopped at its limit
        self._wake = asyncio.Event()
        self._flush_wanted = asyncio.Event()
        self._reads = 0
        self._reading = False
        self._last_read_found = 0
        self._read_done = asyncio.Event()
        self._progress = asyncio.Event()  # a delivery finished
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.delivered = 0
        # The database backends of this process's own connections: what they commit is handed
        # over by ``committed`` already, so their notifications call for no read. Noted at
        # checkout, not only at connect: the pool may hold connections opened before this
        # dispatcher was (the migrations' own), whose every commit would otherwise call for a
        # read of the whole table's tail.
        self._own_backends: set[int] = set()
        if engine.dialect.name == "postgresql":
            sa_event.listen(engine.sync_engine, "checkout", self._checked_out)
            sa_event.listen(engine.sync_engine, "close", self._closed)
            sa_event.listen(engine.sync_engine, "close_detached", self._closed_detached)

    def _checked_out(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        self._own_backends.add(_backend_pid(dbapi_connection))

    def _closed(self, dbapi_connection: Any, _record: Any) -> None:
        self._own_backends.discard(_backend_pid(dbapi_connection))

    def _closed_detached(self, dbapi_connection: Any) -> None:
        self._own_backends.discard(_backend_pid(dbapi_connection))

    def written(self, backend: int | None = None) -> None:
        """Rows may have been committed where this process did not see them: read soon.

        A notification from one of this process's own connections is for rows ``committed``
        handed over already (or, if it could not, it woke the read itself)."""
        if backend is None or backend not in self._own_backends:
            self._wake.set()

    def committed(self, entries: Sequence[tuple[int, Event, float]]) -> None:
        """A unit of work of this process committed these (outbox id, event, created): hand
        the ones of partitions owned here straight to the bus, without reading them back.

        What is not handed over (another process's partition, too much in hand, not running)
        stays in the table for whoever reads it.
        """
        if not self._running:
            return
        owned = self._ownership.owned()
        envelopes = []
        for outbox_id, event, created in entries:
            partition = partition_of(event)
            if owned is not None and partition not in owned:
                continue  # its owner is woken by the database's notification
            if len(self._in_flight) >= self._max_in_flight:
                self._more = True  # read it when there is room
                continue
            if self._known(outbox_id):
                continue  # a read got there first
            self._in_flight[outbox_id] = (partition, created)
            envelopes.append(
                Envelope(replace(event, outbox_id=outbox_id), partition, created, self._delivered)
            )
        self._bus.enqueue(envelopes)
        if self._more:
            self._wake.set()

    async def start(self) -> None:
        """Lease partitions, then deliver what an earlier run left and whatever comes."""
        self._running = True
        await self._ownership.start(self.written)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="outbox-read"),
            asyncio.create_task(self._delete_loop(), name="outbox-delete"),
        ]
        self._wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop reading, let the lanes finish (for up to grace seconds), delete what was
        delivered, give the partitions back."""
        self._running = False
        self._wake.set()
        self._flush_wanted.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._bus.stop(grace)
        await self._flush()
        await self._ownership.stop()

    # -- reading -------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            self._wake.clear()
            if not self._running:
                break
            self._reading = True
            try:
                if await self._ownership.rebalance(self._release):
                    self._last_sweep = 0.0  # rows of partitions just taken may be older
                await self._read()
            except Exception:
                log.exception("outbox: reading failed; retrying")
                await asyncio.sleep(1)
            finally:
                self._reading = False
                self._reads += 1
                self._read_done.set()

    async def _read(self) -> None:
        owned = self._ownership.owned()
        if owned is not None and not owned:
            self._last_read_found = 0
            return
        room = self._max_in_flight - len(self._in_flight)
        if room <= 0:
            self._more = True
            return
        now = time.monotonic()
        # Now and then read from the start: where several processes write, a transaction can
        # commit a lower id after a higher one was read.
        sweep = now - self._last_sweep >= self._sweep_every and (
            self._ownership.several_writers or not self._last_sweep
        )
        # The data as text, parsed below only for rows not in hand already: a sweep reads back
        # every row still awaiting its delete, and the driver would parse them all.
        statement = select(
            OUTBOX.c.id,
            OUTBOX.c.partition,
            OUTBOX.c.type,
            OUTBOX.c.data.cast(Text),
            OUTBOX.c.created_at,
        ).order_by(OUTBOX.c.id)
        limit = room
        if sweep:
            self._last_sweep = now
            limit += len(self._in_flight) + len(self._done) + len(self._deleting)
        else:
            statement = statement.where(OUTBOX.c.id > self._newest)
        if owned is not None:
            statement = statement.where(OUTBOX.c.partition.in_(sorted(owned)))
        self._gone = set()
        async with self._engine.connect() as connection:
            found = (await connection.execute(statement.limit(limit))).all()
        self._more = len(found) >= limit
        envelopes = []
        for outbox_id, partition, type_name, data, created in found:
            self._newest = max(self._newest, outbox_id)
            if self._known(outbox_id):
                continue
            try:
                event = decode(type_name, json.loads(data), outbox_id=outbox_id)
            except (KeyError, TypeError, ValueError):
                log.error("outbox: unreadable event dropped", outbox_id=outbox_id, type=type_name)
                self._finished(outbox_id)
                continue
            self._in_flight[outbox_id] = (partition, created)
            envelopes.append(Envelope(event, partition, created, self._delivered))
        self._last_read_found = len(envelopes)
        self._bus.enqueue(envelopes)

    def _known(self, outbox_id: int) -> bool:
        """In hand already: being delivered, delivered, or deleted while a read ran."""
        return (
            outbox_id in self._in_flight or outbox_id in self._deleting or outbox_id in self._gone
        )

    def _delivered(self, envelope: Envelope) -> None:
        self._in_flight.pop(envelope.event.outbox_id, None)
        self._progress.set()
        self.delivered += 1
        self._finished(envelope.event.outbox_id)
        if self._more and len(self._in_flight) <= self._max_in_flight // 2:
            self._more = False
            self._wake.set()

    def _finished(self, outbox_id: int) -> None:
        self._done.append(outbox_id)
        self._deleting.add(outbox_id)
        self._flush_wanted.set()

    # -- deleting ------------------------------------------------------------------------------

    async def _delete_loop(self) -> None:
        while self._running:
            await self._flush_wanted.wait()
            await asyncio.sleep(DELETE_EVERY)  # gather deliveries into one statement
            self._flush_wanted.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("outbox: deleting delivered events failed; retrying")
                await asyncio.sleep(1)
                self._flush_wanted.set()

    async def _flush(self) -> None:
        """Delete what was delivered until now (what is delivered meanwhile waits its turn)."""
        done, self._done = self._done, []
        if not done:
            return
        try:
            async with self._engine.begin() as connection:
                for start in range(0, len(done), 500):
                    batch = done[start : start + 500]
                    await connection.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(batch)))
        except BaseException:
            self._done[:0] = done
            raise
        self._deleting.difference_update(done)
        self._gone.update(done)

    async def _release(self, partition: int) -> None:
        """Finish what was read of a partition before another process takes it."""
        while any(p == partition for p, _ in self._in_flight.values()):
            self._progress.clear()
            await self._progress.wait()
        await self._flush()

    # -- what operators and tests ask ----------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Events handed to the bus and not yet delivered."""
        return len(self._in_flight)

    def lag_seconds(self) -> float:
        """How long the oldest event in hand has waited since it was committed."""
        oldest = min((created for _, created in self._in_flight.values()), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    async def pending(self) -> int:
        """Events stored and not yet delivered, by any process."""
        async with self._engine.connect() as connection:
            total = await connection.scalar(select(func.count()).select_from(OUTBOX))
        return int(total or 0)

    async def settle(self, within: float = 15.0) -> None:
        """Wait until everything committed so far, and what it led to, has been delivered."""
        async with asyncio.timeout(within):
            while True:
                await self._read_once()
                await self._bus.idle()
                if not self._in_flight and not self._last_read_found and not self._more:
                    await self._read_once()  # what the last deliveries committed
                    if not self._last_read_found and not self._bus.in_flight():
                        break
            await self._flush()

    async def _read_once(self) -> None:
        """Wait for a whole read (with a sweep) that started after this call."""
        reads = self._reads + (1 if self._reading else 0)
        self._last_sweep = 0.0
        self._wake.set()
        while self._reads <= reads:
            self._read_done.clear()
            await self._read_done.wait()


def _backend_pid(dbapi_connection: Any) -> int:
    """The PostgreSQL backend process id of a pooled (asyncpg, through SQLAlchemy) connection."""
    return int(dbapi_connection.driver_connection.get_server_pid())
