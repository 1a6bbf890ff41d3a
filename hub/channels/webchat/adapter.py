"""The web chat channel: a widget on the company's sites, talking socket.io to ``/chat``.

Visitors connect to the namespace (``namespace.py``); their messages go through the core like
any channel's. Agents' replies, the agent joining, the chat ending, queue positions and typing
go back to the visitor's room ``visitor:{id}``, which python-socketio's Redis manager reaches
across hub processes when scaled out. HTTP routes serve the widget script, each site's widget
settings, and uploads and downloads of files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from aiohttp import web

from hub.channels.base import (
    Capability,
    ChannelAdapter,
    DeliveryReceipt,
    MailOut,
    OutboundMessage,
)
from hub.channels.webchat.http import routes as chat_routes
from hub.channels.webchat.inbound import (
    PROVIDER,
    LeftMessage,
    Profile,
    claims_of,
    to_inbound_message,
)
from hub.channels.webchat.outbound import public_event
from hub.channels.webchat.visitors import VisitorIds
from hub.config import ChatSiteSettings, Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.events import InteractionAssigned, InteractionClosed, InteractionEnded
from hub.domain.interaction import Channel, Interaction
from hub.domain.timeline import Attachment
from hub.errors import ChannelConfigError, HubError, NotFound, ValidationError
from hub.services.chats import Chats
from hub.services.receive import Received

if TYPE_CHECKING:
    from hub.channels.webchat.namespace import ChatNamespace
    from hub.rate_limits import MemoryRateLimits, RateLimits
from hub.routing.service import RoutingService

log = structlog.get_logger(__name__)

WIDGET = Path(__file__).resolve().parents[2] / "agent_console" / "static" / "widget" / "widget.js"
WAITING_SECONDS = 5.0  # how often waiting visitors hear their place in line
HISTORY = 50  # messages shown to a returning visitor
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Magic numbers of the file types the widget may send, so a renamed file is refused.
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}
# What a reply's delivery status may become next (the widget tells delivered, then read).


def visitor_room(visitor: str) -> str:
    return f"visitor:{visitor}"


class WebchatChannel(ChannelAdapter):
    """Live chat with website visitors."""

    channel: ClassVar[Channel] = Channel.WEBCHAT
    capabilities: ClassVar[Capability] = (
        Capability.OUTBOUND | Capability.ATTACHMENTS | Capability.TYPING
    )
    sends_files: ClassVar[bool] = True
    max_body: ClassVar[int | None] = 20_000

    def __init__(
        self,
        settings: Settings,
        store: Store,
        routing: RoutingService | None,
        clock: Callable[[], datetime],
        email: MailOut | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        if not settings.webchat.sites:
            raise ChannelConfigError("the web chat needs at least one webchat.sites entry")
        from hub.channels.webchat.namespace import ChatNamespace

        self.settings = settings
        self.chats = Chats(store, clock)
        self.routing = routing
        self.clock = clock
        self.email = email
        self.limits = limits or MemoryRateLimits()
        self.sites = {site.id: site for site in settings.webchat.sites}
        data = Path(settings.data_dir)
        self.visitors = VisitorIds.from_file(data / "webchat-visitor.key")
        self.uploads = data / "webchat" / "uploads"
        self.namespace: ChatNamespace = ChatNamespace(self)
        self.waiting: dict[int, str] = {}  # interaction -> visitor, for those connected here
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        store.bus.subscribe(InteractionAssigned, self._on_assigned)
        store.bus.subscribe(InteractionEnded, self._on_ended)
        store.bus.subscribe(InteractionClosed, self._on_ended)

    async def start(self, sink: Any) -> None:
        await super().start(sink)
        self._stopping.clear()
        self._ticker = asyncio.create_task(self._tell_waiting(), name="webchat waiting")

    async def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            await self._ticker
            self._ticker = None
        await super().stop()

    # -- to the visitor ----------------------------------------------------------------------

    async def emit(self, event: str, data: Any, visitor: str) -> None:
        """Send to every tab the visitor has open (on any hub process)."""
        if self.namespace.server is None:
            return  # no realtime server in this process (a CLI command)
        await self.namespace.emit(event, data, room=visitor_room(visitor))

    async def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Push an agent's reply to the visitor; they tell us when it is delivered and read."""
        event, author = await self.chats.reply(message.event_id, message.author_id)
        await self.emit(
            "message",
            {"event": public_event(event, author) | {"status": "sent"}},
            message.to.value,
        )
        return DeliveryReceipt(PROVIDER, f"out:{event.id}", "sent")

    async def _on_assigned(self, event: InteractionAssigned) -> None:
        found = await self.chats.chat_of(event.interaction_id)
        if found is None:
            return
        self.waiting.pop(event.interaction_id, None)
        name = await self.chats.agent_name(event.agent_id)
        await self.emit("agent", {"interaction_id": event.interaction_id, "name": name}, found[1])

    async def _on_ended(self, event: InteractionEnded | InteractionClosed) -> None:
        found = await self.chats.chat_of(event.interaction_id)
        if found is None:
            return
        self.waiting.pop(event.interaction_id, None)
        interaction, visitor = found
        await self.emit(
            "ended",
            {"interaction_id": interaction.id, "rated": interaction.csat_score is not None},
            visitor,
        )

    async def tell_place(self, interaction_id: int, visitor: str) -> None:
        """Tell a waiting visitor their place in line and the estimated wait."""
        if self.routing is None:
            return
        place = await self.routing.place_in_line(interaction_id)
        if place is None:
            return
        await self.emit(
            "waiting",
            {
                "interaction_id": interaction_id,
                "position": place.position,
                "estimated_seconds": place.estimated_seconds,
            },
            visitor,
        )

    async def _tell_waiting(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=WAITING_SECONDS)
            for interaction_id, visitor in list(self.waiting.items()):
                try:
                    await self.tell_place(interaction_id, visitor)
                except HubError:
                    log.exception("could not tell a visitor their place", visitor=visitor)

    # -- from the agent's console ------------------------------------------------------------

    async def agent_typing(self, interaction_id: int, agent_id: int, typing: bool) -> None:
        """The agent is (or stopped) writing to the visitor."""
        found = await self.chats.chat_of(interaction_id)
        if found is None or found[0].assigned_user_id != agent_id:
            return
        name = await self.chats.agent_name(agent_id)
        await self.emit(
            "typing", {"interaction_id": interaction_id, "typing": typing, "name": name}, found[1]
        )

    async def agent_read(self, interaction_id: int, agent_id: int, event_id: int) -> None:
        """The agent has seen the visitor's messages up to event_id."""
        found = await self.chats.chat_of(interaction_id)
        if found is None or found[0].assigned_user_id != agent_id:
            return
        await self.emit("read", {"interaction_id": interaction_id, "up_to": event_id}, found[1])

    # -- what the visitor tells us -----------------------------------------------------------

    async def history(self, visitor: str) -> tuple[list[dict[str, Any]], Interaction | None]:
        """The visitor's chat messages (oldest first) and their open chat, if any."""
        chat, current = await self.chats.history(visitor, HISTORY)
        return [public_event(e, author) for e, author in reversed(chat)], current

    async def availability(self, site: ChatSiteSettings) -> dict[str, Any]:
        """Whether anyone can chat now: the queue's hours, and its team's agents signed in as
        available (busy ones included)."""
        if self.routing is None or self.routing.router is None:
            return {"open": False, "agents": 0}
        queue = self.routing.policy.queue_for(Channel.WEBCHAT, site.queue)
        if queue is None:
            return {"open": False, "agents": 0}
        is_open = queue.calendar is None or queue.calendar.is_open(self.clock())
        agents = await self.routing.state.agents(queue.team)
        available = sum(1 for a in agents if a.presence.value == "available")
        return {"open": is_open, "queue": queue.name, "agents": available}

    async def send_transcript(self, visitor: str, site_id: str, address: str) -> None:
        """Email the visitor their conversation (through the email channel's mailbox)."""
        if self.email is None:
            raise ValidationError("transcripts by email are not set up here (no mailbox)")
        site = self.sites[site_id]
        history, current = await self.history(visitor)
        if not history:
            raise ValidationError("there is no conversation to send yet")
        lines = [f"Your chat with {site.name or site.title}", ""]
        for message in history:
            who = "You" if message["direction"] == "inbound" else message["author"] or "Us"
            at = message["at"].strftime("%Y-%m-%d %H:%M UTC")
            lines.append(f"[{at}] {who}: {message['body']}")
        mailbox = self.email.mailbox_for(site.queue)
        await self.email.send_message(
            mailbox,
            to=address,
            subject=f"Your chat with {site.name or site.title}",
            body="\n".join(lines),
        )
        chat_id = None if current is None else current.id
        await self.chats.note_transcript(history[-1]["id"], chat_id, address)

    async def leave_message(self, session: dict[str, Any], left: LeftMessage) -> Received:
        """A message left while nobody can chat: email work when a mailbox can answer it."""
        site = self.sites[session["site"]]
        region = self.settings.default_region
        name, claims = claims_of(
            Profile(name=left.name, email=left.email), site, region, first=False
        )
        subject = f"Message left on the {site.name or site.id} chat"
        common: dict[str, Any] = {
            "visitor": session["visitor"],
            "site": site,
            "text": left.text,
            "client_id": f"left-{left.client_id}",
            "name": name,
            "claims": claims,
            "attachments": (),
            "now": self.clock(),
            "subject": subject,
        }
        if self.email is None:  # answered in the chat, where the visitor sees it on return
            message = to_inbound_message(
                **common, data={"offline": True, "email": claims[0].ref.value}
            )
        else:
            mailbox = self.email.mailbox_for(site.queue)
            message = to_inbound_message(
                **common,
                channel=Channel.EMAIL,
                queue=site.queue or mailbox.queue,
                # its own email thread: replies thread under it like any email's
                thread_key=f"<chat-left-{left.client_id}.{session['visitor']}@hub.invalid>",
                data={
                    "from": claims[0].ref.value,
                    "to": mailbox.address,
                    "mailbox": mailbox.name,
                    "offline": True,
                    "chat_visitor": session["visitor"],
                },
            )
        return await self.sink()(message)

    # -- files ---------------------------------------------------------------------------------

    def keep_upload(self, visitor: str, filename: str, content_type: str, data: bytes) -> str:
        """Check and keep a visitor's file (blocking: run in a thread); its upload id."""
        limits = self.settings.webchat
        if len(data) > limits.max_file_bytes:
            raise ValidationError(f"a file is at most {limits.max_file_bytes} bytes", field="file")
        if content_type not in limits.file_types:
            raise ValidationError(f"{content_type} files are not accepted here", field="file")
        magic = _MAGIC.get(content_type)
        if magic and not data.startswith(magic):
            raise ValidationError(f"the file is not really {content_type}", field="file")
        upload = secrets.token_hex(16)
        folder = self.uploads / visitor
        folder.mkdir(parents=True, exist_ok=True)
        safe = _SAFE.sub("_", filename)[:100] or "file"
        (folder / f"{upload}.bin").write_bytes(data)
        meta = {"filename": safe, "content_type": content_type, "size": len(data)}
        (folder / f"{upload}.json").write_text(json.dumps(meta))
        return upload

    def uploaded(self, visitor: str, upload: str) -> Attachment:
        """A file the visitor uploaded (only their own: the folder is theirs); blocking."""
        folder = self.uploads / visitor
        try:
            meta = json.loads((folder / f"{upload}.json").read_text())
        except (OSError, ValueError) as err:
            raise ValidationError(f"no upload {upload}", field="uploads") from err
        return Attachment(
            meta["filename"],
            meta["content_type"],
            size=meta["size"],
            path=str(folder / f"{upload}.bin"),
        )

    def site_of(self, site_id: object) -> ChatSiteSettings:
        if not isinstance(site_id, str) or site_id not in self.sites:
            raise NotFound(f"no chat site {site_id!r}")
        return self.sites[site_id]

    def origin_allowed(self, site: ChatSiteSettings, origin: str | None) -> bool:
        """Whether a page at origin may chat for the site (the hub's own pages always may)."""
        if origin is None:
            return False
        origin = origin.rstrip("/").lower()
        own = self.settings.public_url.lower()
        return origin in site.origins or origin == own

    def epoch_seconds(self) -> float:
        """The hub's clock as the rate limits count it."""
        return self.clock().timestamp()

    def routes(self) -> list[web.RouteDef]:
        return chat_routes(self)

    def realtime_namespace(self) -> Any:
        return self.namespace

    def allows_origin(self, origin: str) -> bool:
        return any(self.origin_allowed(site, origin) for site in self.sites.values())
