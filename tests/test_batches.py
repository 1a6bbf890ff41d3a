"""The group-commit batcher: bursts gather, a lone item waits for no timer, outcomes per item."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hub.batches import Batcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(items)
        await asyncio.sleep(0)
        return [ValueError(n) if n < 0 else n * 10 for n in items]


async def test_a_lone_item_is_handled_without_waiting_for_the_gathering_bound() -> None:
    handled = Recorder()
    batcher: Batcher[int, int] = Batcher(handled, max_wait=3600, name="test")
    async with asyncio.timeout(5):  # the bound is an hour: the item went at once
        assert await batcher.submit(1) == 10
    assert handled.batches == [[1]]


async def test_a_burst_arriving_over_several_passes_of_the_loop_gathers_into_one_batch() -> None:
    handled = Recorder()
    batcher: Batcher[int, int] = Batcher(handled, max_wait=3600, name="test")

    async def arrive(n: int) -> int:
        for _ in range(n):  # as a request still being read reaches submit a pass later
            await asyncio.sleep(0)
        return await batcher.submit(n)

    async with asyncio.timeout(5):
        outcomes = await asyncio.gather(*(arrive(n) for n in range(6)))
    assert outcomes == [0, 10, 20, 30, 40, 50]
    assert handled.batches == [[0, 1, 2, 3, 4, 5]]


async def test_the_next_batch_gathers_while_one_is_handled_and_sizes_are_bounded() -> None:
    gate = asyncio.Event()
    batches: list[list[int]] = []

    async def slow(items: list[int]) -> Sequence[int]:
        batches.append(items)
        await gate.wait()
        return items

    batcher: Batcher[int, int] = Batcher(slow, max_batch=3, max_wait=3600, name="test")
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.01)
    rest = [asyncio.ensure_future(batcher.submit(n)) for n in range(1, 6)]
    await asyncio.sleep(0.01)
    gate.set()
    async with asyncio.timeout(5):
        assert await asyncio.gather(first, *rest) == list(range(6))
    assert batches == [[0], [1, 2, 3], [4, 5]]


async def test_each_caller_gets_its_own_outcome_or_exception() -> None:
    batcher: Batcher[int, int] = Batcher(Recorder(), name="test")
    outcomes = await asyncio.gather(
        batcher.submit(2), batcher.submit(-1), batcher.submit(3), return_exceptions=True
    )
    assert outcomes[0] == 20
    assert isinstance(outcomes[1], ValueError)
    assert outcomes[2] == 30
