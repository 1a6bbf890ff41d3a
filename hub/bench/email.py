"""`hub bench email`: messages per second ingested from a backlog in a real Dovecot.

A throwaway Dovecot (Debian's dovecot-imapd, run as root) gets a backlog of real-world-shaped
mail delivered to its maildir: new conversations from many senders, and replies that thread by
References, in several charsets. Then the hub's email channel starts on a scratch database like
the configured one and reads it all: UID FETCH in batches, parse, thread, commit, route. The
figure is messages stored per second from the reader's start to the last commit, and how long
the first message took.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from hub.bootstrap import build_hub
from hub.channels.email.adapter import EmailChannel
from hub.config import EmailSettings, MailboxSettings, Settings
from hub.crm_store.scratch import scratch_database
from hub.dev.dovecot import Dovecot

ADDRESS = "support@bench.example.com"
PASSWORD = "bench-secret"  # noqa: S105  (a throwaway server's)
BODIES = (
    ("utf-8", "Hello, my order {n} has not arrived. Could you check? Thanks, Ann"),
    ("iso-8859-1", "Grüße aus München, Bestellung {n} fehlt noch."),
    ("gb18030", "您好，订单 {n} 还没有到，请帮忙查一下。"),
    ("shift_jis", "注文 {n} がまだ届いていません。"),
)


def backlog_message(n: int, senders: int) -> bytes:
    """Message n of the backlog: every third one replies to an earlier one of its sender."""
    charset, text = BODIES[n % len(BODIES)]
    sender = n % senders
    headers = [
        f"From: Customer {sender} <customer{sender}@example.org>",
        f"To: {ADDRESS}",
        f"Subject: Order {sender}",
        f"Message-ID: <bench-{n}@example.org>",
        "Date: Mon, 23 Nov 2026 09:00:00 +0000",
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset}",
        "Content-Transfer-Encoding: 8bit",
    ]
    if n % 3 == 2 and n >= senders:
        earlier = n - senders
        headers += [f"In-Reply-To: <bench-{earlier}@example.org>"]
        headers += [f"References: <bench-{earlier}@example.org>"]
    head = "\r\n".join(headers).encode("ascii")
    return head + b"\r\n\r\n" + text.format(n=n).encode(charset) + b"\r\n"


async def run_email_bench(
    settings: Settings,
    *,
    messages: int,
    senders: int,
    batch_size: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Deliver the backlog, then time the hub reading it."""
    if not Dovecot.available():
        raise RuntimeError("needs Debian's dovecot-imapd, the vmail user and root")
    result: dict[str, Any] = {"messages": messages, "senders": senders, "batch_size": batch_size}
    async with Dovecot.throwaway({ADDRESS: PASSWORD}) as dovecot:
        progress(f"delivering {messages} messages to Dovecot")
        for n in range(messages):
            dovecot.deliver(ADDRESS, backlog_message(n, senders))
        async with scratch_database(settings.database_url, prefix="hub_bench_email") as url:
            mailbox = MailboxSettings(
                name="bench",
                address=ADDRESS,
                imap_port=dovecot.port,
                imap_security="none",
                username=ADDRESS,
                password=SecretStr(PASSWORD),
                batch_size=batch_size,
            )
            hub = await build_hub(
                settings.model_copy(
                    update={
                        "database_url": url,
                        "log_level": "WARNING",
                        "data_dir": str(dovecot.folder.parent / "data"),
                        "email": EmailSettings(mailboxes=[mailbox]),
                    }
                )
            )
            result["database"] = hub.store.dialect
            channel = next(c for c in hub.channels if isinstance(c, EmailChannel))
            progress(f"reading the backlog into {hub.store.dialect}")
            started = time.perf_counter()
            await hub.start()
            try:
                reader = channel.readers[0]
                first = None
                while reader.total() < messages:
                    if first is None and reader.total():
                        first = time.perf_counter() - started
                    await asyncio.sleep(0.01)
                seconds = time.perf_counter() - started
            finally:
                await hub.stop()
            result["seconds"] = round(seconds, 2)
            result["messages_per_second"] = round(messages / seconds, 1)
            result["first_message_seconds"] = round(first or seconds, 3)
            result["outcomes"] = {k.value: v for k, v in reader.taken.items()}
    return result
