"""The console's realtime protocol on python-socketio (docs/realtime.md).

Two namespaces on the hub's own aiohttp app (path ``/socket.io/``):

- ``/agent``: agents connect with ``auth={"token": ...}``; each joins the room ``agent:{id}``.
  They send ``state``, ``accept``, ``decline`` and ``wrapup`` (each acknowledged with
  ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code", "message"}}``) and receive
  ``hello`` (their state and the offers ringing now, so a reconnect loses nothing), ``offer``
  (the interaction and the unified customer record), ``offer_withdrawn``, ``assigned``,
  ``message`` (each new inbound event on their interactions) and ``state``.
- ``/supervisor``: supervisors and admins receive ``queues`` (every queue's live figures and
  15/60-minute windows) and ``agents`` (every agent's presence and load), on connect and at
  most once a second while things change.

Events come from the hub's event bus, after commit. With Redis configured, emits go through
python-socketio's Redis manager, so a client connected to one hub process hears what another
process did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import socketio
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.agent_console.presenters import event_json, interaction_json, record_json
from hub.agent_console.routes.routing import StateBody, agent_json
from hub.batches import Batcher
from hub.channels.base import Capability, ChannelAdapter
from hub.domain.events import (
    AgentStateChanged,
    Event,
    InteractionAbandoned,
    InteractionAssigned,
    InteractionClosed,
    InteractionQueued,
    InteractionReceived,
    OfferMade,
    OfferWithdrawn,
    TimelineEventAdded,
    TimelineEventUpdated,
)
from hub.domain.interaction import InteractionState
from hub.domain.users import Permission, Principal
from hub.errors import AuthError, HubError
from hub.http import GuardedNamespace, Id, failure, public, validate
from hub.json_writer import json_bytes, json_default
from hub.routing.reports import queue_report
from hub.services import customers, interactions
from hub.services.accounts import authenticate

if TYPE_CHECKING:
    from hub.bootstrap import Hub

log = structlog.get_logger(__name__)
RECORD_EVENTS = 20  # the timeline in an offer's customer record
BOARD_SECONDS = 1.0  # the supervisor board is sent at most this often
SUPERVISORS = "supervisors"
COMPACT = (",", ":")
# Sockets whose connect reads the store at once. A shift's agents connect together: hundreds
# of reads at once overflowed PostgreSQL's pool, whose overflow connections close when they
# come back, so the connects kept opening connections (200 for 500 agents).
HANDSHAKES = 8


class _Json:
    """python-socketio's JSON, with the API's dates and sets."""

    @staticmethod
    def dumps(data: Any, **kwargs: Any) -> str:
        # python-socketio asks for compact separators, which is how orjson writes anyway.
        if set(kwargs) <= {"separators"} and kwargs.get("separators", COMPACT) == COMPACT:
            return json_bytes(data).decode()
        return json.dumps(data, default=json_default, ensure_ascii=False, **kwargs)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        try:
            return json.loads(text, **kwargs)
        except RecursionError as err:  # 50,000 nested [: a bad packet, like any other
            raise ValueError("the packet is nested too deeply") from err


class WorkMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interaction_id: Id


class TypingMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interaction_id: Id
    typing: bool


class ReadMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interaction_id: Id
    event_id: Id


class WrapUpMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interaction_id: Id
    disposition: str | None = Field(default=None, max_length=100)


def _ring(expires_at: datetime | str, now: datetime) -> dict[str, Any]:
    """When an offer stops ringing, and the seconds left by the hub's clock (browsers' differ)."""
    until = datetime.fromisoformat(expires_at) if isinstance(expires_at, str) else expires_at
    return {"expires_at": until, "ring_seconds": max(0.0, (until - now).total_seconds())}


async def _principal(hub: Hub, auth: object, permission: Permission) -> tuple[Principal, int]:
    """Who a socket's connect packet says it is, and the token's id (checked again later)."""
    token = auth.get("token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        raise AuthError('connect with auth={"token": "..."}')
    principal, token_id = await authenticate(hub.store, token, hub.clock())
    principal.require(permission)
    return principal, token_id


@dataclass(frozen=True, slots=True)
class _Socket:
    """A console socket connected to this process, and the token it came in with."""

    namespace: str
    token_id: int
    principal: Principal


class Realtime:
    """The socket.io server, fed by the bus."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        settings = hub.settings
        manager = None
        if settings.redis_url:
            manager = socketio.AsyncRedisManager(
                settings.redis_url, channel=f"{settings.redis_prefix}socketio"
            )
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=manager,
            json=_Json,
            logger=False,
            cors_allowed_origins=self._origin_allowed,
        )
        self.sio.register_namespace(AgentNamespace(self))
        self.sio.register_namespace(SupervisorNamespace(self))
        for channel in hub.channels:
            namespace = channel.realtime_namespace()
            if namespace is not None:
                self.sio.register_namespace(namespace)
        self._board_due = asyncio.Event()
        self.handshakes = asyncio.Semaphore(HANDSHAKES)
        self.supervisors = 0  # connected to this process
        self.agent_connections = 0  # to /agent in this process
        self._board: asyncio.Task[None] | None = None
        self._sockets: dict[str, _Socket] = {}  # sid -> its token, on this process
        self._sessions: asyncio.Task[None] | None = None
        # Offers made together (a routing batch) reach the lanes together: read them once.
        self._offers: Batcher[OfferMade, None] = Batcher(
            self._push_offers, max_batch=64, max_wait=0, name="offer-pushes"
        )
        self._timeline_pushes: Batcher[TimelineEventAdded | TimelineEventUpdated, None] = Batcher(
            self._push_events, max_batch=128, max_wait=0, name="timeline-pushes"
        )
        bus = hub.bus
        bus.subscribe(OfferMade, self._on_offer)
        bus.subscribe(OfferWithdrawn, self._on_withdrawn)
        bus.subscribe(InteractionAssigned, self._on_assigned)
        bus.subscribe(TimelineEventAdded, self._on_timeline)
        bus.subscribe(TimelineEventUpdated, self._on_timeline)
        for changed in (
            InteractionQueued,
            InteractionAssigned,
            InteractionAbandoned,
            InteractionClosed,
            AgentStateChanged,
            InteractionReceived,
        ):
            bus.subscribe(changed, self._on_change)
        bus.subscribe(AgentStateChanged, self._on_agent_state)

    def _origin_allowed(self, origin: str | None, environ: dict[str, Any]) -> bool:
        """Browsers may connect from the hub's own pages, and from sites a channel allows."""
        if not origin:
            return False  # not a browser's cross-origin request: no CORS header to give
        own = {self.hub.settings.public_url.lower()}
        if environ.get("HTTP_HOST"):
            own.add(f"{environ.get('wsgi.url_scheme', 'http')}://{environ['HTTP_HOST']}".lower())
        if origin.rstrip("/").lower() in own:
            return True
        return any(channel.allows_origin(origin) for channel in self.hub.channels)

    def attach(self, app: web.Application) -> None:
        """Serve socket.io on the app (``/socket.io/``); the namespaces authenticate at connect."""

        @public  # the token comes in socket.io's connect packet, checked by the namespace
        async def socket_io(request: web.Request) -> web.StreamResponse:
            response: web.StreamResponse = await self.sio.handle_request(request)
            return response

        for method in ("GET", "POST", "OPTIONS"):
            app.router.add_route(method, "/socket.io/", socket_io)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)

    async def _start(self, app: web.Application) -> None:
        self._board = asyncio.create_task(self._board_loop(), name="supervisor board")
        self._sessions = asyncio.create_task(self._sessions_loop(), name="console sessions")

    async def _stop(self, app: web.Application) -> None:
        for task in (self._board, self._sessions):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- the sockets' sessions ---------------------------------------------------------------

    async def joined(self, sid: str, namespace: str, principal: Principal, token_id: int) -> None:
        """A console socket connected with this token: watched until it goes."""
        self._sockets[sid] = _Socket(namespace, token_id, principal)
        if namespace == "/agent" and self.hub.routing is not None:
            await self.hub.routing.state.seen([principal.user_id], self.hub.clock())

    def left(self, sid: str) -> None:
        """A console socket went away."""
        self._sockets.pop(sid, None)

    async def _sessions_loop(self) -> None:
        every = self.hub.settings.session_check_seconds
        while True:
            await asyncio.sleep(every)
            try:
                await self.check_sessions()
            except Exception:  # the database or Redis away for a moment: try again next time
                log.exception("could not check the consoles' sessions")

    async def check_sessions(self) -> None:
        """End sockets whose token stopped being good; tell routing which agents are here.

        A token revoked by logout, expired, or whose user was deactivated or given another
        role ends its sockets within ``session_check_seconds``. Each hub process checks its
        own sockets, so this holds scaled out without any message between processes.
        """
        sockets = dict(self._sockets)
        if not sockets:
            return
        now = self.hub.clock()
        async with self.hub.store.unit_of_work() as uow:
            live = await uow.accounts.live_tokens({s.token_id for s in sockets.values()}, now)
        for sid, socket in sockets.items():
            role = live.get(socket.token_id)
            if role is None or role is not socket.principal.role:
                reason = "logged out" if role is None else "your role changed; log in again"
                self.left(sid)
                await self.sio.emit("session_ended", {"reason": reason}, to=sid,
                                    namespace=socket.namespace)  # fmt: skip
                await self.sio.disconnect(sid, namespace=socket.namespace)
        here = {
            s.principal.user_id
            for sid, s in sockets.items()
            if s.namespace == "/agent" and sid in self._sockets
        }
        if here and self.hub.routing is not None:
            await self.hub.routing.state.seen(here, now)

    # -- from the bus to the agents ----------------------------------------------------------

    async def offer_payloads(
        self, offers: Sequence[tuple[int, int, int]]
    ) -> dict[tuple[int, int], dict[str, Any]]:
        """Offers (agent, interaction, customer) as their screen pops: the interaction and
        its customer's unified record, read together; keyed by (agent, interaction)."""
        found = await customers.offered_work(self.hub.store, offers, events=RECORD_EVENTS)
        return {
            key: {
                "interaction": interaction_json(work.interaction),
                "customer": record_json(work.record),
            }
            for key, work in found.items()
        }

    async def _on_offer(self, event: OfferMade) -> None:
        await self._offers.submit(event)

    async def _push_offers(self, events: list[OfferMade]) -> list[None]:
        """Offers made together are popped together: one read of their agents and records."""
        payloads = await self.offer_payloads(
            [(e.agent_id, e.interaction_id, e.customer_id) for e in events]
        )
        routing = self.hub.routing
        pops = []
        for event in events:
            payload = payloads.get((event.agent_id, event.interaction_id))
            if payload is None:
                continue
            # The ring counts from now, when the agent is told, however late the event came.
            until = await routing.rang(event.interaction_id, event.agent_id) if routing else None
            if routing is not None and until is None:
                continue  # withdrawn or taken meanwhile: nothing to ring
            payload |= _ring(until or event.expires_at, self.hub.clock())
            pops.append(self.to_agent(event.agent_id, "offer", payload))
        # Sent side by side: each waits on its own sockets, not on the offers before it.
        await asyncio.gather(*pops)
        return [None] * len(events)

    async def to_agent(self, agent_id: int, event: str, data: Any) -> None:
        """Push to every console of an agent (scaled out, through Redis to the other processes;
        the sockets this process holds are reached directly, whatever Redis does)."""
        await self.sio.emit(event, data, room=f"agent:{agent_id}", namespace="/agent")

    async def _on_withdrawn(self, event: OfferWithdrawn) -> None:
        await self.to_agent(
            event.agent_id,
            "offer_withdrawn",
            {"interaction_id": event.interaction_id, "reason": event.reason},
        )

    async def _on_assigned(self, event: InteractionAssigned) -> None:
        await self.to_agent(
            event.agent_id,
            "assigned",
            {"interaction_id": event.interaction_id, "customer_id": event.customer_id},
        )

    async def _on_timeline(self, event: TimelineEventAdded | TimelineEventUpdated) -> None:
        """Anything new or changed on held work (a message, a call note, a delivery status)."""
        if not (self.agent_connections or self.hub.settings.redis_url) or not event.interaction_id:
            return  # nobody to tell in this process
        if isinstance(event, TimelineEventAdded) and event.unheld:
            return  # new or waiting work: no console shows it yet
        await self._timeline_pushes.submit(event)

    async def _push_events(
        self, events: list[TimelineEventAdded | TimelineEventUpdated]
    ) -> list[None]:
        """Push events to the agents holding their interactions, read together.

        Batches are handled one after another and each reads the events as they are now, so
        two changes of one event (sent, then delivered) never leave the older one pushed last.
        """
        wanted = {e.event_id: e.interaction_id for e in events if e.interaction_id}
        async with self.hub.store.reading() as uow:
            held = await uow.interactions.holders(wanted.values())
            stored = await uow.timeline.events([e for e, i in wanted.items() if i in held])
        for event_id, interaction_id in wanted.items():
            found = stored.get(event_id)
            agent_id = held.get(interaction_id)
            if found is not None and agent_id is not None:
                await self.to_agent(
                    agent_id,
                    "message",
                    {"interaction_id": interaction_id, "event": event_json(found)},
                )
        return [None] * len(events)

    async def _on_agent_state(self, event: AgentStateChanged) -> None:
        await self.to_agent(
            event.agent_id, "state", {"presence": event.presence, "reason": event.reason}
        )

    # -- the supervisor board -------------------------------------------------------------------

    async def _on_change(self, event: Event) -> None:
        self._board_due.set()

    async def _board_loop(self) -> None:
        """Send the board to this process's supervisors, at most once a second.

        In one process it goes out when something changed. Scaled out, the events that change
        it are handled by whichever process reads them, so each process with supervisors
        connected sends its own a fresh board every second (to its own sockets only: the
        others do the same for theirs), and a process without any computes nothing.
        """
        scaled_out = bool(self.hub.settings.redis_url)
        while True:
            if not scaled_out:
                await self._board_due.wait()
                self._board_due.clear()
            if self.supervisors:
                try:
                    for event, data in (
                        ("queues", await self.board()),
                        ("agents", await self.agents()),
                    ):
                        await self.sio.emit(
                            event,
                            data,
                            room=SUPERVISORS,
                            namespace="/supervisor",
                            ignore_queue=True,
                        )
                except Exception:  # whatever failed, the loop must live to send the next one
                    log.exception("could not send the supervisor board")
            await asyncio.sleep(BOARD_SECONDS)

    def routing_health(self) -> dict[str, Any] | None:
        """Whether routing keeps up (routing.upkeep), as last checked."""
        routing = self.hub.routing
        health = routing.upkeep.health if routing is not None else None
        return health.as_dict() if health is not None else None

    async def board(self) -> list[dict[str, Any]]:
        """Every queue's live figures and rolling windows."""
        routing = self.hub.routing
        if routing is None:
            return []
        return [
            await queue_report(
                routing, queue, windows=(15, 60), interval_minutes=None, interval_count=0
            )
            for queue in routing.policy.queues.values()
        ]

    async def agents(self) -> list[dict[str, Any]]:
        """Every agent's presence, activity and load."""
        routing = self.hub.routing
        if routing is None:
            return []
        now = self.hub.clock()
        async with self.hub.store.unit_of_work() as uow:
            names = {user.id: user.display_name for user in await uow.accounts.users()}
        return [
            agent_json(agent, now) | {"name": names.get(agent.agent_id, f"#{agent.agent_id}")}
            for agent in await routing.state.agents()
        ]


