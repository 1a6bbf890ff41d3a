"""Throwaway databases beside a configured one, for benchmarks and tests."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from hub.crm_store.database import create_engine


@asynccontextmanager
async def scratch_database(like_url: str, *, prefix: str = "hub_scratch") -> AsyncIterator[str]:
    """Yield the URL of a new empty database of the same kind; drop it afterwards.

    SQLite: a file in a temporary directory. PostgreSQL: a new database on the same server
    (the URL's user needs CREATEDB).
    """
    url = make_url(like_url)
    if url.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'hub.db'}"
        return
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
