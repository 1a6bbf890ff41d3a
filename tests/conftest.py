"""Shared fixtures: real SQLite and PostgreSQL stores, a running app, users with tokens."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event, text

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.bus import EventBus
from hub.config import Settings
from hub.crm_store.database import create_engine, migrate
from hub.crm_store.scratch import create_scratch_database, drop_scratch_database
from hub.crm_store.tables import Base
from hub.crm_store.unit_of_work import Store
from hub.domain.users import Role
from hub.http import HUB
from hub.observability import configure_logging
from hub.services.accounts import hash_password, issue_token

POSTGRES_URL = os.environ.get(
    "HUB_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    configure_logging("INFO", "console")  # as the running hub does: through stdlib logging


async def eventually(
    check: Callable[[], Awaitable[bool]], *, seconds: float = 15, what: str = "it"
) -> float:
    """Wait until check() is true; the seconds it took (AssertionError after ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds} s")


async def settled(client: TestClient[Any, Any]) -> None:
    """Wait until the hub behind client has delivered what it committed (routing, pushes)."""
    await client.server.app[HUB].settle()


@contextlib.contextmanager
def _listening(store: Store, name: str, listener: Callable[..., None]) -> Iterator[None]:
    """Listen to an engine event on the store's writer and its readers inside the block."""
    engines = [store.engine.sync_engine]  # a reader sharing its pool shares its events
    reader = store.reader
    if reader is not None and reader.sync_engine.pool is not engines[0].pool:
        engines.append(reader.sync_engine)
    for engine in engines:
        event.listen(engine, name, listener)
    try:
        yield
    finally:
        for engine in engines:
            event.remove(engine, name, listener)


@contextlib.contextmanager
def statements_run(store: Store) -> Iterator[list[str]]:
    """The SQL statements the store runs inside the block, on its writer and its readers."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    with _listening(store, "before_cursor_execute", seen):
        yield statements


@contextlib.contextmanager
def connections_opened(store: Store) -> Iterator[list[object]]:
    """The database connections the store's pools open inside the block (one entry each)."""
    opened: list[object] = []

    def seen(dbapi_connection: object, _record: object) -> None:
        opened.append(dbapi_connection)

    with _listening(store, "connect", seen):
        yield opened


class FrozenClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _make_database(like: str) -> str:
    async def go() -> str:
        url = await create_scratch_database(like, prefix="hub_test")
        engine = create_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        return url

    return asyncio.run(go())


@pytest.fixture(scope="session")
def migrated_databases() -> Iterator[dict[str, str]]:
    """One migrated scratch database per backend for the whole session."""
    urls = {
        "sqlite": _make_database("sqlite+aiosqlite:///unused.db"),
        "postgresql": _make_database(POSTGRES_URL),
    }
    yield urls
    for url in urls.values():
        asyncio.run(drop_scratch_database(url))


async def empty_tables(url: str) -> None:
    """Remove every row, so each test starts from an empty (migrated) store."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            tables = list(reversed(Base.metadata.sorted_tables))
            if conn.dialect.name == "postgresql":
                names = ", ".join(t.name for t in tables)
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    await conn.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, migrated_databases: dict[str, str]) -> str:
    """An empty, migrated database on each backend in turn."""
    url = migrated_databases[request.param]
    await empty_tables(url)
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A store whose outbox is dispatched (``await store.outbox.settle()`` to wait for it)."""
    store = Store(create_engine(database_url), EventBus())
    await store.outbox.start()
    yield store
    await store.outbox.stop()
    await store.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, default_region="US", log_level="WARNING")


@pytest.fixture
async def hub(settings: Settings, clock: FrozenClock) -> AsyncIterator[Hub]:
    hub = await build_hub(settings, run_migrations=False, clock=clock)
    yield hub
    await hub.stop()


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_app(hub))) as client:
        yield client


@dataclass
class Team:
    """Users of every role in one team, with a token each."""

    tokens: dict[str, str]
    user_ids: dict[str, int]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


PASSWORD = "correct horse battery"
_password_hash: list[str] = []


async def make_team(hub: Hub, team: str, suffix: str = "") -> Team:
    """A user of every role in the team (all with PASSWORD), each with an API token."""
    if not _password_hash:  # argon2 is slow by design: hash once per session
        _password_hash.append(await hash_password(PASSWORD))
    tokens: dict[str, str] = {}
    user_ids: dict[str, int] = {}
    for role in Role:
        username = f"{role.value}{suffix}"
        async with hub.store.unit_of_work() as uow:
            team_id = (await uow.accounts.ensure_team(team, hub.clock())).id
            user = await uow.accounts.add_user(
                username=username,
                display_name=username,
                role=role,
                password_hash=_password_hash[0],
                team_ids=frozenset({team_id}),
                now=hub.clock(),
            )
            await uow.commit()
        tokens[role.value] = await issue_token(
            hub.store, username=username, name="test", now=hub.clock()
        )
        user_ids[role.value] = user.id
    return Team(tokens, user_ids)


@pytest.fixture
async def team(hub: Hub) -> Team:
    """An admin, supervisor, agent and marketer in team "support" (the default team)."""
    return await make_team(hub, "support")
