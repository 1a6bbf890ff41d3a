"""The event bus: committed domain events, delivered to whoever subscribed, off the caller's task.

Events are delivered in lanes, one per partition of the event's key (its interaction, else its
customer, else its agent: ``Event.key``), so events about one interaction reach their
subscribers in order while other interactions' events go on beside them. Nobody who hands the
bus an event waits for its subscribers: a webhook answers once its data is committed, not once
routing and the console have heard of it.

Where the events come from is the outbox's business (``hub.crm_store.outbox``): it reads them
from the store after commit and hands them here with a callback for when they are done. Events
that describe no stored row (an agent's presence, an offer withdrawn by the routing state) are
handed here directly with ``publish``.

A subscriber that fails is retried a few times (delivery is at least once, so subscribers are
idempotent), then logged; the others get the event either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from hub.domain.events import Event

log = structlog.get_logger(__name__)

PARTITIONS = 16  # lanes; the outbox stores each row's partition, so every process must agree
RETRY_DELAYS = (0.05, 0.5, 2.0)  # seconds before each retry of a failing subscriber
TAKE = 256  # events a lane takes at once (delivered side by side across their keys)

E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None]]


def partition_of(event: Event) -> int:
    """The lane (and outbox partition) an event belongs to."""
    return event.key % PARTITIONS


@dataclass(slots=True)
class Envelope:
    """An event on its way to subscribers, and who to tell once they all had it."""

    event: Event
    partition: int
    created: float = field(default_factory=time.time)  # epoch seconds: how late it is
    done: Callable[[Envelope], None] | None = None


class _Lane:
    """Events of one partition, delivered by one task: what is queued is taken together, and
    the events of each key (interaction, customer, agent) go one after another while other
    keys' go beside them."""

    def __init__(self) -> None:
        self.queue: deque[Envelope] = deque()
        self.ready = asyncio.Event()
        self.busy = 0  # events taken and not yet delivered
        self.task: asyncio.Task[None] | None = None


class EventBus:
    """Subscribers by event class, and the lanes that deliver to them."""

    def __init__(self, *, retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self._handlers: list[tuple[type[Event], Handler]] = []
        self._by_type: dict[type[Event], list[Handler]] = {}
        self._lanes: list[_Lane] = []
        self._retry_delays = tuple(retry_delays)
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self.failures = 0  # subscriber calls that failed for good

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        """Call handler for every event of event_type (or a subclass), in subscription order."""
        self._handlers.append((event_type, handler))
        self._by_type.clear()

    def handlers(self, event_type: type[Event]) -> list[Handler]:
        """The subscribers an event of this class goes to."""
        found = self._by_type.get(event_type)
        if found is None:
            found = [h for t, h in self._handlers if issubclass(event_type, t)]
            self._by_type[event_type] = found
        return found

    def enqueue(self, envelopes: Iterable[Envelope]) -> None:
        """Deliver these in their lanes; returns at once."""
        if not self._lanes:
            self._lanes = [_Lane() for _ in range(PARTITIONS)]
        for envelope in envelopes:
            lane = self._lanes[envelope.partition]
            lane.queue.append(envelope)
            lane.ready.set()
            self._idle.clear()
            if lane.task is None or lane.task.done():
                lane.task = asyncio.create_task(self._run(lane), name="bus-lane")

    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver events that describe nothing stored (committed data goes through the outbox)."""
        self.enqueue(Envelope(event, partition_of(event)) for event in events)

    def in_flight(self, partition: int | None = None) -> int:
        """Events handed over and not yet delivered (in one partition, or all)."""
        lanes = self._lanes if partition is None else self._lanes[partition : partition + 1]
        return sum(len(lane.queue) + lane.busy for lane in lanes)

    async def idle(self) -> None:
        """Wait until every lane has delivered what it was given."""
        while self.in_flight():
            self._idle.clear()
            await self._idle.wait()

    async def _run(self, lane: _Lane) -> None:
        while not self._stopping:
            if not lane.queue:
                lane.ready.clear()
                if not self.in_flight():
                    self._idle.set()
                await lane.ready.wait()
                continue
            taken = [lane.queue.popleft() for _ in range(min(len(lane.queue), TAKE))]
            lane.busy = len(taken)
            try:
                by_key: dict[int, list[Envelope]] = {}
                for envelope in taken:
                    by_key.setdefault(envelope.event.key, []).append(envelope)
                if len(by_key) == 1:
                    await self._deliver_in_order(taken)
                else:
                    # Subscribers that batch (routing, the console's pushes) get one batch
                    # of all these keys' events instead of one event per lane at a time.
                    await asyncio.gather(*(self._deliver_in_order(g) for g in by_key.values()))
            finally:
                lane.busy = 0

    async def _deliver_in_order(self, envelopes: list[Envelope]) -> None:
        """Deliver events of one key, one after another."""
        for envelope in envelopes:
            await self.deliver(envelope.event)
            if envelope.done is not None:
                envelope.done(envelope)

    async def deliver(self, event: Event) -> bool:
        """Give one event to each of its subscribers; False if any failed for good."""
        delivered = True
        for handler in self.handlers(type(event)):
            for attempt in range(len(self._retry_delays) + 1):
                try:
                    await handler(event)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    if attempt < len(self._retry_delays) and not self._stopping:
                        await asyncio.sleep(self._retry_delays[attempt])
                        continue
                    delivered = False
                    self.failures += 1
                    log.exception(
                        "event handler failed",
                        event_type=type(event).__name__,
                        handler=getattr(handler, "__qualname__", repr(handler)),
                        outbox_id=event.outbox_id,
                    )
                    break
        return delivered

    async def stop(self, grace: float = 5.0) -> None:
        """Deliver what was handed over (for up to ``grace`` seconds), then stop the lanes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle(), grace)
        self._stopping = True
        tasks = [lane.task for lane in self._lanes if lane.task is not None]
        for lane in self._lanes:
            lane.ready.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._lanes = []
        self._stopping = False
        self._idle.set()
