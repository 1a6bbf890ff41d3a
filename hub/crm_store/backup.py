"""Consistent, portable backups of the store (gzip'd JSON lines), and restoring them.

The format does not depend on the database: a SQLite backup restores into PostgreSQL and back,
which is also the way to move an embedded hub to scale-out.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.crm_store.database import create_engine, current_revision
from hub.crm_store.tables import Base, UTCDateTime
from hub.errors import Conflict, ValidationError

FORMAT = "hub-backup"
VERSION = 1
BATCH = 1000


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


async def backup(engine: AsyncEngine, path: Path, *, now: datetime) -> dict[str, int]:
    """Write every row as one consistent snapshot; return the row count per table."""
    if engine.dialect.name == "sqlite":
        # VACUUM INTO copies the database in one read transaction: a consistent snapshot
        # while the hub keeps writing. Then dump the copy.
        with tempfile.TemporaryDirectory() as tmp:
            snapshot = Path(tmp) / "snapshot.db"
            async with engine.connect() as conn:
                await conn.execute(text("VACUUM INTO :path"), {"path": str(snapshot)})
            copy = create_engine(f"sqlite+aiosqlite:///{snapshot}")
            try:
                async with copy.connect() as conn:
                    return await _dump(conn, path, now)
            finally:
                await copy.dispose()
    async with engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        return await _dump(conn, path, now)


async def _dump(conn: AsyncConnection, path: Path, now: datetime) -> dict[str, int]:
    revision = await conn.run_sync(_revision_of)
    counts: dict[str, int] = {}
    partial = path.with_name(path.name + ".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as out:
        header = {"format": FORMAT, "version": VERSION, "revision": revision, "created_at": now}
        out.write(json.dumps(header, default=_encode) + "\n")
        for table in _tables():
            counts[table.name] = 0
            result = await conn.stream(select(table).order_by(*table.primary_key.columns))
            async for row in result:
                out.write(json.dumps({"t": table.name, "r": row._asdict()}, default=_encode))
                out.write("\n")
                counts[table.name] += 1
    partial.replace(path)  # a backup file is either complete or absent
    return counts


def _revision_of(sync_conn: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(sync_conn).get_current_revision()


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot back up a {type(value).__name__}")


def _read(path: Path) -> tuple[dict[str, Any], Iterator[tuple[str, dict[str, Any]]]]:
    source = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115  (closed by the iterator)
    try:
        header = json.loads(source.readline())
    except (OSError, json.JSONDecodeError, EOFError) as err:
        source.close()
        raise ValidationError(f"{path} is not a hub backup: {err}") from err
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        source.close()
        raise ValidationError(f"{path} is not a version {VERSION} hub backup")

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        with source:
            for line in source:
                item = json.loads(line)
                yield item["t"], item["r"]

    return header, rows()


async def restore(engine: AsyncEngine, path: Path) -> dict[str, int]:
    """Load a backup into an empty, migrated store; return the row count per table."""
    header, rows = _read(path)
    revision = await current_revision(engine)
    if header["revision"] != revision:
        raise Conflict(
            f"the backup is at schema {header['revision']} but the database is at {revision};"
            " run `hub migrate` with the matching hub version first"
        )
    tables = {t.name: t for t in _tables()}
    counts = dict.fromkeys(tables, 0)
    async with engine.begin() as conn:
        for table in tables.values():
            if await conn.scalar(select(func.count()).select_from(table)):
                raise Conflict(f"the database is not empty (table {table.name} has rows)")
        batch: list[dict[str, Any]] = []
        current: str | None = None
        deferred: list[tuple[Table, dict[str, Any]]] = []
        for name, row in rows:
            if name != current:
                await _flush(conn, tables, current, batch)
                batch, current = [], name
            known = tables.get(name)
            if known is None:
                raise ValidationError(f"the backup has a table this hub does not know: {name}")
            row = _decode(known, row)
            deferred += _self_references(known, row)
            batch.append(row)
            counts[name] += 1
            if len(batch) >= BATCH:
                await _flush(conn, tables, current, batch)
                batch = []
        await _flush(conn, tables, current, batch)
        for table, values in deferred:
            key = values.pop("id")
            await conn.execute(update(table).where(table.c.id == key).values(**values))
        if conn.dialect.name == "postgresql":
            for table in tables.values():
                if "id" in table.c:
                    await conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                            f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}"
                        )
                    )
    return counts


async def _flush(
    conn: AsyncConnection, tables: dict[str, Table], name: str | None, batch: list[dict[str, Any]]
) -> None:
    if name is not None and batch:
        await conn.execute(insert(tables[name]), batch)


def _decode(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    for column in table.columns:
        value = row.get(column.name)
        if isinstance(column.type, UTCDateTime) and isinstance(value, str):
            row[column.name] = datetime.fromisoformat(value)
    return row


def _self_references(table: Table, row: dict[str, Any]) -> list[tuple[Table, dict[str, Any]]]:
    """Blank columns that point into their own table; they are set once every row is in."""
    later: dict[str, Any] = {}
    for fk in table.foreign_keys:
        if fk.column.table is table and row.get(fk.parent.name) is not None:
            later[fk.parent.name] = row[fk.parent.name]
            row[fk.parent.name] = None
    return [(table, {"id": row["id"], **later})] if later else []
