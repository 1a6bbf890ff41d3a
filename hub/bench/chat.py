"""`hub bench chat`: chat sessions one hub process holds, and a message's round trip.

The hub runs in this process on a scratch database like the configured one, with one chat
site. Visitors and agents are real socket.io clients (websocket transport) in a second process,
so their work does not count against the hub's core. ``sessions`` visitors connect to ``/chat``
and stay connected; ``chats`` of them start a conversation, which the ACD offers to agents who
accept it. Then, ``rounds`` times, a visitor writes; the agent's console gets the message and
the agent answers through ``POST /api/v1/interactions/{id}/reply``; the figure is from the
visitor sending to the visitor's widget receiving the answer (one clock, the client process's).
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
from hub.bench.figures import clients_in_child, percentile, serve_app
from hub.bootstrap import build_hub
from hub.config import ChatSiteSettings, Settings, WebchatSettings
from hub.crm_store.scratch import scratch_database
from hub.domain.users import Role
from hub.services.accounts import issue_token

ORIGIN = "https://bench.example.com"
AGENTS = 10


async def run_chat_bench(
    settings: Settings,
    *,
    sessions: int,
    chats: int,
    rounds: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Start the hub, drive visitors and agents from a child process, return the figures."""
    result: dict[str, Any] = {"sessions": sessions, "chats": chats, "rounds": rounds}
    webchat = WebchatSettings(
        sites=[ChatSiteSettings(id="bench", origins=[ORIGIN])],
        messages_per_minute=600,
        ip_messages_per_minute=6000,
        ip_sessions_per_minute=6000,
    )
    async with scratch_database(settings.database_url, prefix="hub_bench_chat") as url:
        changes = {"database_url": url, "log_level": "WARNING", "webchat": webchat}
        hub = await build_hub(settings.model_copy(update=changes))
        result["database"] = hub.store.dialect
        runner, base = await serve_app(build_app(hub))
        try:
            now = hub.clock()
            async with hub.store.unit_of_work() as uow:
                team = await uow.accounts.ensure_team(settings.default_team, now)
                for n in range(AGENTS):
                    user = await uow.accounts.add_user(
                        username=f"bench-agent-{n}",
                        display_name=f"Agent {n}",
                        role=Role.AGENT,
                        password_hash=None,
                        team_ids=frozenset({team.id}),
                        now=now,
                    )
                    capacity = {"webchat": max(3, -(-chats // AGENTS))}
                    await uow.accounts.set_agent_profile(
                        user.id, skills={}, languages=[], capacity=capacity, now=now
                    )
                await uow.commit()
            tokens = [
                await issue_token(hub.store, username=f"bench-agent-{n}", name="bench", now=now)
                for n in range(AGENTS)
            ]
            progress(f"connecting {sessions} visitors and {AGENTS} agents from a second process")
            result |= await clients_in_child(
                "hub.bench.chat", [base, str(sessions), str(chats), str(rounds)], tokens
            )
        finally:
            await runner.cleanup()
    return result


class _Visitor:
    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.interaction: int | None = None
        self.answered = asyncio.Event()
        self.joined = asyncio.Event()

        @self.client.on("message", namespace="/chat")  # type: ignore[untyped-decorator]
        async def message(data: dict[str, Any]) -> None:
            if data["event"]["direction"] == "outbound":
                self.answered.set()

        @self.client.on("agent", namespace="/chat")  # type: ignore[untyped-decorator]
        async def agent(data: dict[str, Any]) -> None:
            self.joined.set()


async def _drive(
    base: str, sessions: int, chats: int, rounds: int, tokens: list[str]
) -> dict[str, Any]:
    """The client side: connect, start chats, time round trips."""
    visitors = [_Visitor() for _ in range(sessions)]

    async def connect(visitor: _Visitor) -> float:
        started = time.perf_counter()
        await visitor.client.connect(
            base,
            namespaces=["/chat"],
            auth={"site": "bench"},
            headers={"Origin": ORIGIN},
            transports=["websocket"],
            wait_timeout=60,  # the default 1 s gives up on a busy hub
        )
        return time.perf_counter() - started

    started = time.perf_counter()
    connect_times: list[float] = []
    for first in range(0, sessions, 50):  # 50 handshakes in flight at a time
        connect_times += await asyncio.gather(*(connect(v) for v in visitors[first : first + 50]))
    connected_seconds = time.perf_counter() - started

    agents: list[socketio.AsyncClient] = []
    http = aiohttp.ClientSession()
    token_of: dict[int, str] = {}

    async def agent(token: str) -> None:
        client = socketio.AsyncClient(reconnection=False)

        @client.on("offer", namespace="/agent")  # type: ignore[untyped-decorator]
        async def offer(data: dict[str, Any]) -> None:
            interaction = data["interaction"]["id"]
            token_of[interaction] = token
            await client.emit("accept", {"interaction_id": interaction}, namespace="/agent")

        @client.on("message", namespace="/agent")  # type: ignore[untyped-decorator]
        async def message(data: dict[str, Any]) -> None:
            event = data["event"]
            if event["direction"] != "inbound" or not event["body"].startswith("round"):
                return
            async with http.post(
                f"{base}/api/v1/interactions/{data['interaction_id']}/reply",
                json={"body": f"answer to {event['body']}"},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                await response.read()

        await client.connect(
            base,
            namespaces=["/agent"],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=60,  # the default 1 s gives up on a busy hub
        )
        answer = await client.call("state", {"state": "available"}, namespace="/agent")
        assert answer["ok"], answer
        agents.append(client)

    await asyncio.gather(*(agent(t) for t in tokens))
    chatting = visitors[:chats]
    for n, visitor in enumerate(chatting):
        ack = await visitor.client.call(
            "message", {"text": f"hello {n}", "client_id": f"h{n}"}, namespace="/chat"
        )
        assert ack["ok"], ack
        visitor.interaction = ack["interaction_id"]
    await asyncio.wait_for(asyncio.gather(*(v.joined.wait() for v in chatting)), 60)

    trips: list[float] = []
    acks: list[float] = []
    for n in range(rounds):
        visitor = chatting[n % len(chatting)]
        visitor.answered.clear()
        sent = time.perf_counter()
        ack = await visitor.client.call(
            "message", {"text": f"round {n}", "client_id": f"r{n}"}, namespace="/chat"
        )
        acks.append(time.perf_counter() - sent)
        assert ack["ok"], ack
        await asyncio.wait_for(visitor.answered.wait(), 10)
        trips.append(time.perf_counter() - sent)
    await http.close()
    for client in [*agents, *(v.client for v in visitors)]:
        await client.disconnect()
    return {
        "connected": sessions,
        "connect_all_seconds": round(connected_seconds, 2),
        "connect_p99_ms": round(percentile(connect_times, 0.99) * 1000, 1),
        "ack_p50_ms": round(percentile(acks, 0.5) * 1000, 1),
        "ack_p99_ms": round(percentile(acks, 0.99) * 1000, 1),
        "round_trip_p50_ms": round(percentile(trips, 0.5) * 1000, 1),
        "round_trip_p99_ms": round(percentile(trips, 0.99) * 1000, 1),
    }


if __name__ == "__main__":  # the clients' process: python -m hub.bench.chat BASE N CHATS ROUNDS
    tokens = json.loads(sys.stdin.read())
    figures = asyncio.run(
        _drive(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), tokens)
    )
    os.write(1, json.dumps(figures).encode())
