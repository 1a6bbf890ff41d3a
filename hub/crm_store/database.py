"""Engines and migrations for SQLite (embedded default) and PostgreSQL (scale-out)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Boolean,
    Connection,
    String,
    Table,
    TypeDecorator,
    bindparam,
    cast,
    event,
    func,
    insert,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.sql.visitors import InternalTraversal

from hub.json_writer import json_loads

MIGRATIONS = Path(__file__).parent / "migrations"


def create_read_engine(engine: AsyncEngine) -> AsyncEngine | None:
    """The engine for units of work that only read (``Store.reading``), or None where the
    main engine serves them as well (an in-memory SQLite).

    SQLite: read-only connections beside the one writer (WAL lets readers and the writer go
    on side by side), so reads do not queue behind a unit of work that holds the writer.
    PostgreSQL: the same pool in autocommit, so a read costs no BEGIN and no ROLLBACK round
    trip (each statement sees what was committed when it ran, as in a READ COMMITTED
    transaction).
    """
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    if (url.database or ":memory:") == ":memory:":
        return None
    reader = create_engine(url.render_as_string(hide_password=False), pool_size=READERS)
    event.listen(reader.sync_engine, "connect", _read_only)
    return reader


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # a write here would be a bug: refuse it
    cursor.close()


def create_engine(database_url: str, **options: Any) -> AsyncEngine:
    """Create an engine, setting SQLite up for a hub (foreign keys, WAL, waits on locks)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite has one writer: connections racing for its lock wait by sleeping, which wrecks
        # tail latency. One pooled connection makes them queue in asyncio instead.
        options.setdefault("pool_size", 1)
        options.setdefault("max_overflow", 0)
        options.setdefault("pool_timeout", 60)
        options.setdefault("json_deserializer", json_loads)
        engine = create_async_engine(
            url, connect_args={**SQLITE_CONNECT, "async_creator_fn": _inline_connect}, **options
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    options.setdefault("json_deserializer", json_loads)
    engine = create_async_engine(url, **options)
    for name, listener in (
        ("connect", _note_checkin),
        ("checkin", _note_checkin),
        ("checkout", _ping_if_idle),
    ):
        event.listen(engine.sync_engine, name, listener)
    return engine


PING_IDLE_SECONDS = 2.0  # a pooled PostgreSQL connection idle longer is pinged before use


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for connections that sat idle only.

    A ping is a round trip before every unit of work: under load it cost the receive path a
    fifth of its latency. A connection in steady use has just proved itself; one that sat idle
    (across a database restart, say) is pinged, and a dead one is replaced before it is used
    (``DisconnectionError`` makes the pool take another).
    """
    if time.monotonic() - record.info.get("idle_since", 0.0) <= PING_IDLE_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as err:
        raise DisconnectionError("a pooled connection did not answer its ping") from err


READERS = 3  # read-only SQLite connections beside the writer
# Each connection is used from the event loop's thread, not the thread that opened it.
SQLITE_CONNECT: dict[str, Any] = {"timeout": 30, "check_same_thread": False}


class _InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection without its thread hop: each call runs on the event loop's
    thread, at once.

    aiosqlite sends every call (cursor, execute, fetch, close, commit) to a thread of its own
    and back, four hops a statement, each waiting its turn on a busy event loop: a unit of
    work held the one writer connection many times longer than SQLite worked for it. The
    writer's statements are short (indexed reads and writes, WAL with synchronous=NORMAL, so
    a commit does not wait for the disk), so running them in place costs less than handing
    them over. A read-only unit of work (``Store.reading``) takes one of the read-only
    connections, so a writer holding its connection never makes a reader wait.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def _inline_connect(database: str, **kwargs: Any) -> aiosqlite.Connection:
    def connector() -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        return connection

    connection = _InlineConnection(connector, iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
    return connection


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config() -> Config:
    """An Alembic configuration for the hub's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest migration revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database's schema up to revision (default: the newest)."""

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None before the first migration."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def insert_many(
    session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert rows with multi-row INSERTs; their new ids, in the order of ``rows``.

    PostgreSQL keeps the order with SQLAlchemy's ``sort_by_parameter_order``. SQLite has no
    way to promise the order of RETURNING, so SQLAlchemy would fall back to one statement
    (and one thread hop) per row; instead the rows go in as one statement and the ids are
    sorted: SQLite numbers the rows of one INSERT in the order it writes them, which is the
    order of VALUES, and the hub's SQLite has a single writer.
    """
    if not rows:
        return []
    assert session.bind is not None
    sqlite = session.bind.dialect.name == "sqlite"
    result = await session.execute(_inserting(table, sqlite), list(rows))
    if sqlite:
        return sorted(row[0] for row in result)
    return [row[0] for row in result]


_INSERTS: dict[tuple[str, bool], ReturningInsert[int]] = {}


def _inserting(table: Table, sqlite: bool) -> ReturningInsert[int]:
    """The INSERT ... RETURNING id of a table, built once (10 us a build, five a contact)."""
    statement = _INSERTS.get((table.name, sqlite))
    if statement is None:
        id_column = table.c.id
        statement = _INSERTS[(table.name, sqlite)] = (
            insert(table).returning(id_column)
            if sqlite
            else insert(table).returning(id_column, sort_by_parameter_order=True)
        )
    return statement


# -- a list of ids as one parameter -------------------------------------------------------------


class _IdList(TypeDecorator[list[int]]):
    """A list of ids bound as one JSON array (text)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else json.dumps([int(i) for i in value])


class InIds(ColumnElement[bool]):
    """``column IN`` a list of ids bound as one parameter (a JSON array), the statement's text
    the same however many ids there are.

    SQLAlchemy's expanding ``IN`` writes one placeholder per id into the text at every
    execution: a seventh of a unified record's processor time on PostgreSQL, and a statement
    prepared anew for every length of list. PostgreSQL reads the array as ``= ANY(...)`` (an
    index scan per id), SQLite as ``IN (SELECT value FROM json_each(...))``.
    """

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition as it is, not "... = 1" on SQLite
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy declares it a list)
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.ids = bindparam(name, type_=_IdList())


def json_ids(name: str = "ids") -> TableValuedAlias:
    """PostgreSQL: the ids given as the parameter ``name`` (a list) at execution, as a table
    of one text column, ``value``."""
    return func.jsonb_array_elements_text(
        cast(bindparam(name, type_=_IdList()), JSONB)
    ).table_valued("value")


def in_ids(column: ColumnElement[Any], name: str = "ids") -> InIds:
    """``column`` among the ids given as the parameter ``name`` (a list) at execution."""
    return InIds(column, name)


@compiles(InIds, "postgresql")
def _in_ids_postgresql(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return (
        f"{column} = ANY(ARRAY(SELECT CAST(jsonb_array_elements_text(CAST({ids} AS jsonb))"
        " AS BIGINT)))"
    )


@compiles(InIds)
def _in_ids(element: InIds, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    # Compiled text of a column and a placeholder: no values are written into it.
    return f"{column} IN (SELECT value FROM json_each({ids}))"  # noqa: S608
