"""The channel adapter contract.

An adapter verifies and parses what its provider sends, hands the core a provider-neutral
``InboundMessage``, and sends replies with ``send``. What a channel can do is said by its
capability flags, so the core never asks ``if channel == "email"``.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import Flag, auto
from typing import Any, ClassVar, Protocol

from aiohttp import web

from hub.config import FaxGatewaySettings, MailboxSettings
from hub.crm_store.unit_of_work import Store
from hub.domain.identity import IdentityRef
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.timeline import Attachment, TimelineEvent
from hub.errors import ChannelNotReady
from hub.services.receive import Received

InboundSink = Callable[[InboundMessage], Awaitable[Received]]
# How long a provider's status callback waits for the message it is about (seconds, in turn).
RECORD_WAITS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
# How long stopping waits for work a channel started (downloads): what is left is owed and
# done at the next start. Short enough for the whole hub to stop within 10 s of SIGTERM.
STOP_SECONDS = 4.0


class Capability(Flag):
    """What a channel can do."""

    NONE = 0
    OUTBOUND = auto()  # the hub can write back to the customer
    ATTACHMENTS = auto()
    TYPING = auto()
    VOICE = auto()
    REPLY_WINDOW_24H = auto()  # replies only within 24 hours of the customer's last message


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A reply or a first message from the hub to a customer."""

    interaction_id: int
    to: IdentityRef
    body: str
    subject: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_from: str | None = None  # our address the customer last wrote to, if any
    html: str | None = None  # a rich reply (email), sanitized
    event_id: int | None = None  # the timeline event that records it
    author_id: int | None = None  # the agent who wrote it


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What the provider said when it took an outbound message."""

    provider: str
    provider_ref: str
    status: str


class ChannelAdapter(abc.ABC):
    """One channel's edge: inbound to the core, outbound to the provider."""

    channel: ClassVar[Channel]
    capabilities: ClassVar[Capability]
    max_body: ClassVar[int | None] = None  # the longest reply text the channel carries
    sends_files: ClassVar[bool] = False  # whether replies may carry attachments
    _sink: InboundSink | None = None
    _tasks: set[asyncio.Task[None]] | None = None

    async def start(self, sink: InboundSink) -> None:
        """Begin taking inbound messages and handing them to sink."""
        self._sink = sink

    def stop_intake(self) -> None:  # noqa: B027  (channels that read by themselves stop here)
        """Take no more new work (SIGTERM): what is in hand finishes, the rest waits."""

    async def stop(self) -> None:
        """Stop taking inbound messages, let work after commit finish, release connections."""
        self._sink = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_SECONDS)

    @property
    def running(self) -> bool:
        """Whether the channel is started (and not stopped)."""
        return self._sink is not None

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work after the answer (media downloads): the stored event is already safe."""
        if self._tasks is None:
            self._tasks = set()
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def sink(self) -> InboundSink:
        """Where inbound messages go; ChannelNotReady until the channel is started."""
        if self._sink is None:
            raise ChannelNotReady(f"the {self.channel.value} channel is not started")
        return self._sink

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Hand an outbound message to the provider."""

    def routes(self) -> list[web.RouteDef]:
        """HTTP routes (webhooks) the channel serves; none by default."""
        return []

    @staticmethod
    async def sent_message(store: Store, provider: str, provider_ref: str) -> TimelineEvent | None:
        """The outbound message a provider's status callback is about, waiting a moment for it.

        Providers can call back before the hub's send request has its answer, so before the
        provider's id for the message is recorded: a status then waits rather than is lost.
        """
        for pause in RECORD_WAITS:
            await asyncio.sleep(pause)
            async with store.unit_of_work() as uow:
                found = await uow.timeline.by_provider_ref(provider, provider_ref)
            if found is not None:
                return found
        return None

    def realtime_namespace(self) -> Any:
        """A socket.io namespace the channel's customers connect to (web chat); none by default."""
        return None

    def allows_origin(self, origin: str) -> bool:
        """Whether browsers on origin may reach the hub's realtime server for this channel."""
        return False

    async def agent_typing(self, interaction_id: int, agent_id: int, typing: bool) -> None:  # noqa: B027
        """The agent is typing to the customer (channels with Capability.TYPING tell them)."""

    async def agent_read(self, interaction_id: int, agent_id: int, event_id: int) -> None:  # noqa: B027
        """The agent has read the customer's messages up to event_id."""


# -- ports one channel offers another (no channel imports another) ------------------------------


class MailOut(Protocol):
    """What the web chat asks of the email channel: mail that answers nothing (a transcript,
    a message left while nobody was there), from the mailbox of a queue."""

    def mailbox_for(self, queue: str | None) -> MailboxSettings:
        """The mailbox whose mail feeds the queue, else the first one."""
        ...

    async def send_message(
        self, mailbox: MailboxSettings, *, to: str, subject: str, body: str
    ) -> str:
        """Send it; its Message-ID."""
        ...


class FaxGateways(Protocol):
    """What the email channel asks of the fax channel: whether mail comes from a
    fax-to-email gateway, and if so the fax it carries."""

    def gateway_for(self, address: str) -> FaxGatewaySettings | None:
        """The gateway that sends mail from this address, if any."""
        ...

    async def take_gateway_mail(
        self,
        gateway: FaxGatewaySettings,
        *,
        message_id: str,
        subject: str,
        text: str,
        attachments: tuple[Attachment, ...],
    ) -> Received | None:
        """The gateway's mail as the fax it carries; None when it is not one."""
        ...
