"""What the benchmarks share: a percentile, serving an app on loopback, clients elsewhere,
requests sent at a steady rate."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from hub.bootstrap import settle_heap

T = TypeVar("T")


def percentile(samples: list[float], fraction: float) -> float:
    """The sample at the given fraction of the sorted samples (nearest rank)."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


async def serve_app(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve an aiohttp app on loopback (port 0: a free one); its runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settle_heap()  # as `hub serve` does once started
    return runner, f"http://127.0.0.1:{port}"


class ProcessorTrace:
    """This process's processor time, sampled while the block runs, so that a window another
    process timed can be read off (``time.perf_counter`` is the system's monotonic clock on
    Linux: one clock for both processes)."""

    def __init__(self, every: float = 0.05) -> None:
        self._every = every
        self._samples: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ProcessorTrace:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample(self) -> None:
        while True:
            self._samples.append((time.perf_counter(), time.process_time()))
            await asyncio.sleep(self._every)

    def used(self, start: float, end: float) -> float:
        """Processor seconds this process used between two ``perf_counter`` readings."""
        return self._at(end) - self._at(start)

    def _at(self, moment: float) -> float:
        samples = self._samples
        index = bisect.bisect_left(samples, (moment,))
        if index == 0 or index == len(samples):
            raise ValueError("the moment is outside the trace")
        (t0, cpu0), (t1, cpu1) = samples[index - 1], samples[index]
        return cpu0 + (cpu1 - cpu0) * (moment - t0) / (t1 - t0)


async def clients_in_child(module: str, args: list[str], given: Any) -> dict[str, Any]:
    """Run ``python -m module args`` (the benchmark's clients), given JSON on its stdin.

    The clients run in their own process so their work does not count against the hub's core;
    they print their figures as JSON. The hub's peak memory is added to them.
    """
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    output, _ = await child.communicate(json.dumps(given).encode())
    if child.returncode != 0:
        raise RuntimeError(f"the clients' process ({module}) failed")
    figures: dict[str, Any] = json.loads(output)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return figures | {"hub_peak_rss_mb": round(peak / 1024, 1)}


async def paced(count: int, rate: float, send: Callable[[int], Awaitable[T]]) -> list[T]:
    """Open loop: start send(0), send(1), ... at ``rate`` a second whatever the answers do (as
    providers send); their outcomes, in order, once all have finished."""
    started = time.perf_counter()
    sending = []
    for n in range(count):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sending.append(asyncio.ensure_future(send(n)))
    return list(await asyncio.gather(*sending))
