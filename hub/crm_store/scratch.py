"""Throwaway databases beside a configured one, for benchmarks and tests."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url

from hub.crm_store.database import create_engine


async def create_scratch_database(like_url: str, *, prefix: str = "hub_scratch") -> str:
    """Create a new empty database of the same kind as like_url; return its URL.

    SQLite: a file in a new temporary directory. PostgreSQL: a new database on the same
    server (the URL's user needs CREATEDB).
    """
    url = make_url(like_url)
    if url.get_backend_name() == "sqlite":
        directory = tempfile.mkdtemp(prefix=prefix)
        return f"sqlite+aiosqlite:///{Path(directory) / 'hub.db'}"
    name = f"{prefix}_{secrets.token_hex(6)}"
    await _on_server(url, f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(scratch_url: str) -> None:
    """Remove a database made by create_scratch_database."""
    url = make_url(scratch_url)
    if url.get_backend_name() == "sqlite":
        shutil.rmtree(Path(url.database or "").parent, ignore_errors=True)
        return
    await _on_server(url, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


async def _on_server(url: URL, statement: str) -> None:
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


@asynccontextmanager
async def scratch_database(like_url: str, *, prefix: str = "hub_scratch") -> AsyncIterator[str]:
    """A new empty database of the same kind as like_url, dropped afterwards."""
    url = await create_scratch_database(like_url, prefix=prefix)
    try:
        yield url
    finally:
        await drop_scratch_database(url)