class AgentNamespace(GuardedNamespace):
    """What agents send, and their rooms."""

    def __init__(self, realtime: Realtime) -> None:
        super().__init__("/agent")
        self.realtime = realtime
        self.hub = realtime.hub

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object) -> None:
        async with self.realtime.handshakes:
            try:
                principal, token_id = await _principal(self.hub, auth, Permission.WORK_TAKE)
            except HubError as err:
                raise socketio.exceptions.ConnectionRefusedError(err.message) from err
            await self.save_session(sid, {"principal": principal})
            self.realtime.agent_connections += 1
            await self.realtime.joined(sid, "/agent", principal, token_id)
            await self.enter_room(sid, f"agent:{principal.user_id}")
            hello = await self._hello(principal)
        await self.emit("hello", hello, to=sid)

    async def _hello(self, principal: Principal) -> dict[str, Any]:
        routing = self.hub.routing
        twilio = self.hub.settings.twilio
        held = await interactions.my_work(self.hub.store, principal)
        hello: dict[str, Any] = {
            "user_id": principal.user_id,
            "agent": None,
            "offers": [],
            # the work the agent holds (assigned, wrap-up): a reload or new login reopens it
            "work": [interaction_json(i) for i in held],
            # whether the console can take calls in the browser (GET /api/v1/me/voice-token)
            "browser_calls": bool(
                twilio.api_key_sid and twilio.api_key_secret and twilio.twiml_app_sid
            ),
        }
        if routing is None:
            return hello
        agent = await routing.state.agent(principal.user_id)
        if agent is not None:
            hello["agent"] = agent_json(agent, self.hub.clock())
        ringing = await routing.offers_for(principal.user_id)
        payloads = await self.realtime.offer_payloads(
            [(principal.user_id, item.interaction_id, item.customer_id) for item in ringing]
        )
        for item in ringing:
            payload = payloads.get((principal.user_id, item.interaction_id))
            if payload is not None and item.offer_expires is not None:
                hello["offers"].append(payload | _ring(item.offer_expires, self.hub.clock()))
        return hello

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        self.realtime.agent_connections = max(0, self.realtime.agent_connections - 1)
        self.realtime.left(sid)

    async def _me(self, sid: str) -> Principal:
        session = await self.get_session(sid)
        principal: Principal = session["principal"]
        return principal

    async def on_state(self, sid: str, data: object) -> dict[str, Any]:
        try:
            message = validate(StateBody, data)
            routing = self._routing()
            agent = await routing.set_presence(await self._me(sid), message.state, message.reason)
        except HubError as err:
            return failure(err)
        return {"ok": True, "agent": agent_json(agent, self.hub.clock())}

    async def on_accept(self, sid: str, data: object) -> dict[str, Any]:
        try:
            message = validate(WorkMessage, data)
            await self._routing().accept(await self._me(sid), message.interaction_id)
        except HubError as err:
            return failure(err)
        return {"ok": True}

    async def on_decline(self, sid: str, data: object) -> dict[str, Any]:
        try:
            message = validate(WorkMessage, data)
            await self._routing().decline(await self._me(sid), message.interaction_id)
        except HubError as err:
            return failure(err)
        return {"ok": True}

    async def on_wrapup(self, sid: str, data: object) -> dict[str, Any]:
        """Done with an interaction: wrap-up (capacity comes back), then closed with a code."""
        try:
            message = validate(WrapUpMessage, data)
            me = await self._me(sid)
            routing = self._routing()
            current = await interactions.get_interaction(self.hub.store, me, message.interaction_id)
            if current.state is InteractionState.ASSIGNED:
                await routing.end(me, message.interaction_id)
            closed = await interactions.close_interaction(
                self.hub.store,
                me,
                message.interaction_id,
                disposition=message.disposition,
                now=self.hub.clock(),
            )
        except HubError as err:
            return failure(err)
        return {"ok": True, "interaction": interaction_json(closed)}

    async def on_typing(self, sid: str, data: object) -> dict[str, Any]:
        """The agent is (or stopped) typing on an interaction: its channel tells the customer."""
        try:
            message = validate(TypingMessage, data)
            me = await self._me(sid)
            adapter = await self._adapter_of(me, message.interaction_id)
            if adapter is not None:
                await adapter.agent_typing(message.interaction_id, me.user_id, message.typing)
        except HubError as err:
            return failure(err)
        return {"ok": True}

    async def on_read(self, sid: str, data: object) -> dict[str, Any]:
        """The agent has read the customer's messages up to an event."""
        try:
            message = validate(ReadMessage, data)
            me = await self._me(sid)
            adapter = await self._adapter_of(me, message.interaction_id)
            if adapter is not None:
                await adapter.agent_read(message.interaction_id, me.user_id, message.event_id)
        except HubError as err:
            return failure(err)
        return {"ok": True}

    async def _adapter_of(self, me: Principal, interaction_id: int) -> ChannelAdapter | None:
        interaction = await interactions.get_interaction(self.hub.store, me, interaction_id)
        for channel in self.hub.channels:
            if channel.channel is interaction.channel and Capability.TYPING in channel.capabilities:
                return channel
        return None

    def _routing(self) -> Any:
        routing = self.hub.routing
        if routing is None:
            raise HubError("routing is not running in this hub")
        return routing


class SupervisorNamespace(GuardedNamespace):
    """The live board for supervisors."""

    def __init__(self, realtime: Realtime) -> None:
        super().__init__("/supervisor")
        self.realtime = realtime

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object) -> None:
        async with self.realtime.handshakes:
            try:
                principal, token_id = await _principal(
                    self.realtime.hub, auth, Permission.AGENTS_READ
                )
            except HubError as err:
                raise socketio.exceptions.ConnectionRefusedError(err.message) from err
        await self.realtime.joined(sid, "/supervisor", principal, token_id)
        await self.enter_room(sid, SUPERVISORS)
        self.realtime.supervisors += 1
        await self.emit("queues", await self.realtime.board(), to=sid)
        await self.emit("agents", await self.realtime.agents(), to=sid)
        await self.emit("routing", self.realtime.routing_health(), to=sid)

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        self.realtime.supervisors = max(0, self.realtime.supervisors - 1)
        self.realtime.left(sid)
