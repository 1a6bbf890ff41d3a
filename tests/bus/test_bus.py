"""One contract, two dispatchers of the outbox: in process on SQLite, leased on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.bus import EventBus
from hub.bus.base import PARTITIONS
from hub.bus.codec import decode, encode
from hub.crm_store.database import create_engine
from hub.crm_store.outbox import OUTBOX, LocalOwnership, Ownership, PostgresLeases
from hub.crm_store.unit_of_work import Store
from hub.domain.events import (
    AgentStateChanged,
    CustomerCreated,
    Event,
    InteractionQueued,
    InteractionReceived,
    NoteAdded,
)
from hub.domain.interaction import Channel
from tests.conftest import eventually

MakeStore = Callable[..., Store]
RECEIVED = InteractionReceived(7, 3, 11, Channel.SMS, None, True)


def ownership_for(url: str) -> Ownership:
    return PostgresLeases(url, every=0.1) if url.startswith("postgresql") else LocalOwnership()


@pytest.fixture
async def make_store(database_url: str) -> AsyncIterator[MakeStore]:
    """Makes stores on one database, each with a bus and a dispatcher of its own."""
    made: list[Store] = []

    def make(engine: AsyncEngine | None = None, **bus_options: Any) -> Store:
        store = Store(
            engine or create_engine(database_url),
            EventBus(**bus_options),
            ownership_for(database_url),
        )
        made.append(store)
        return store

    yield make
    for store in made:
        await store.outbox.stop(grace=0.5)
        await store.close()


async def commit(store: Store, *events: Event) -> None:
    async with store.unit_of_work() as uow:
        for event in events:
            uow.record(event)
        await uow.commit()


async def stored(store: Store) -> int:
    async with store.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(OUTBOX)) or 0)


class Collector:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.seen.append(event)

    async def wait_for(self, count: int) -> None:
        async def enough() -> bool:
            return len(self.seen) >= count

        await eventually(enough, seconds=10, what=f"{count} deliveries")


def test_events_round_trip_through_the_row_encoding() -> None:
    for event in (RECEIVED, CustomerCreated(4), NoteAdded(1, 2), AgentStateChanged(3, "x", None)):
        back = decode(*encode(event), outbox_id=9)
        assert back == event
        assert type(back) is type(event)
        assert back.outbox_id == 9
    assert decode(*encode(RECEIVED)).channel is Channel.SMS  # type: ignore[attr-defined]


async def test_committed_events_reach_their_subscribers_and_leave_the_outbox(
    make_store: MakeStore,
) -> None:
    store = make_store()
    created, everything = Collector(), Collector()
    store.bus.subscribe(CustomerCreated, created)
    store.bus.subscribe(Event, everything)
    await store.outbox.start()
    await commit(store, CustomerCreated(1), RECEIVED, CustomerCreated(2))
    await everything.wait_for(3)
    await store.outbox.settle()
    assert created.seen == [CustomerCreated(1), CustomerCreated(2)]
    assert sorted(e.key for e in everything.seen) == [1, 2, 7]
    assert all(e.outbox_id > 0 for e in everything.seen)
    assert await stored(store) == 0


async def test_a_rolled_back_unit_of_work_leaves_no_event(make_store: MakeStore) -> None:
    store = make_store()
    seen = Collector()
    store.bus.subscribe(Event, seen)
    await store.outbox.start()
    async with store.unit_of_work() as uow:
        uow.record(CustomerCreated(1))  # never committed
    await commit(store, CustomerCreated(2))
    await store.outbox.settle()
    assert seen.seen == [CustomerCreated(2)]


async def test_the_committer_does_not_wait_for_subscribers(make_store: MakeStore) -> None:
    store = make_store()
    release = asyncio.Event()
    handled: list[Event] = []

    async def slow(event: Event) -> None:
        await release.wait()
        handled.append(event)

    store.bus.subscribe(CustomerCreated, slow)
    await store.outbox.start()
    await asyncio.wait_for(commit(store, CustomerCreated(1)), timeout=2)
    await asyncio.sleep(0.2)
    assert handled == []  # committed and answered while the subscriber still waits
    assert store.outbox.lag_seconds() > 0.1
    release.set()
    await store.outbox.settle()
    assert handled == [CustomerCreated(1)]
    assert store.outbox.lag_seconds() == 0.0


async def test_events_of_one_interaction_arrive_in_order(make_store: MakeStore) -> None:
    store = make_store()
    seen: list[InteractionQueued] = []

    async def jittery(event: InteractionQueued) -> None:
        await asyncio.sleep(random.random() / 500)
        seen.append(event)

    store.bus.subscribe(InteractionQueued, jittery)
    await store.outbox.start()
    for step in range(20):
        await commit(store, *(InteractionQueued(i, f"q{step}") for i in range(1, 6)))
    await store.outbox.settle()
    assert len(seen) == 100
    for interaction in range(1, 6):
        queues = [e.queue for e in seen if e.interaction_id == interaction]
        assert queues == [f"q{step}" for step in range(20)]


async def test_interactions_sharing_a_partition_do_not_wait_for_each_other(
    make_store: MakeStore,
) -> None:
    """Order is kept per interaction, not per partition: a subscriber busy with one
    interaction's event does not hold up another's in the same lane, so subscribers that
    batch get the lane's events together."""
    store = make_store()
    release = asyncio.Event()
    seen: list[int] = []
    together: list[int] = []

    async def handler(event: InteractionQueued) -> None:
        together.append(event.interaction_id)
        if event.interaction_id == 1:
            await release.wait()  # interaction 1 is slow to handle
        seen.append(event.interaction_id)

    store.bus.subscribe(InteractionQueued, handler)
    await store.outbox.start()
    same_lane = [1 + PARTITIONS * n for n in range(5)]  # 1, 17, 33, ...: one partition
    await commit(store, *(InteractionQueued(i, "q") for i in same_lane))
    await commit(store, InteractionQueued(1, "again"))

    async def others_done() -> bool:
        return sorted(seen) == same_lane[1:]

    await eventually(others_done, seconds=5, what="the other interactions' events")
    assert together.count(1) == 1  # interaction 1's second event waits for its first
    release.set()
    await store.outbox.settle()
    assert seen.count(1) == 2


