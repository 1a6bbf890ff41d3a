"""Reading a mailbox with aioimaplib: catch up by UID in batches, then IDLE (or poll).

- The folder's UIDVALIDITY and the last UID taken are kept in the store (``mailbox_cursors``)
  and advanced after each batch is stored, so a restart neither skips nor re-reads mail; a
  message stored twice anyway (a crash inside a batch, a new UIDVALIDITY) is a no-op by its
  Message-ID.
- Where the server has IDLE, the reader waits in IDLE (re-issued every ``IDLE_SECONDS``, under
  the 29 minutes RFC 2177 allows) and fetches as soon as the server pushes EXISTS; otherwise it
  polls every ``poll_seconds``. Every IMAP call has a timeout (aioimaplib's IDLE never returns
  if the server goes away, its issue #110).
- A dropped connection or a restarted server is retried with exponential backoff, up to
  ``MAX_BACKOFF`` seconds; wrong credentials too (an admin may fix them), loudly logged.
- Security ``tls`` is implicit TLS (993), ``starttls`` upgrades a plain connection with
  STARTTLS (143; aioimaplib has no STARTTLS of its own, so the transport is upgraded with
  ``loop.start_tls``), ``none`` is for loopback test servers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import aioimaplib
import structlog

from hub.channels.email.inbound import Fetched, Outcome
from hub.config import MailboxSettings
from hub.errors import HubError
from hub.services.mail import MailRecords

log = structlog.get_logger(__name__)

IDLE_SECONDS = 25 * 60
CALL_SECONDS = 60.0
HELLO_SECONDS = 15.0
MAX_BACKOFF = 60.0
FIRST = asyncio.FIRST_COMPLETED
T = TypeVar("T")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCH_UID = re.compile(rb"\bUID (\d+)")
_LITERAL = re.compile(rb"\{(\d+)\}$")


class MailboxError(Exception):
    """The server refused something the reader needs (login, select, fetch)."""


def tls_context(mailbox: MailboxSettings) -> ssl.SSLContext:
    """Verify the server's certificate, unless told it is a test server's own."""
    context = ssl.create_default_context()
    if not mailbox.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class MailboxReader:
    """One mailbox's loop: connect, catch up, wait for more; again after any failure."""

    def __init__(
        self,
        mailbox: MailboxSettings,
        records: MailRecords,
        take: Callable[[list[Fetched]], Awaitable[list[Outcome]]],
    ) -> None:
        self.mailbox = mailbox
        self._records = records
        self._take = take
        self._stopping = asyncio.Event()
        self.connected = asyncio.Event()  # set while a session is up (tests wait on it)
        self.idling = asyncio.Event()  # set while waiting in IDLE
        self.taken: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        self.failures = 0
        self._lost = asyncio.Event()  # the current connection's end

    def total(self) -> int:
        """Messages taken so far, whatever became of them."""
        return sum(self.taken.values())

    def stop(self) -> None:
        """Ask the loop to end at its next wait."""
        self._stopping.set()

    async def run(self) -> None:
        """Read until stopped, reconnecting with backoff."""
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                await self._session()
                backoff = 1.0
            except (OSError, TimeoutError, MailboxError, aioimaplib.AioImapException) as err:
                if self.connected.is_set():
                    backoff = 1.0  # it worked until now: try again soon
                self.failures += 1
                log.warning(
                    "mailbox connection failed; retrying",
                    mailbox=self.mailbox.name,
                    error=str(err) or type(err).__name__,
                    retry_in=backoff,
                )
            except HubError as err:
                # The store failed under a batch (the database went away, a race lost): the
                # cursor did not move, so the batch is read again, and storing is idempotent.
                # Never let it end the reader: the mailbox would stop being read for good.
                self.failures += 1
                log.error(
                    "mailbox batch not stored; reading it again",
                    mailbox=self.mailbox.name,
                    error=err.message,
                    retry_in=backoff,
                )
            finally:
                self.connected.clear()
                self.idling.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _session(self) -> None:
        client = await self._connect()
        lost = self._lost
        try:
            uidvalidity = await self._select(client)
            self.connected.set()
            idle = "IDLE" in client.protocol.capabilities
            while not self._stopping.is_set():
                await self._catch_up(client, uidvalidity)
                if idle:
                    await self._idle(client)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self.mailbox.poll_seconds)
        finally:
            if not lost.is_set():  # a lost connection has nobody to say goodbye to
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.logout(), 5)

    async def _call(self, work: Awaitable[T], seconds: float = CALL_SECONDS) -> T:
        """Await an IMAP call, giving up when the connection drops or the time is up.

        aioimaplib waits forever for an answer that a closed connection will never give.
        """
        task = asyncio.ensure_future(work)
        gone = asyncio.ensure_future(self._lost.wait())
        done, _ = await asyncio.wait({task, gone}, timeout=seconds, return_when=FIRST)
        gone.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise MailboxError(
            "the server closed the connection" if self._lost.is_set() else "the server timed out"
        )

    async def _connect(self) -> aioimaplib.IMAP4:
        mailbox = self.mailbox
        if mailbox.imap_security == "tls":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                mailbox.imap_host,
                mailbox.imap_port,
                timeout=CALL_SECONDS,
                ssl_context=tls_context(mailbox),
            )
        else:
            client = aioimaplib.IMAP4(mailbox.imap_host, mailbox.imap_port, timeout=CALL_SECONDS)
        lost = self._lost = asyncio.Event()
        client.protocol.conn_lost_cb = lambda _error: lost.set()
        try:
            await self._call(client.wait_hello_from_server(), HELLO_SECONDS)
            if mailbox.imap_security == "starttls":
                await self._starttls(client)
            response = await self._call(
                client.login(mailbox.username, mailbox.password.get_secret_value())
            )
            if response.result != "OK":
                raise MailboxError(f"login refused for {mailbox.username}: {_text(response.lines)}")
        except BaseException:
            if client.protocol.transport is not None:  # no half-open connection left behind
                client.protocol.transport.close()
            raise
        return client

    async def _starttls(self, client: aioimaplib.IMAP4) -> None:
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise MailboxError("the server does not offer STARTTLS")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self._call(protocol.execute(command))
        if response.result != "OK":
            raise MailboxError(f"STARTTLS refused: {_text(response.lines)}")
        transport = await protocol.loop.start_tls(
            protocol.transport,
            protocol,
            tls_context(self.mailbox),
            server_hostname=self.mailbox.imap_host,
        )
        protocol.transport = transport
        await self._call(protocol.capability())  # they change after TLS

    async def _select(self, client: aioimaplib.IMAP4) -> int:
        response = await self._call(client.select(self.mailbox.folder))
        if response.result != "OK":
            raise MailboxError(f"cannot open {self.mailbox.folder}: {_text(response.lines)}")
        for line in response.lines:
            found = _UIDVALIDITY.search(bytes(line))
            if found:
                return int(found.group(1))
        raise MailboxError(f"{self.mailbox.folder} has no UIDVALIDITY")

    async def _catch_up(self, client: aioimaplib.IMAP4, uidvalidity: int) -> None:
        """Fetch everything after the last UID taken, a batch at a time."""
        cursor = await self._records.cursor(self.mailbox.name)
        last = cursor.last_uid if cursor and cursor.uidvalidity == uidvalidity else 0
        if cursor is not None and cursor.uidvalidity != uidvalidity:
            log.warning(
                "UIDVALIDITY changed: reading the folder again (known mail is skipped)",
                mailbox=self.mailbox.name,
                was=cursor.uidvalidity,
                now=uidvalidity,
            )
        response = await self._call(client.uid_search(f"UID {last + 1}:*", charset=None))
        if response.result != "OK":
            raise MailboxError(f"UID SEARCH failed: {_text(response.lines)}")
        uids = sorted(int(n) for n in bytes(response.lines[0]).split() if int(n) > last)
        for batch in _chunks(uids, self.mailbox.batch_size):
            if self._stopping.is_set():
                return  # the hub is stopping: the rest is read at the next start
            fetched = await self._call(
                client.uid("fetch", f"{batch[0]}:{batch[-1]}", "(UID BODY.PEEK[])"),
                CALL_SECONDS * 5,
            )
            if fetched.result != "OK":
                raise MailboxError(f"UID FETCH failed: {_text(fetched.lines)}")
            taking = [
                Fetched(self.mailbox, uidvalidity, uid, raw)
                for uid, raw in _messages(fetched.lines)
                if uid > last
            ]
            for outcome in await self._take(taking):
                self.taken[outcome] += 1
            highest = max([last, batch[-1], *(f.uid for f in taking)])  # expunged: not waited for
            await self._records.advance(self.mailbox.name, uidvalidity, highest)
            last = highest

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """Wait in IDLE until the server says something changed (or it is time to renew)."""
        idle = await self._call(client.idle_start(timeout=IDLE_SECONDS))
        self.idling.set()
        try:
            stop = asyncio.ensure_future(self._stopping.wait())
            push = asyncio.ensure_future(client.wait_server_push(timeout=IDLE_SECONDS + 30))
            try:
                await self._call(asyncio.wait({stop, push}, return_when=FIRST), IDLE_SECONDS + 60)
            finally:
                stop.cancel()
                push.cancel()
            said = push.result() if push.done() and not push.cancelled() else []
            if isinstance(said, list) and any(b"BYE" in bytes(line) for line in said):
                raise MailboxError("the server said BYE")
        finally:
            self.idling.clear()
        client.idle_done()
        await self._call(idle)
        await self._call(client.noop())  # without it new UIDs are missed


def _messages(lines: list[bytes | bytearray]) -> Iterator[tuple[int, bytes]]:
    """(UID, message) pairs from a UID FETCH's lines: a header line, its literal, a close.

    The UID comes before the literal (``* 3 FETCH (UID 7 BODY[] {1234}``) or, from some
    servers, after it (``BODY[] {1234}`` ... `` UID 7)``).
    """
    uid: int | None = None
    literal: bytes | None = None
    expect_literal = False
    for line in lines:
        data = bytes(line)
        if expect_literal:
            expect_literal = False
            if uid is not None:
                yield uid, data
                uid = None
            else:
                literal = data
        elif b"FETCH" in data and _LITERAL.search(data):
            found = _FETCH_UID.search(data)
            uid = int(found.group(1)) if found else None
            expect_literal = True
        elif literal is not None:
            found = _FETCH_UID.search(data)
            if found:
                yield int(found.group(1)), literal
            literal = None


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(lines: list[bytes | bytearray]) -> str:
    return " ".join(bytes(line).decode("utf-8", "replace") for line in lines)[:200]
