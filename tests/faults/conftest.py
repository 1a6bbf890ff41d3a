"""Fault tests' fixtures: a migrated scratch database with agents, a policy file, hub processes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.bus import EventBus
from hub.crm_store.database import create_engine, migrate
from hub.crm_store.scratch import create_scratch_database, drop_scratch_database
from hub.crm_store.unit_of_work import Store
from hub.domain.users import Role
from hub.services.accounts import issue_token
from tests.conftest import POSTGRES_URL
from tests.faults.harness import HubProcess

POLICY = """
ring_seconds = 20
wrap_up_seconds = 0
default_queue = "support"
capacity = { sms = 2 }

[[queues]]
name = "support"
team = "support"
"""


@dataclass
class Organisation:
    database_url: str
    tokens: list[str]  # one per agent
    policy: Path


async def organisation(like: str, agents: int, folder: Path) -> Organisation:
    """A new migrated database with ``agents`` agents in team support, and a policy file."""
    url = await create_scratch_database(like, prefix="hub_fault")
    engine = create_engine(url)
    await migrate(engine)
    store = Store(engine, EventBus())
    now = datetime.now(UTC)
    try:
        async with store.unit_of_work() as uow:
            team = await uow.accounts.ensure_team("support", now)
            await uow.accounts.ensure_queue("support", team.id, now)
            for n in range(agents):
                await uow.accounts.add_user(
                    username=f"agent-{n}",
                    display_name=f"Agent {n}",
                    role=Role.AGENT,
                    password_hash=None,
                    team_ids=frozenset({team.id}),
                    now=now,
                )
            await uow.commit()
        tokens = [
            await issue_token(store, username=f"agent-{n}", name="fault", now=now)
            for n in range(agents)
        ]
    finally:
        await store.close()
    policy = folder / "routing.toml"
    policy.write_text(POLICY)
    return Organisation(url, tokens, policy)


MakeOrganisation = Callable[[str, int], Awaitable[Organisation]]


@pytest.fixture
async def make_organisation(tmp_path: Path) -> AsyncIterator[MakeOrganisation]:
    made: list[str] = []

    async def make(like: str, agents: int) -> Organisation:
        found = await organisation(like, agents, tmp_path)
        made.append(found.database_url)
        return found

    yield make
    for url in made:
        await drop_scratch_database(url)


@pytest.fixture
async def processes() -> AsyncIterator[list[HubProcess]]:
    """Hub processes a test starts; whatever is left running is killed at the end."""
    started: list[HubProcess] = []
    yield started
    for process in started:
        await process.kill()


@pytest.fixture
def redis_prefix() -> str:
    return f"hub-fault:{secrets.token_hex(4)}:"


__all__ = ["POSTGRES_URL"]
