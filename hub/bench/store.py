"""`hub bench store`: unified-record reads on a store of realistic size.

Seeds a throwaway database of the configured kind with N customers (each with a phone and an
email) and one customer with M timeline events across channels, then measures
(1) unified-record reads per second through the service layer, and
(2) ``GET /api/v1/customers/{id}`` over real HTTP on loopback: latency of requests sent one
    at a time, then throughput and latency with several in flight (where latency includes
    waiting behind the others: one process serves them on one core).
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import insert

from hub.agent_console.app import build_app
from hub.bench.figures import percentile
from hub.bootstrap import build_hub
from hub.config import Settings
from hub.crm_store.scratch import scratch_database
from hub.crm_store.tables import CustomerRow, IdentityRow, InteractionRow, TimelineEventRow
from hub.domain.interaction import Channel, InteractionState
from hub.domain.users import Role
from hub.services.accounts import create_user, issue_token
from hub.services.customers import unified_record

BATCH = 5_000
CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.VOICE, Channel.WEBCHAT, Channel.API)


async def _seed(hub: Any, customers: int, events: int, team_id: int) -> int:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with hub.store.engine.begin() as conn:
        for first in range(1, customers + 1, BATCH):
            ids = range(first, min(first + BATCH, customers + 1))
            await conn.execute(
                insert(CustomerRow),
                [
                    {
                        "id": i,
                        "display_name": f"Customer {i}",
                        "name_folded": f"customer {i}",
                        "custom_fields": {"tier": "gold" if i % 10 == 0 else "standard"},
                        "tags": [],
                        "team_id": team_id,
                        "created_at": start,
                        "updated_at": start,
                    }
                    for i in ids
                ],
            )
            identities = []
            for i in ids:
                identities.append(
                    {
                        "customer_id": i,
                        "kind": "phone",
                        "value": f"+1415{i:07d}",
                        "verified": True,
                        "created_at": start,
                    }
                )
                identities.append(
                    {
                        "customer_id": i,
                        "kind": "email",
                        "value": f"customer{i}@example.com",
                        "verified": True,
                        "created_at": start,
                    }
                )
            await conn.execute(insert(IdentityRow), identities)
        target = customers // 2 or 1
        interaction_ids = []
        for n, channel in enumerate(CHANNELS):
            result = await conn.execute(
                insert(InteractionRow).returning(InteractionRow.id),
                [
                    {
                        "customer_id": target,
                        "channel": channel.value,
                        "state": InteractionState.QUEUED.value
                        if n < 2
                        else InteractionState.CLOSED.value,
                        "opened_at": start,
                        "updated_at": start,
                    }
                ],
            )
            interaction_ids.append(result.scalar_one())
        for first in range(0, events, BATCH):
            await conn.execute(
                insert(TimelineEventRow),
                [
                    {
                        "customer_id": target,
                        "interaction_id": interaction_ids[e % len(CHANNELS)],
                        "kind": "message",
                        "channel": CHANNELS[e % len(CHANNELS)].value,
                        "direction": "inbound" if e % 2 else "outbound",
                        "occurred_at": start + timedelta(seconds=30 * e),
                        "body": f"message {e}: " + "lorem ipsum dolor sit amet " * 4,
                        "attachments": [],
                        "provider": "bench",
                        "provider_ref": f"bench-{e}",
                        "data": {},
                    }
                    for e in range(first, min(first + BATCH, events))
                ],
            )
    return target


async def run_store_bench(
    settings: Settings,
    *,
    customers: int,
    events: int,
    requests: int,
    concurrency: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Run the benchmark on a scratch database like the configured one; return the figures."""
    async with scratch_database(settings.database_url, prefix="hub_bench") as url:
        bench_settings = settings.model_copy(update={"database_url": url, "log_level": "WARNING"})
        hub = await build_hub(bench_settings)
        now = datetime.now(UTC)
        user = await create_user(
            hub.store,
            username="bench",
            role=Role.ADMIN,
            password=secrets.token_urlsafe(16),
            teams=["bench"],
            display_name=None,
            actor_id=None,
            now=now,
        )
        token = await issue_token(hub.store, username="bench", name="bench", now=now)
        progress(f"seeding {customers} customers and {events} events on {hub.store.dialect}")
        started = time.perf_counter()
        target = await _seed(hub, customers, events, min(user.team_ids))
        seed_seconds = time.perf_counter() - started
        if hub.store.dialect == "postgresql":
            # In a transaction that commits: a rolled-back ANALYZE leaves no statistics,
            # and the planner then reads all 10,000 events to sort out the newest 50.
            async with hub.store.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")

        progress("timing unified-record reads through the service layer")
        principal = user.principal()
        for _ in range(20):
            await unified_record(hub.store, principal, target, events=settings.record_events)
        reads = max(200, requests // 2)
        started = time.perf_counter()
        for _ in range(reads):
            await unified_record(hub.store, principal, target, events=settings.record_events)
        service_seconds = time.perf_counter() - started

        progress(f"timing {requests} GETs over HTTP, {concurrency} in flight")
        app = build_app(hub)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url_of = f"http://127.0.0.1:{port}/api/v1/customers/{target}"
        latencies: list[float] = []
        serial: list[float] = []
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with aiohttp.ClientSession(headers=headers) as client:
                for _ in range(20):
                    async with client.get(url_of) as response:
                        assert response.status == 200, await response.text()
                        await response.read()
                for _ in range(max(100, requests // 4)):
                    sent = time.perf_counter()
                    async with client.get(url_of) as response:
                        await response.read()
                    serial.append(time.perf_counter() - sent)
                queue: asyncio.Queue[int] = asyncio.Queue()
                for n in range(requests):
                    queue.put_nowait(n)

                async def worker() -> None:
                    while not queue.empty():
                        queue.get_nowait()
                        sent = time.perf_counter()
                        async with client.get(url_of) as response:
                            await response.read()
                            if response.status != 200:
                                raise RuntimeError(f"GET answered {response.status}")
                        latencies.append(time.perf_counter() - sent)

                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                http_seconds = time.perf_counter() - started
                # The process's processor time a GET (client and hub): steadier than the rate on
                # a machine whose neighbours come and go.
                http_cpu = time.process_time() - cpu
        finally:
            await runner.cleanup()
    return {
        "database": hub.store.dialect,
        "customers": customers,
        "events_on_customer": events,
        "record_events_returned": settings.record_events,
        "seed_seconds": round(seed_seconds, 1),
        "service_reads_per_second": round(reads / service_seconds, 1),
        "http_serial_p50_ms": round(percentile(serial, 0.50) * 1000, 2),
        "http_serial_p99_ms": round(percentile(serial, 0.99) * 1000, 2),
        "http_requests": requests,
        "http_concurrency": concurrency,
        "http_reads_per_second": round(requests / http_seconds, 1),
        "http_p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "http_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "http_mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "http_cpu_ms_per_request": round(http_cpu / requests * 1000, 3),
    }
