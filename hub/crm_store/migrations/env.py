"""Alembic environment: runs on a connection handed in by hub.crm_store.database.migrate."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from hub.crm_store.database import create_engine
from hub.crm_store.tables import Base

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(run_on)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_on(connection)
else:
    # `alembic -x url=... revision --autogenerate` from a developer's shell.
    url = context.get_x_argument(as_dictionary=True).get("url") or "sqlite+aiosqlite:///./hub.db"
    asyncio.run(run_from_url(url))
