"""The event bus on Redis Streams, for several hub processes (scale-out).

Every process publishes to one stream; all processes read it as one consumer group, so each
event is handled by exactly one process. An event is acknowledged (XACK) only after every
subscriber handled it; one that is not (the handler failed, the process died) stays pending
and is claimed again (XAUTOCLAIM) by a live consumer once it has been idle ``claim_after``.
Delivery is therefore at least once: handlers must be idempotent, which the hub's are (they
re-read the store and move state with compare-and-set).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import os
import socket
import typing
from collections.abc import Sequence
from datetime import timedelta
from typing import cast

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from hub.bus.base import EventBus, Handler
from hub.domain import events as domain_events
from hub.domain.events import Event
from hub.redis_connection import connect

log = structlog.get_logger(__name__)


def _event_types() -> dict[str, type[Event]]:
    return {
        name: value
        for name, value in vars(domain_events).items()
        if isinstance(value, type) and issubclass(value, Event) and value is not Event
    }


def encode(event: Event) -> dict[str, str]:
    """A stream entry for an event: its type name and its fields as JSON."""
    return {"type": type(event).__name__, "data": json.dumps(dataclasses.asdict(event))}


def decode(entry: dict[str, str], types: dict[str, type[Event]]) -> Event:
    """The event a stream entry holds, with enum fields turned back into enums."""
    cls = types[entry["type"]]
    data = json.loads(entry["data"])
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        hint = hints.get(name)
        for candidate in typing.get_args(hint) or (hint,):
            if (
                isinstance(candidate, type)
                and issubclass(candidate, enum.Enum)
                and value is not None
            ):
                data[name] = candidate(value)
                break
    return cls(**data)


class RedisStreamsEventBus(EventBus):
    """Events through a Redis stream read by one consumer group."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = "hub:events",
        group: str = "hub",
        consumer: str | None = None,
        claim_after: timedelta = timedelta(seconds=30),
        block: timedelta = timedelta(milliseconds=500),
        max_length: int = 1_000_000,
    ) -> None:
        self._redis: aioredis.Redis = connect(url)
        self._stream = stream
        self._group = group
        self._consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self._claim_after = claim_after
        self._block = block
        self._max_length = max_length
        self._handlers: list[tuple[type[Event], Handler]] = []
        self._types = _event_types()
        self._task: asyncio.Task[None] | None = None
        self._running = False

    def subscribe(self, event_type: type[Event], handler: Handler) -> None:
        self._handlers.append((event_type, handler))

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(
                    self._stream,
                    encode(event),  # type: ignore[arg-type]
                    maxlen=self._max_length,
                    approximate=True,
                )
            await pipe.execute()

    async def _ensure_group(self, start_at: str) -> None:
        """Create the stream and its consumer group unless another process did (BUSYGROUP)."""
        with contextlib.suppress(ResponseError):
            await self._redis.xgroup_create(self._stream, self._group, id=start_at, mkstream=True)

    async def backlog(self) -> int:
        """Entries of the stream the group has not read yet, and those read but not handled."""
        try:
            groups = await self._redis.xinfo_groups(self._stream)
        except ResponseError:
            return 0  # no stream yet
        for group in groups:
            if group.get("name") == self._group:
                return int(group.get("lag") or 0) + int(group.get("pending") or 0)
        return 0

    async def start(self) -> None:
        await self._ensure_group("$")
        self._running = True
        self._task = asyncio.create_task(self._consume(), name=f"bus-{self._consumer}")

    async def stop(self) -> None:
        # Stop between reads rather than cancel one: redis-py's async commands do not
        # reliably survive cancellation (redis/redis-py#2579, #2666).
        self._running = False
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self._block.total_seconds() + 3)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(self._task, timeout=5)
            self._task = None
        await self._redis.aclose()

    async def _consume(self) -> None:
        block_ms = int(self._block.total_seconds() * 1000)
        idle_ms = int(self._claim_after.total_seconds() * 1000)
        while self._running:
            try:
                claimed = await self._redis.xautoclaim(
                    self._stream, self._group, self._consumer, min_idle_time=idle_ms, count=100
                )
                for entry_id, fields in claimed[1]:
                    if fields:
                        await self._handle(entry_id, fields)
                answer = cast(
                    list[tuple[str, list[tuple[str, dict[str, str]]]]] | None,
                    await self._redis.xreadgroup(
                        self._group, self._consumer, {self._stream: ">"}, count=100, block=block_ms
                    ),
                )  # RESP2 shape: [(stream, [(id, fields), ...])]
                for _, entries in answer or ():
                    for entry_id, fields in entries:
                        await self._handle(entry_id, fields)
            except asyncio.CancelledError:
                raise
            except ResponseError as err:
                if "NOGROUP" not in str(err):
                    log.exception("event bus read failed")
                    await asyncio.sleep(1)
                    continue
                # Redis came back without its data: make the stream and group again, from the
                # start of the new stream (what was published meanwhile is delivered).
                log.warning("event bus: the stream or its group is gone; making them again")
                await self._ensure_group("0")
            except (aioredis.ConnectionError, OSError) as err:
                log.warning("event bus lost Redis; retrying", error=str(err))
                await asyncio.sleep(1)
            except Exception:
                log.exception("event bus read failed")
                await asyncio.sleep(1)

    async def _handle(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            event = decode(fields, self._types)
        except (KeyError, TypeError, ValueError):
            log.error("unreadable event dropped", entry_id=entry_id, fields=fields)
            await self._redis.xack(self._stream, self._group, entry_id)
            return
        failed = False
        for event_type, handler in self._handlers:
            if isinstance(event, event_type):
                try:
                    await handler(event)
                except Exception:
                    failed = True
                    log.exception("event handler failed", event_type=type(event).__name__)
        if not failed:
            await self._redis.xack(self._stream, self._group, entry_id)
