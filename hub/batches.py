"""Group commit: callers hand over items one at a time, one worker handles them in batches.

Each caller waits for its own item's outcome. The wait is bounded: when the first item reaches
an idle worker, the worker lets the event loop go round while each pass brings more items (a
burst that is being read gathers), and starts the batch once a pass brings none, ``max_wait``
seconds have passed or ``max_batch`` are waiting. A lone item waits for no timer, and the loop
never sits idle with items in hand. Under load the next batch gathers while the last one is
being handled, with no wait of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Handle = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Batcher(Generic[T, R]):
    """Items in, batches to ``handle`` (which returns one outcome per item, in order), out."""

    def __init__(
        self, handle: Handle[T, R], *, max_batch: int = 64, max_wait: float = 0.002, name: str
    ) -> None:
        self._handle = handle
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._name = name
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0  # batches handled (a figure for benchmarks and tests)

    async def submit(self, item: T) -> R:
        """Hand one item over; its outcome (or its exception) once its batch is handled."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name=self._name)
        return await future

    async def drain(self) -> None:
        """Wait until what was handed over has been handled."""
        while self._worker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._worker)

    async def _work(self) -> None:
        try:
            idle = True
            while self._waiting:
                if idle and self._max_wait > 0:
                    await self._gather()
                idle = False
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._run(batch)
        finally:
            self._worker = None

    async def _gather(self) -> None:
        """Let a burst gather while each pass of the event loop brings more of it.

        A fixed sleep here kept the loop idle with items in hand: under a steady load a batch's
        answers bring the next requests back within a pass or two, and the rest of the sleep
        was lost (11% of a process serving SMS webhooks on SQLite).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        count = 0
        while count < len(self._waiting) < self._max_batch and loop.time() < deadline:
            count = len(self._waiting)
            await asyncio.sleep(0)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._handle([item for item, _ in batch])
        except Exception as err:
            outcomes = [err] * len(batch)
        self.batches += 1
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue  # the caller went away; the item was handled all the same
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
