"""kill -9 under load, Redis losing its data, SIGTERM in a backlog: nothing lost or repeated.

Each test runs real `hub serve` processes on loopback and prints what it counted.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from hub.bus import EventBus
from hub.crm_store.database import create_engine
from hub.crm_store.tables import TimelineEventRow
from hub.crm_store.unit_of_work import Store
from hub.dev.dovecot import Dovecot
from tests.conftest import POSTGRES_URL, eventually
from tests.faults.conftest import MakeOrganisation
from tests.faults.harness import (
    SMS_PATH,
    Agent,
    AgentCounts,
    HubProcess,
    RedisServer,
    hub_environment,
    send_sms_load,
    signed_sms,
)

MESSAGES = 2000
MAILS = 600
MAIL_ADDRESS = "support@hub.fault.test"


async def _events(url: str, provider: str) -> tuple[int, int]:
    """How many events a provider's messages made, and how many distinct provider ids."""
    store = Store(create_engine(url), EventBus())
    try:
        async with store.unit_of_work() as uow:
            where = TimelineEventRow.provider == provider
            total = await uow.session.scalar(select(func.count()).where(where))
            distinct = await uow.session.scalar(
                select(func.count(func.distinct(TimelineEventRow.provider_ref))).where(where)
            )
    finally:
        await store.close()
    return int(total or 0), int(distinct or 0)


@pytest.mark.parametrize("like", ["sqlite+aiosqlite:///unused.db", POSTGRES_URL])
async def test_kill_9_during_signed_sms_loses_and_duplicates_nothing(
    make_organisation: MakeOrganisation,
    processes: list[HubProcess],
    tmp_path: Path,
    like: str,
) -> None:
    org = await make_organisation(like, 0)
    env = hub_environment(org.database_url, tmp_path / "data")
    hub = HubProcess(env, tmp_path / "hub.log")
    processes.append(hub)
    await hub.start()
    load = asyncio.create_task(send_sms_load([hub.url], MESSAGES, 20, concurrency=32))
    await asyncio.sleep(7)  # about a third of the way
    before, _ = await _events(org.database_url, "twilio")
    await hub.kill()  # kill -9 with webhooks in flight: Twilio retries them
    await asyncio.sleep(1)
    await hub.start()
    sent = await load
    total, distinct = await _events(org.database_url, "twilio")
    print(  # the counts the issue asks to see
        "kill -9 under SMS load:",
        {
            "store": org.database_url.split(":", 1)[0],
            "messages": MESSAGES,
            "stored_when_killed": before,
            "answered": sent.sent,
            "requests": sent.attempts,
            "retried": sent.retried,
            "stored": total,
            "distinct": distinct,
        },
    )
    assert 0 < before < MESSAGES  # the kill came in the middle of the load
    assert sent.failed == []
    assert sent.retried > 0
    assert distinct == MESSAGES  # 0 lost
    assert total == MESSAGES  # 0 duplicated


@pytest.mark.postgres
async def test_redis_restarted_without_its_data_routes_again_within_5_s(
    make_organisation: MakeOrganisation,
    processes: list[HubProcess],
    tmp_path: Path,
) -> None:
    redis = RedisServer(tmp_path / "redis")
    await redis.start()
    try:
        org = await make_organisation(POSTGRES_URL, 1)
        env = hub_environment(
            org.database_url,
            tmp_path / "data",
            HUB_REDIS_URL=redis.url,
            HUB_ROUTING_POLICY=str(org.policy),
        )
        hub = HubProcess(env, tmp_path / "hub.log")
        processes.append(hub)
        await hub.start()
        counts = AgentCounts()
        agent = Agent(org.tokens[0], [hub.url], 0, 2, counts)
        await agent.start()

        async def text(n: int) -> None:
            params, headers = signed_sms(n)
            async with aiohttp.ClientSession() as session:
                for _ in range(100):
                    try:
                        async with session.post(
                            hub.url + SMS_PATH, data=params, headers=headers
                        ) as response:
                            if response.status == 200:
                                return
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            raise AssertionError(f"SMS {n} was never answered")

        async def wrapped(n: int) -> bool:
            return counts.wrapped >= n

        await text(1)
        await eventually(lambda: wrapped(1), seconds=10, what="the first contact routed")
        await redis.kill()  # gone, with every key: routing state, the bus, socket.io's channel
        await redis.start()  # back on the same port, empty
        back = time.monotonic()
        await text(2)
        try:
            await eventually(
                lambda: wrapped(2), seconds=15, what="a contact routed after Redis came back"
            )
        except AssertionError:
            print("agent saw:", counts, "\nhub log:\n", hub.tail(60))
            raise
        seconds = time.monotonic() - back
        await agent.stop()
        print(
            "Redis restarted without its data:", {"routed_again_after_seconds": round(seconds, 2)}
        )
        assert seconds <= 5
        assert "NOGROUP" not in hub.tail(200)[-2000:]  # not logged on and on
    finally:
        await redis.kill()


@pytest.mark.skipif(not Dovecot.available(), reason="needs Dovecot")
async def test_sigterm_in_an_email_backlog_exits_within_10_s_and_loses_nothing(
    make_organisation: MakeOrganisation,
    processes: list[HubProcess],
    tmp_path: Path,
) -> None:
    org = await make_organisation("sqlite+aiosqlite:///unused.db", 0)
    async with Dovecot.throwaway({MAIL_ADDRESS: "secret"}) as dovecot:
        mailbox = (
            '[{"name": "support", "address": "' + MAIL_ADDRESS + '", "queue": "support", '
            f'"imap_port": {dovecot.port}, "imap_security": "none", '
            f'"username": "{MAIL_ADDRESS}", "password": "secret", "smtp_port": 9, '
            '"smtp_security": "none", "batch_size": 20}]'
        )
        env = hub_environment(org.database_url, tmp_path / "data", HUB_EMAIL__MAILBOXES=mailbox)
        for n in range(MAILS):
            dovecot.deliver(
                MAIL_ADDRESS,
                (
                    f"From: Customer {n} <c{n}@example.org>\r\nTo: {MAIL_ADDRESS}\r\n"
                    f"Subject: question {n}\r\nMessage-ID: <backlog-{n}@example.org>\r\n"
                    f"\r\nQuestion number {n}.\r\n"
                ).encode(),
            )
        hub = HubProcess(env, tmp_path / "hub.log")
        processes.append(hub)
        await hub.start()

        async def some_stored() -> bool:
            return (await _events(org.database_url, "email"))[0] >= 60

        await eventually(some_stored, seconds=60, what="the backlog being read")
        at_signal, _ = await _events(org.database_url, "email")
        seconds = await hub.terminate()
        at_exit, _ = await _events(org.database_url, "email")
        await hub.start()  # the rest is read by the next start

        async def all_stored() -> bool:
            return (await _events(org.database_url, "email"))[0] >= MAILS

        await eventually(all_stored, seconds=120, what="the whole backlog stored")
        await asyncio.sleep(1)  # anything repeated would show now
        total, distinct = await _events(org.database_url, "email")
        print(
            "SIGTERM in an email backlog:",
            {
                "mails": MAILS,
                "stored_at_signal": at_signal,
                "stored_at_exit": at_exit,
                "read_after_signal": at_exit - at_signal,
                "exit_seconds": round(seconds, 2),
                "stored_in_the_end": total,
                "distinct": distinct,
            },
        )
        assert seconds <= 10
        assert hub.process is not None
        assert at_exit - at_signal <= 40  # the batch in hand (20), not the backlog
        assert (total, distinct) == (MAILS, MAILS)
        await hub.terminate()
