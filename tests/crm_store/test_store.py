"""The store's own rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.bus import EventBus
from hub.crm_store import backup as backups
from hub.crm_store import database
from hub.crm_store.database import create_engine, current_revision, head_revision, migrate
from hub.crm_store.scratch import scratch_database
from hub.crm_store.unit_of_work import Store
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel, InteractionState
from hub.domain.timeline import Direction, EventKind
from hub.domain.users import Principal, Role
from hub.errors import Conflict, StoreConflict, ValidationError
from hub.services import customers
from hub.services.receive import receive
from tests.conftest import POSTGRES_URL, FrozenClock
from tests.services.test_receive import PHONE, sms


async def test_the_schema_is_at_the_newest_migration(store: Store) -> None:
    assert await current_revision(store.engine) == head_revision()


async def test_a_verified_identity_belongs_to_one_customer_only(
    store: Store, clock: FrozenClock
) -> None:
    async with store.unit_of_work() as uow:
        a = await uow.customers.create(display_name="A", team_id=None, now=clock())
        b = await uow.customers.create(display_name="B", team_id=None, now=clock())
        await uow.customers.add_identity(a.id, PHONE, verified=True, now=clock())
        await uow.customers.add_identity(b.id, PHONE, verified=False, now=clock())
        await uow.customers.add_identity(a.id, PHONE, verified=False, now=clock())
        await uow.commit()
    with pytest.raises(StoreConflict):
        async with store.unit_of_work() as uow:
            await uow.customers.add_identity(b.id, PHONE, verified=True, now=clock())


async def test_a_provider_reference_is_stored_once(store: Store, clock: FrozenClock) -> None:
    async with store.unit_of_work() as uow:
        customer = await uow.customers.create(display_name=None, team_id=None, now=clock())
        await uow.commit()
    for attempt in range(2):
        try:
            async with store.unit_of_work() as uow:
                await uow.timeline.append(
                    customer_id=customer.id,
                    kind=EventKind.MESSAGE,
                    direction=Direction.INBOUND,
                    occurred_at=clock(),
                    provider="twilio",
                    provider_ref="SM1",
                )
                await uow.commit()
        except StoreConflict:
            assert attempt == 1
        else:
            assert attempt == 0


async def test_a_state_change_is_compare_and_set(store: Store, clock: FrozenClock) -> None:
    received = await receive(store, sms("x", clock, "SM1"), default_team="support", now=clock())
    async with store.unit_of_work() as uow:
        first = await uow.interactions.get(received.interaction_id or 0)
        stale = await uow.interactions.get(received.interaction_id or 0)
        assert first is not None
        assert stale is not None
        first.move_to(InteractionState.QUEUED, clock())
        assert await uow.interactions.save_state(first, InteractionState.NEW)
        stale.move_to(InteractionState.CLOSED, clock())
        assert not await uow.interactions.save_state(stale, InteractionState.NEW)
        await uow.commit()


async def test_visibility_by_team_and_by_assignment(store: Store, clock: FrozenClock) -> None:
    received = await receive(store, sms("x", clock, "SM1"), default_team="support", now=clock())
    async with store.unit_of_work() as uow:
        support = await uow.accounts.ensure_team("support", clock())
        sales = await uow.accounts.ensure_team("sales", clock())
        holder = await uow.accounts.add_user(
            username="holder",
            display_name="H",
            role=Role.AGENT,
            password_hash=None,
            team_ids=frozenset({sales.id}),
            now=clock(),
        )
        await uow.session.execute(
            text("UPDATE interactions SET assigned_user_id = :user WHERE id = :id"),
            {"user": holder.id, "id": received.interaction_id},
        )
        await uow.commit()
    customer = received.customer_id
    cases = [
        (Principal(1, "a", Role.AGENT, frozenset({support.id})), True),
        (Principal(2, "b", Role.AGENT, frozenset({sales.id})), False),
        (Principal(3, "c", Role.SUPERVISOR, frozenset({sales.id})), False),
        (Principal(4, "d", Role.MARKETER, frozenset()), False),
        (Principal(5, "e", Role.ADMIN, frozenset()), True),
        (Principal(holder.id, "f", Role.AGENT, frozenset({sales.id})), True),  # holds its work
        (Principal(holder.id, "f", Role.AGENT, frozenset()), True),
        (Principal(holder.id + 1, "g", Role.AGENT, frozenset()), False),
    ]
    async with store.unit_of_work() as uow:
        for principal, visible in cases:
            assert await uow.customers.is_visible(customer, principal) is visible, principal
            # the record's read: the same rule, its values bound as parameters
            found = await uow.customers.profiles([customer], visible_to_principal=principal)
            assert (customer in found) is visible, principal


async def test_backup_and_restore_round_trip_across_databases(
    store: Store, clock: FrozenClock, tmp_path: Path
) -> None:
    a = await receive(
        store, sms("one", clock, "SM1", name="Grace"), default_team="support", now=clock()
    )
    clock.advance(5)
    b = await receive(
        store,
        sms(
            "two",
            clock,
            "E1",
            channel=Channel.EMAIL,
            provider="imap",
            sender=IdentityRef(IdentityKind.EMAIL, "grace@example.com"),
        ),
        default_team="support",
        now=clock(),
    )
    async with store.unit_of_work() as uow:
        user = await uow.accounts.add_user(
            username="admin",
            display_name="A",
            role=Role.ADMIN,
            password_hash=None,
            team_ids=frozenset(),
            now=clock(),
        )
        await uow.commit()
    me = user.principal()
    await customers.merge_customers(store, me, a.customer_id, b.customer_id, clock())
    merged_at = clock()
    path = tmp_path / "hub-backup.jsonl.gz"
    counts = await backups.backup(store.engine, path, now=clock())
    assert counts["customers"] == 2
    assert counts["timeline_events"] == 3
    assert counts["merges"] == 1

    # Restore into a fresh database of each kind: the format does not care where it came from.
    for like in ("sqlite+aiosqlite:///x.db", POSTGRES_URL):
        async with scratch_database(like, prefix="hub_restore") as url:
            target = Store(create_engine(url), EventBus())
            try:
                await migrate(target.engine)
                restored = await backups.restore(target.engine, path)
                assert restored == counts
                record = await customers.unified_record(target, me, a.customer_id, events=10)
                assert {i.value for i in record.identities} == {"+14155550100", "grace@example.com"}
                assert [e.body for e in record.latest_events][1:] == ["two", "one"]
                assert record.latest_events[0].occurred_at == merged_at
                async with target.unit_of_work() as uow:
                    merged = await uow.customers.get(b.customer_id)
                    assert merged is not None
                    assert merged.merged_into_id == a.customer_id
                # New rows get fresh ids after the restored ones.
                clock.advance(timedelta(minutes=1).total_seconds())
                more = await receive(
                    target, sms("three", clock, "SM9"), default_team="support", now=clock()
                )
                assert more.event_id > max(e.id for e in record.latest_events)
                with pytest.raises(Conflict, match="not empty"):
                    await backups.restore(target.engine, path)
            finally:
                await target.close()


async def test_restore_refuses_what_is_not_a_backup(store: Store, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gz"
    bogus.write_bytes(b"not gzip at all")
    with pytest.raises(ValidationError, match="not a hub backup"):
        await backups.restore(store.engine, bogus)


async def test_a_connection_that_died_while_idle_is_replaced_before_use(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL restarted (here: our backend terminated) while the pool held a connection:
    the next unit of work still works. Busy connections are not pinged, idle ones are."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's connections are files, not sockets")
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        killer = create_engine(database_url)
        async with killer.connect() as connection:
            await connection.scalar(text(f"SELECT pg_terminate_backend({int(pid)})"))
        await killer.dispose()
        monkeypatch.setattr(database, "PING_IDLE_SECONDS", 0.0)  # it has sat idle long enough
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
            assert await connection.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await engine.dispose()


async def test_each_customers_newest_events_come_in_one_read(
    store: Store, clock: FrozenClock
) -> None:
    """``newest_of``: each customer's own page (newest first, at most ``limit``), the same
    as reading them one by one, for one customer or many, with or without history."""
    async with store.unit_of_work() as uow:
        ids = [
            (await uow.customers.create(display_name=f"c{n}", team_id=None, now=clock())).id
            for n in range(5)
        ]
        for step in range(40):  # interleaved, some at the same instant (the id breaks ties)
            await uow.timeline.append(
                customer_id=ids[(step * 7) % 4],  # the fifth customer has no history
                kind=EventKind.MESSAGE,
                direction=Direction.INBOUND,
                occurred_at=clock() + timedelta(seconds=(step * 13) % 9),
                body=f"m{step}",
            )
        await uow.commit()
    async with store.reading() as uow:
        one_by_one = {i: await uow.timeline.page(i, limit=6) for i in ids}
        together = await uow.timeline.newest_of([*ids, ids[0]], limit=6)
        alone = await uow.timeline.newest_of([ids[2]], limit=6)
    assert together == one_by_one
    assert alone == {ids[2]: one_by_one[ids[2]]}
    assert [len(events) for events in together.values()] == [6, 6, 6, 6, 0]
