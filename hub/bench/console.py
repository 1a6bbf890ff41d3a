"""`hub bench console`: agent connections one hub process holds, and webhook-to-offer latency.

The hub runs in this process on a scratch database like the configured one; the agents are
real socket.io clients (websocket transport) in a second process, so their work does not count
against the hub's core. Every agent connects to ``/agent`` with its own token and goes
available. Then contacts arrive through ``POST /api/v1/inbound`` (authenticated, committed,
routed), one at a time or, with ``rate``, sent steadily at that many a second whatever the
answers do; the figure is the time from sending that request to the ``offer`` event reaching an
agent's client, measured in the client process (one clock for both ends). Beside it, the hub's
processor time per contact and how busy its process was while the contacts came in
(``hub_cpu_ms_per_contact``, ``hub_cpu_busy``): on a shared machine steadier than the tail.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import socketio

from hub.agent_console.app import build_app
from hub.bench.figures import ProcessorTrace, clients_in_child, paced, percentile, serve_app
from hub.bootstrap import build_hub
from hub.config import Settings
from hub.crm_store.scratch import scratch_database
from hub.domain.users import Role
from hub.services.accounts import issue_token


async def run_console_bench(
    settings: Settings,
    *,
    agents: int,
    contacts: int,
    progress: Callable[[str], None],
    rate: float = 0.0,
) -> dict[str, Any]:
    """Start the hub, drive the agents from a child process, return the figures."""
    result: dict[str, Any] = {"agents": agents, "contacts": contacts, "rate": rate or None}
    async with scratch_database(settings.database_url, prefix="hub_bench_console") as url:
        hub = await build_hub(
            settings.model_copy(update={"database_url": url, "log_level": "WARNING"})
        )
        result["database"] = hub.store.dialect
        runner, base = await serve_app(build_app(hub))
        try:
            progress(f"making {agents} agents")
            now = hub.clock()
            async with hub.store.unit_of_work() as uow:
                team = await uow.accounts.ensure_team(settings.default_team, now)
                for n in range(agents):
                    await uow.accounts.add_user(
                        username=f"bench-agent-{n}",
                        display_name=f"Agent {n}",
                        role=Role.AGENT,
                        password_hash=None,
                        team_ids=frozenset({team.id}),
                        now=now,
                    )
                await uow.accounts.add_user(
                    username="bench-admin",
                    display_name="Admin",
                    role=Role.ADMIN,
                    password_hash=None,
                    team_ids=frozenset({team.id}),
                    now=now,
                )
                await uow.commit()
            tokens = [
                await issue_token(hub.store, username=f"bench-agent-{n}", name="bench", now=now)
                for n in range(agents)
            ]
            admin = await issue_token(hub.store, username="bench-admin", name="bench", now=now)
            progress(f"connecting {agents} agents from a second process")
            async with ProcessorTrace() as trace:
                figures = await clients_in_child(
                    "hub.bench.console", [base, admin, str(contacts), str(rate)], tokens
                )
            # The hub's processor time while the contacts came in (connects left out): at a
            # steady rate, what each costs and how busy the hub was, steadier than the tail.
            start, end = figures.pop("contacts_from"), figures.pop("contacts_to")
            used = trace.used(start, end)
            figures["hub_cpu_ms_per_contact"] = round(used / contacts * 1000, 3)
            figures["hub_cpu_busy"] = round(used / (end - start), 3)
            result |= figures
        finally:
            await runner.cleanup()
    return result


async def _agents(
    base: str, admin: str, contacts: int, tokens: list[str], rate: float = 0.0
) -> dict[str, Any]:
    """The client side: connect every agent, make them available, time contacts to offers."""
    offered: dict[int, float] = {}
    arrived = asyncio.Event()
    clients: list[socketio.AsyncClient] = []

    async def connect(token: str) -> float:
        client = socketio.AsyncClient(reconnection=False)

        @client.on("offer", namespace="/agent")  # type: ignore[untyped-decorator]
        async def offer(data: dict[str, Any]) -> None:
            offered.setdefault(data["interaction"]["id"], time.perf_counter())
            arrived.set()

        started = time.perf_counter()
        await client.connect(
            base,
            namespaces=["/agent"],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=60,  # the default 1 s gives up on a busy hub
        )
        clients.append(client)
        return time.perf_counter() - started

    started = time.perf_counter()
    connect_times: list[float] = []
    for start in range(0, len(tokens), 50):  # 50 handshakes in flight at a time
        connect_times += await asyncio.gather(*(connect(t) for t in tokens[start : start + 50]))
    connected_seconds = time.perf_counter() - started
    for client in clients:
        answer = await client.call("state", {"state": "available"}, namespace="/agent")
        assert answer["ok"], answer
    sent: dict[int, float] = {}
    contacts_from = time.perf_counter()
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {admin}"}, connector=aiohttp.TCPConnector(limit=0)
    ) as http:

        async def contact(n: int) -> None:
            started = time.perf_counter()
            async with http.post(
                f"{base}/api/v1/inbound",
                json={"from": f"+1415{n:07d}", "body": f"contact {n}", "provider_ref": f"b{n}"},
            ) as response:
                sent[int((await response.json())["interaction_id"])] = started

        async def all_offered(wanted: int) -> None:
            while sum(1 for i in sent if i in offered) < wanted:
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 30)

        if rate > 0:  # open loop: steadily, as providers send
            await paced(contacts, rate, contact)
            await all_offered(contacts)
        else:  # one at a time: the next once the last was offered
            for n in range(contacts):
                await contact(n)
                await all_offered(n + 1)
    contacts_to = time.perf_counter()
    latencies = [offered[i] - started for i, started in sent.items()]
    for client in clients:
        await client.disconnect()
    return {
        "connected": len(clients),
        "connect_all_seconds": round(connected_seconds, 2),
        "connect_p99_ms": round(percentile(connect_times, 0.99) * 1000, 1),
        "offer_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "offer_p90_ms": round(percentile(latencies, 0.9) * 1000, 1),
        "offer_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "offer_max_ms": round(max(latencies) * 1000, 1),
        "contacts_from": contacts_from,
        "contacts_to": contacts_to,
    }


if __name__ == "__main__":  # the agents' process: python -m hub.bench.console BASE ADMIN N RATE
    tokens = json.loads(sys.stdin.read())
    figures = asyncio.run(
        _agents(sys.argv[1], sys.argv[2], int(sys.argv[3]), tokens, float(sys.argv[4]))
    )
    os.write(1, json.dumps(figures).encode())
