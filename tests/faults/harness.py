"""Real hub processes, Twilio-like senders and socket.io agents, for the fault tests.

Everything runs on loopback: hub processes started as `hub serve` (killed with SIGKILL or
SIGTERM as the test says), signed SMS webhooks sent and retried the way Twilio retries a
webhook that got no answer, and agents that act as fast as a person never could: they accept
every offer at once, wrap up at once, and make themselves available again when told they
missed an offer. What each run saw is counted, so the test can print and check it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from twilio.request_validator import RequestValidator

from hub.dev.dovecot import free_port

PUBLIC = "https://hub.fault.test"  # what Twilio would call; both processes sign against it
TWILIO_TOKEN = "f4ulty0ken0123456789abcdef012345"
OUR_NUMBER = "+14155550000"
SMS_PATH = "/webhooks/twilio/sms"


def hub_environment(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The settings of a hub process under test (no HUB_* from the developer's shell)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {
        "HUB_DATABASE_URL": database_url,
        "HUB_DATA_DIR": str(data_dir),
        "HUB_PUBLIC_URL": PUBLIC,
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_TWILIO__ACCOUNT_SID": "AC" + "f" * 32,
        "HUB_TWILIO__AUTH_TOKEN": TWILIO_TOKEN,
        "HUB_TWILIO__API_BASE_URL": "http://127.0.0.1:9",  # replies would go nowhere
        "HUB_TWILIO__NUMBERS": '{"' + OUR_NUMBER + '": "support"}',
    }
    return env | extra


@dataclass
class HubProcess:
    """One `hub serve` process on a port of its own."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, wait: float = 60) -> None:
        out = self.log.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hub.cli", "serve", "--port", str(self.port),
                env=self.env, stdout=out, stderr=out,
            )  # fmt: skip
        finally:
            out.close()
        deadline = time.monotonic() + wait
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise AssertionError(f"the hub exited at start:\n{self.tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise AssertionError(f"the hub did not answer in {wait} s:\n{self.tail()}")

    async def kill(self) -> None:
        """kill -9: no cleanup, no goodbye."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def terminate(self, wait: float = 30) -> float:
        """SIGTERM; the seconds until the process exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), wait)
        except TimeoutError:
            await self.kill()
        return time.monotonic() - started

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# -- Twilio, sending -------------------------------------------------------------------------


def signed_sms(n: int, body: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """The n-th customer's SMS, as Twilio posts it (one customer per message)."""
    params = {
        "MessageSid": f"SMfault{n:08d}",
        "AccountSid": "AC" + "f" * 32,
        "From": f"+1415{2_000_000 + n:07d}",
        "To": OUR_NUMBER,
        "Body": body or f"message {n}",
        "NumMedia": "0",
    }
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + SMS_PATH, params)
    return params, {"X-Twilio-Signature": str(signature)}


@dataclass
class SendCounts:
    sent: int = 0  # messages answered 200 in the end
    attempts: int = 0  # requests made, retries included
    retried: int = 0  # requests that failed and were sent again
    failed: list[int] = field(default_factory=list)  # messages never answered 200


async def send_sms_load(
    urls: Sequence[str],
    count: int,
    seconds: float,
    *,
    concurrency: int = 64,
    attempts: int = 20,
) -> SendCounts:
    """``count`` messages spread evenly over ``seconds``, alternating between the urls.

    A request that fails (no answer, an error, a 5xx) is sent again after a backoff, as
    Twilio retries, to the next url (as a load balancer would send it): the same MessageSid,
    so the hub must store it once.
    """
    counts = SendCounts()
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=15)

    async def one(session: aiohttp.ClientSession, n: int) -> None:
        await asyncio.sleep(max(0.0, started + n * seconds / count - time.monotonic()))
        params, headers = signed_sms(n)
        for attempt in range(attempts):
            url = urls[(n + attempt) % len(urls)]
            async with gate:
                counts.attempts += 1
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with session.post(
                        url + SMS_PATH, data=params, headers=headers
                    ) as response:
                        await response.read()
                        if response.status == 200:
                            counts.sent += 1
                            return
            counts.retried += 1
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        counts.failed.append(n)

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(one(session, n) for n in range(count)))
    return counts


# -- agents ----------------------------------------------------------------------------------


