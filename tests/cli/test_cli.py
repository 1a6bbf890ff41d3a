"""The `hub` command, run in-process against a SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hub.bus import EventBus
from hub.cli import main
from hub.crm_store.database import create_engine
from hub.crm_store.unit_of_work import Store
from hub.domain.users import Role
from hub.services.accounts import authenticate
from hub.services.customers import search_customers


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    monkeypatch.setenv("HUB_LOG_LEVEL", "WARNING")
    return url


def hub(*args: str, stdin: str | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert result.exit_code == code, (result.output, result.exception)
    return result


def in_store(url: str, work: object) -> object:
    async def go() -> object:
        store = Store(create_engine(url), EventBus())
        try:
            return await work(store)  # type: ignore[operator]
        finally:
            await store.close()

    return asyncio.run(go())


def test_users_and_tokens(database: str) -> None:
    assert "up to date" in hub("migrate").output
    created = hub(
        "users",
        "create",
        "ada",
        "--role",
        "supervisor",
        "--team",
        "support",
        "--team",
        "sales",
        stdin="a long password\n",
    )
    assert "created supervisor ada" in created.output
    hub("users", "create", "ada", "--role", "agent", stdin="another password\n", code=1)
    short = hub("users", "create", "bob", "--role", "agent", stdin="short\n", code=1)
    assert "at least 8 characters" in short.output
    hub("users", "create", "bob", "--role", "wizard", stdin="a long password\n", code=2)
    assert "ada\tsupervisor" in hub("users", "list").output
    token = hub("tokens", "create", "ada", "--name", "crm").output.strip()
    assert token.startswith("hub_")
    hub("tokens", "create", "nobody", code=1)

    from datetime import UTC, datetime

    async def check(store: Store) -> object:
        principal, _ = await authenticate(store, token, datetime.now(UTC))
        return principal

    principal = in_store(database, check)
    assert principal.username == "ada"  # type: ignore[attr-defined]
    assert principal.role is Role.SUPERVISOR  # type: ignore[attr-defined]
    assert len(principal.team_ids) == 2  # type: ignore[attr-defined]


def test_demo_is_idempotent_and_searchable(database: str) -> None:
    assert "created" in hub("demo").output
    assert "already present" in hub("demo").output

    async def find(store: Store) -> object:
        async with store.unit_of_work() as uow:
            admin = await uow.accounts.user_by_name("admin")
        assert admin is not None
        return await search_customers(
            store, admin.principal(), "(415) 555-0100", default_region="US", limit=5
        )

    hits = in_store(database, find)
    assert [h.customer.display_name for h in hits] == ["Grace Hopper"]  # type: ignore[attr-defined]


def test_backup_then_restore_into_a_new_database(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub("demo")
    backup = tmp_path / "hub.backup.gz"
    assert "backed up" in hub("backup", str(backup)).output
    other = f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
    restored = hub("--database-url", other, "restore", str(backup))
    assert "restored" in restored.output
    again = hub("--database-url", other, "restore", str(backup), code=1)
    assert "not empty" in again.output


def test_a_bad_setting_is_named(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_DEFAULT_REGION", "Atlantis")
    result = hub("migrate", code=1)
    assert "HUB_DEFAULT_REGION" in result.output


def test_bench_store_reports_figures(database: str) -> None:
    result = hub(
        "bench",
        "store",
        "--customers",
        "300",
        "--events",
        "120",
        "--requests",
        "40",
        "--concurrency",
        "4",
        "--json",
    )
    figures = json.loads(result.stdout)
    assert figures["database"] == "sqlite"
    assert figures["customers"] == 300
    assert figures["http_requests"] == 40
    assert figures["http_p99_ms"] >= figures["http_p50_ms"] > 0
    assert figures["service_reads_per_second"] > 0


def test_deactivating_a_user_and_revoking_a_token_stop_them_at_once(database: str) -> None:
    from datetime import UTC, datetime

    from hub.errors import AuthError

    hub("users", "create", "eve", "--role", "agent", stdin="a long password\n")
    first = hub("tokens", "create", "eve", "--name", "laptop").output.strip()
    second = hub("tokens", "create", "eve", "--name", "phone").output.strip()
    listing = hub("tokens", "list", "eve").output.splitlines()
    assert [line.split("\t")[2] for line in listing] == ["phone", "laptop"]
    assert all(line.endswith("live") for line in listing)
    laptop_id = listing[1].split("\t")[0]
    assert "revoked" in hub("tokens", "revoke", laptop_id).output
    hub("tokens", "revoke", laptop_id, code=1)  # already revoked
    assert hub("tokens", "list", "eve").output.splitlines()[1].endswith("revoked")

    async def try_token(store: Store, token: str) -> str:
        try:
            await authenticate(store, token, datetime.now(UTC))
        except AuthError as err:
            return err.message
        return "ok"

    assert "revoked" in in_store(database, lambda s: try_token(s, first))  # type: ignore[operator]
    assert in_store(database, lambda s: try_token(s, second)) == "ok"
    assert "deactivated" in hub("users", "deactivate", "eve").output
    assert "(inactive)" in hub("users", "list").output
    assert "deactivated" in in_store(database, lambda s: try_token(s, second))  # type: ignore[operator]
    hub("users", "activate", "eve")
    assert in_store(database, lambda s: try_token(s, second)) == "ok"
    hub("users", "deactivate", "nobody", code=1)


def test_simulate_prints_the_simulation_beside_the_formula(database: str) -> None:
    result = hub(
        "simulate",
        "--arrivals-per-hour",
        "100",
        "--aht",
        "180",
        "--agents",
        "6",
        "--patience",
        "60",
        "--contacts",
        "5000",
        "--seed",
        "3",
        "--json",
    )
    figures = json.loads(result.stdout)
    for key in ("p_wait", "service_level", "asa_seconds", "abandon_rate", "occupancy", "contacts"):
        assert key in figures
    assert figures["model"] == "erlang_a"
    assert abs(figures["abandon_rate"] - figures["formula"]["abandon_rate"]) < 0.05
    unstable = json.loads(
        hub(
            "simulate",
            "--arrivals-per-hour",
            "100",
            "--aht",
            "180",
            "--agents",
            "4",
            "--contacts",
            "500",
            "--json",
        ).stdout
    )
    assert unstable["formula"]["asa_seconds"] is None
    hub("simulate", "--arrivals-per-hour", "-1", "--aht", "180", "--agents", "6", code=2)


def test_staffing_answers_and_draws_the_curve(database: str, tmp_path: Path) -> None:
    picture = tmp_path / "curve.png"
    result = hub(
        "staffing", "--arrivals-per-hour", "300", "--aht", "240", "--plot", str(picture), "--json"
    )
    figures = json.loads(result.stdout)
    assert figures["agents"] == 25
    assert figures["service_level"] >= 0.8
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_bench_routing_reports_figures_for_memory_and_redis(database: str) -> None:
    from tests.conftest import REDIS_URL

    result = hub(
        "bench",
        "routing",
        "--agents",
        "200",
        "--queues",
        "20",
        "--decisions",
        "100",
        "--backlog",
        "200",
        "--sim-contacts",
        "2000",
        "--redis-url",
        REDIS_URL,
        "--json",
    )
    figures = json.loads(result.stdout)
    assert (figures["agents"], figures["queues"]) == (200, 20)
    for store in ("memory", "redis"):
        assert figures[store]["decisions"] == 100
        assert figures[store]["offered_at_once"] == 100  # nobody was busy: all offered at once
        assert figures[store]["p99_ms"] >= figures[store]["p50_ms"] > 0
        assert figures[store]["tick_ms"] > 0
    assert figures["redis_over_memory_decisions"] > 0
    assert figures["simulator"]["simulated_contacts_per_second"] > 0


def test_bench_sms_reports_the_hub_beside_bare_aiohttp(database: str) -> None:
    result = hub(
        "bench", "sms", "--requests", "60", "--concurrency", "4", "--customers", "20", "--json"
    )
    figures = json.loads(result.stdout)
    assert figures["database"] == "sqlite"
    for side in ("hub", "bare_aiohttp"):
        assert figures[side]["requests_per_second"] > 0
        assert figures[side]["p99_ms"] >= figures[side]["p50_ms"] > 0
    assert 0 < figures["hub_over_bare"] < 1  # the hub does real work per webhook
    # Bare aiohttp timed before and after the hub: the faster run is the yardstick.
    assert figures["bare_aiohttp"]["requests_per_second"] == max(figures["bare_aiohttp_runs"])
