"""One contract, two event buses: in process and on Redis Streams."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from hub.bus import EventBus, InProcessEventBus
from hub.bus.redis import RedisStreamsEventBus, decode, encode
from hub.bus.redis import _event_types as event_types
from hub.domain.events import CustomerCreated, Event, InteractionReceived, NoteAdded
from hub.domain.interaction import Channel
from tests.conftest import REDIS_URL

MakeBus = Callable[..., EventBus]


@pytest.fixture(params=["memory", "redis"])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    """Makes buses that share one stream (Redis) or are one bus (in process)."""
    stream = f"hub-test:{secrets.token_hex(4)}:events"
    made: list[EventBus] = []
    shared = InProcessEventBus()

    def make(**options: object) -> EventBus:
        bus: EventBus = (
            shared
            if request.param == "memory"
            else RedisStreamsEventBus(
                REDIS_URL, stream=stream, block=timedelta(milliseconds=50), **options
            )  # type: ignore[arg-type]
        )
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.stop()
    if request.param == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL)
        await client.delete(stream)
        await client.aclose()


class Collector:
    def __init__(self, expected: int) -> None:
        self.seen: list[Event] = []
        self.done = asyncio.Event()
        self.expected = expected

    async def __call__(self, event: Event) -> None:
        self.seen.append(event)
        if len(self.seen) >= self.expected:
            self.done.set()

    async def wait(self) -> None:
        await asyncio.wait_for(self.done.wait(), timeout=10)


RECEIVED = InteractionReceived(7, 3, 11, Channel.SMS, None, True)


def test_events_round_trip_through_the_stream_encoding() -> None:
    for event in (RECEIVED, CustomerCreated(4), NoteAdded(1, 2)):
        back = decode(encode(event), event_types())
        assert back == event
        assert type(back) is type(event)
    assert decode(encode(RECEIVED), event_types()).channel is Channel.SMS  # type: ignore[attr-defined]


async def test_subscribers_get_their_types_in_order(make_bus: MakeBus) -> None:
    bus = make_bus()
    created, everything = Collector(2), Collector(3)
    bus.subscribe(CustomerCreated, created)
    bus.subscribe(Event, everything)
    await bus.start()
    await bus.publish([CustomerCreated(1), RECEIVED, CustomerCreated(2)])
    await created.wait()
    await everything.wait()
    assert created.seen == [CustomerCreated(1), CustomerCreated(2)]
    assert everything.seen == [CustomerCreated(1), RECEIVED, CustomerCreated(2)]


async def test_a_failing_subscriber_does_not_stop_the_others(
    make_bus: MakeBus, caplog: pytest.LogCaptureFixture
) -> None:
    bus = make_bus()
    good = Collector(2)

    async def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(CustomerCreated, broken)
    bus.subscribe(CustomerCreated, good)
    await bus.start()
    with caplog.at_level(logging.ERROR):
        await bus.publish([CustomerCreated(1), CustomerCreated(2)])
        await good.wait()
    assert good.seen == [CustomerCreated(1), CustomerCreated(2)]
    assert "event handler failed" in caplog.text


async def test_processes_in_one_group_share_the_work(make_bus: MakeBus) -> None:
    first, second = make_bus(), make_bus()
    seen: list[tuple[str, Event]] = []
    all_seen = asyncio.Event()

    def handler(name: str) -> Callable[[Event], object]:
        async def handle(event: Event) -> None:
            seen.append((name, event))
            if len(seen) >= 20:
                all_seen.set()

        return handle

    first.subscribe(CustomerCreated, handler("first"))  # type: ignore[arg-type]
    if second is not first:
        second.subscribe(CustomerCreated, handler("second"))  # type: ignore[arg-type]
    await first.start()
    if second is not first:
        await second.start()
    await first.publish([CustomerCreated(n) for n in range(10)])
    await second.publish([CustomerCreated(n) for n in range(10, 20)])
    await asyncio.wait_for(all_seen.wait(), timeout=10)
    await asyncio.sleep(0.2)  # nothing more may arrive: each event is handled once
    handled = sorted(e.customer_id for _, e in seen)  # type: ignore[attr-defined]
    assert handled == list(range(20))


async def test_unacknowledged_events_are_redelivered_to_a_live_consumer() -> None:
    stream = f"hub-test:{secrets.token_hex(4)}:events"
    crashing = RedisStreamsEventBus(
        REDIS_URL, stream=stream, consumer="crashing", block=timedelta(milliseconds=50)
    )

    async def die(event: Event) -> None:
        raise RuntimeError("the process dies before acknowledging")

    crashing.subscribe(CustomerCreated, die)
    await crashing.start()
    await crashing.publish([CustomerCreated(42)])
    await asyncio.sleep(0.3)
    await crashing.stop()

    survivor = RedisStreamsEventBus(
        REDIS_URL,
        stream=stream,
        consumer="survivor",
        claim_after=timedelta(milliseconds=100),
        block=timedelta(milliseconds=50),
    )
    got = Collector(1)
    survivor.subscribe(CustomerCreated, got)
    await survivor.start()
    try:
        await got.wait()
        assert got.seen == [CustomerCreated(42)]
    finally:
        await survivor.stop()
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL)
        await client.delete(stream)
        await client.aclose()


async def test_a_stream_lost_with_its_group_is_made_again_and_delivers(
    make_bus: MakeBus, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarted without its data: NOGROUP must not stop the hub's events for good."""
    bus = make_bus()
    first, after = Collector(1), Collector(2)
    bus.subscribe(CustomerCreated, first)
    bus.subscribe(CustomerCreated, after)
    await bus.start()
    await bus.publish([CustomerCreated(1)])
    await first.wait()
    if isinstance(bus, RedisStreamsEventBus):
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(REDIS_URL)
        await client.delete(bus._stream)  # the stream and its consumer group are gone
        await client.aclose()
        await asyncio.sleep(0.2)  # the reader meets NOGROUP
    with caplog.at_level(logging.WARNING):
        await bus.publish([CustomerCreated(2)])
        await after.wait()  # within 10 s
    assert after.seen == [CustomerCreated(1), CustomerCreated(2)]