@dataclass
class AgentCounts:
    offers: int = 0
    accepted: int = 0
    conflicts: int = 0
    withdrawn: int = 0
    wrapped: int = 0
    missed: int = 0
    reconnects: int = 0
    over_capacity: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class Agent:
    """A socket.io agent who takes everything at once, on whichever hub process answers."""

    def __init__(
        self, token: str, urls: Sequence[str], first: int, capacity: int, counts: AgentCounts
    ) -> None:
        self.token = token
        self.urls = list(urls)
        self.at = first
        self.capacity = capacity
        self.counts = counts
        self.held: set[int] = set()
        self.max_held = 0
        self.stopping = False
        self.client: socketio.AsyncClient | None = None
        self.connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        await self._connect()
        await self.call("state", {"state": "available"})

    async def _connect(self) -> None:
        while not self.stopping:
            client = socketio.AsyncClient(reconnection=False)
            self._handlers(client)
            url = self.urls[self.at % len(self.urls)]
            try:
                await client.connect(
                    url,
                    namespaces=["/agent"],
                    auth={"token": self.token},
                    transports=["websocket"],
                    wait_timeout=30,
                )
            except socketio.exceptions.ConnectionError:
                self.at += 1  # that process is gone: the next one (a load balancer would)
                await asyncio.sleep(0.5)
                continue
            self.client = client
            self.connected.set()
            return

    def _handlers(self, client: socketio.AsyncClient) -> None:
        @client.on("hello", namespace="/agent")  # type: ignore[untyped-decorator]
        async def hello(data: dict[str, Any]) -> None:
            # The hub's word on what the agent holds now: a wrap-up whose answer was lost with
            # a killed process is done (its capacity freed), however the agent remembers it.
            work = data.get("work", [])
            self.held = {w["id"] for w in work if w.get("state") == "assigned"}
            for item in work:
                self._spawn(self._wrap(item["id"]))
            for offer in data.get("offers", []):
                self._spawn(self._accept(offer["interaction"]["id"]))

        @client.on("offer", namespace="/agent")  # type: ignore[untyped-decorator]
        async def offer(data: dict[str, Any]) -> None:
            self.counts.offers += 1
            self._spawn(self._accept(data["interaction"]["id"]))

        @client.on("offer_withdrawn", namespace="/agent")  # type: ignore[untyped-decorator]
        async def withdrawn(data: dict[str, Any]) -> None:
            self.counts.withdrawn += 1

        @client.on("state", namespace="/agent")  # type: ignore[untyped-decorator]
        async def state(data: dict[str, Any]) -> None:
            if data.get("presence") == "missed":
                self.counts.missed += 1
                self._spawn(self.call("state", {"state": "available"}))

        @client.on("disconnect", namespace="/agent")  # type: ignore[untyped-decorator]
        async def disconnect(*_: Any) -> None:
            self.connected.clear()
            if not self.stopping:
                self.counts.reconnects += 1
                self.at += 1
                self._spawn(self._connect())

    async def call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        for _ in range(20):
            await self.connected.wait()
            client = self.client
            assert client is not None
            try:
                answer = await client.call(event, data, namespace="/agent", timeout=30)
            except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                await asyncio.sleep(0.2)
                continue
            if not answer.get("ok"):
                self.counts.errors[answer.get("error", {}).get("code", "?")] += 1
            return dict(answer)
        return {"ok": False}

    async def _accept(self, interaction_id: int) -> None:
        answer = await self.call("accept", {"interaction_id": interaction_id})
        if not answer.get("ok"):
            self.counts.conflicts += 1
            return
        self.counts.accepted += 1
        self.held.add(interaction_id)
        self.max_held = max(self.max_held, len(self.held))
        if len(self.held) > self.capacity:
            self.counts.over_capacity += 1
        await self._wrap(interaction_id)

    async def _wrap(self, interaction_id: int) -> None:
        # Not counted as held from here: the hub frees its room when the wrap-up commits, and
        # may offer the next work before this answer arrives (or after it is lost).
        self.held.discard(interaction_id)
        answer = await self.call("wrapup", {"interaction_id": interaction_id, "disposition": "ok"})
        if answer.get("ok") or answer.get("error", {}).get("code") in ("illegal_transition",):
            self.counts.wrapped += int(bool(answer.get("ok")))
        else:
            self.held.add(interaction_id)  # refused: still the agent's

    async def stop(self) -> None:
        self.stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.disconnect()


# -- Redis of a test's own -------------------------------------------------------------------


@dataclass
class RedisServer:
    """A redis-server on a port of its own that keeps nothing on disk: killed, it forgets."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
            "--appendonly", "no", "--dir", str(self.folder),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.05)
        raise AssertionError("redis-server did not start")

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