async def test_a_failing_subscriber_is_retried_and_does_not_stop_the_others(
    make_store: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(retry_delays=(0.01, 0.01))
    good = Collector()
    calls: list[int] = []
    failures = {1: 99, 2: 1}

    async def broken(event: CustomerCreated) -> None:
        calls.append(event.customer_id)
        if calls.count(event.customer_id) <= failures[event.customer_id]:
            raise RuntimeError("subscriber bug")

    store.bus.subscribe(CustomerCreated, broken)
    store.bus.subscribe(CustomerCreated, good)
    await store.outbox.start()
    with caplog.at_level(logging.ERROR):
        await commit(store, CustomerCreated(1))
        await commit(store, CustomerCreated(2))
        await store.outbox.settle()
    assert sorted(e.key for e in good.seen) == [1, 2]
    # 1 failed three times, for good; 2 failed once, then worked
    assert sorted(calls) == [1, 1, 1, 2, 2]
    assert store.bus.failures == 1
    assert "event handler failed" in caplog.text


async def test_events_left_by_a_dead_process_are_delivered_by_the_next(
    make_store: MakeStore,
) -> None:
    first = make_store()
    never = asyncio.Event()

    async def stuck(event: Event) -> None:
        await never.wait()  # the process dies in the middle of delivering

    first.bus.subscribe(Event, stuck)
    await first.outbox.start()
    await commit(first, CustomerCreated(1), CustomerCreated(2))
    await asyncio.sleep(0.2)
    await first.outbox.stop(grace=0.1)  # cancels the stuck delivery: nothing was deleted
    assert await stored(first) == 2

    second = make_store()
    got = Collector()
    second.bus.subscribe(Event, got)
    await second.outbox.start()
    await got.wait_for(2)
    await second.outbox.settle()
    assert sorted(e.key for e in got.seen) == [1, 2]
    assert await stored(second) == 0


async def test_publish_delivers_what_is_not_stored(make_store: MakeStore) -> None:
    store = make_store()
    got = Collector()
    store.bus.subscribe(AgentStateChanged, got)
    await store.bus.publish([AgentStateChanged(4, "available", None)])
    await got.wait_for(1)
    assert await stored(store) == 0


async def test_processes_on_one_database_share_the_work_once_each(
    make_store: MakeStore, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite is the embedded store: one process dispatches it")
    stores = [make_store(), make_store()]
    seen: list[tuple[int, int]] = []
    for n, store in enumerate(stores):

        async def handle(event: CustomerCreated, n: int = n) -> None:
            seen.append((n, event.customer_id))

        store.bus.subscribe(CustomerCreated, handle)
        await store.outbox.start()

    async def balanced() -> bool:
        owned = [s.outbox._ownership.owned() or frozenset() for s in stores]
        return [len(o) for o in owned] == [8, 8] and not owned[0] & owned[1]

    await eventually(balanced, seconds=10, what="an even share of the partitions")
    for n in range(40):
        await commit(stores[n % 2], CustomerCreated(n))

    async def all_seen() -> bool:
        return len(seen) >= 40

    await eventually(all_seen, seconds=10, what="every event")
    await asyncio.sleep(0.3)  # nothing more may arrive: each event is handled once
    assert sorted(c for _, c in seen) == list(range(40))
    assert {n for n, _ in seen} == {0, 1}


async def test_a_dead_process_partitions_are_taken_over(
    make_store: MakeStore, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite is the embedded store: one process dispatches it")
    dying, survivor = make_store(), make_store()
    never = asyncio.Event()

    async def stuck(event: Event) -> None:
        await never.wait()

    got = Collector()
    dying.bus.subscribe(Event, stuck)
    survivor.bus.subscribe(Event, got)
    await dying.outbox.start()

    async def holds_all() -> bool:
        return len(dying.outbox._ownership.owned() or ()) == 16

    await eventually(holds_all, seconds=10, what="the first process leasing everything")
    await commit(dying, *(CustomerCreated(n) for n in range(16)))
    await asyncio.sleep(0.2)
    await survivor.outbox.start()
    leases = dying.outbox._ownership
    assert isinstance(leases, PostgresLeases)
    assert leases._connection is not None
    dying.outbox._running = False  # the process is killed: it reads no more, and its locks
    leases._connection.terminate()  # go with its connection
    await got.wait_for(16)
    assert sorted(e.key for e in got.seen) == list(range(16))


@pytest.mark.parametrize("warm_pool", [False, True], ids=["new-pool", "warm-pool"])
async def test_a_process_reads_the_outbox_for_other_processes_commits_not_its_own(
    make_store: MakeStore, database_url: str, warm_pool: bool
) -> None:
    """Its own commits are handed over as they commit: their notifications call for no read,
    also from a connection the pool held before the dispatcher existed (the migrations').
    Another process's commit wakes it at once, well before its once-a-second poll."""
    if not database_url.startswith("postgresql"):
        pytest.skip("notifications are PostgreSQL's")
    engine = None
    if warm_pool:
        engine = create_engine(database_url, pool_size=1, max_overflow=0)
        async with engine.connect() as connection:  # pooled before the store is made
            await connection.execute(select(1))
    mine, other = make_store(engine=engine), make_store()  # only ``mine`` dispatches
    seen = Collector()
    mine.bus.subscribe(CustomerCreated, seen)
    await mine.outbox.start()
    await eventually(
        lambda: _true(len(mine.outbox._ownership.owned() or ()) == PARTITIONS),
        seconds=10,
        what="every partition leased",
    )
    await asyncio.sleep(0.2)
    reads = mine.outbox._reads
    for n in range(20):
        await commit(mine, CustomerCreated(n))
    await seen.wait_for(20)
    await asyncio.sleep(0.2)
    assert mine.outbox._reads - reads <= 1  # the poll's, at most: none for its own commits
    await commit(other, CustomerCreated(99))
    started = asyncio.get_running_loop().time()
    await seen.wait_for(21)
    assert asyncio.get_running_loop().time() - started < 0.8
    assert seen.seen[-1] == CustomerCreated(99)


async def _true(value: bool) -> bool:
    return value
