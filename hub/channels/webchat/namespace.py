"""The ``/chat`` socket.io namespace: what visitors' widgets send (docs/realtime.md, "/chat").

Connect with ``auth={"site": id, "visitor": <the id the hub gave>, "user": {"id", "signature"}}``
from a page whose Origin the site allows. The hub answers ``welcome`` (the visitor id to keep,
the widget's settings, the conversation so far, whether anyone can chat now). Every message a
visitor sends is acknowledged ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code",
"message"}}`` once it is committed, so the widget resends what was not acknowledged, and the
resend (same ``client_id``) is harmless.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import socketio
import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.channels.webchat.inbound import (
    LeftMessage,
    VisitorMessage,
    claims_of,
    to_inbound_message,
)
from hub.channels.webchat.limits import RateLimit
from hub.channels.webchat.outbound import public_event
from hub.channels.webchat.visitors import signed_user
from hub.domain.identity import IdentityClaim, IdentityKind, IdentityRef, normalize_identity
from hub.domain.interaction import Interaction, InteractionState
from hub.errors import AuthError, HubError, InvalidIdentity, TooManyRequests, ValidationError
from hub.http import GuardedNamespace, Id, failure, validate

if TYPE_CHECKING:
    from hub.channels.webchat.adapter import WebchatChannel

log = structlog.get_logger(__name__)
WAITING = frozenset({InteractionState.NEW, InteractionState.QUEUED, InteractionState.OFFERED})


class Typing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    typing: bool


class Seen(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Id
    read: bool = False


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interaction_id: Id
    score: int = Field(ge=1, le=5)
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] = ""


class TranscriptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]


class TooFast(TooManyRequests):
    """A visitor or address sending faster than the chat's limits allow."""

    code = "rate_limited"


class ChatNamespace(GuardedNamespace):
    """Visitors' widgets."""

    def __init__(self, channel: WebchatChannel) -> None:
        super().__init__("/chat")
        self.channel = channel
        limits = channel.settings.webchat
        counts, now = channel.limits, channel.epoch_seconds
        self.per_visitor = RateLimit(counts, "visitor", limits.messages_per_minute, now)
        self.per_address = RateLimit(counts, "ip", limits.ip_messages_per_minute, now)
        sessions = limits.ip_sessions_per_minute
        self.sessions_per_address = RateLimit(counts, "sessions", sessions, now)
        self.transcripts = RateLimit(counts, "transcripts", 2, now)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object) -> None:
        try:
            session = await self._admit(environ, auth)
        except HubError as err:
            raise socketio.exceptions.ConnectionRefusedError(err.message) from err
        await self.save_session(sid, session)
        visitor = session["visitor"]
        await self.enter_room(sid, f"visitor:{visitor}")
        history, current = await self.channel.history(visitor)
        site = self.channel.sites[session["site"]]
        await self.emit(
            "welcome",
            {
                "visitor": session["token"],
                "site": widget_settings(site),
                "history": history,
                "chat": await self._chat_json(current),
                "availability": await self.channel.availability(site),
            },
            to=sid,
        )
        if current is not None and current.state in WAITING:
            self.channel.waiting[current.id] = visitor
            await self.channel.tell_place(current.id, visitor)

    async def _admit(self, environ: dict[str, Any], auth: object) -> dict[str, Any]:
        given = auth if isinstance(auth, dict) else {}
        channel = self.channel
        site = channel.site_of(given.get("site"))
        if not channel.origin_allowed(site, environ.get("HTTP_ORIGIN")):
            raise AuthError(f"this page may not open chats for site {site.id!r}")
        address = _address(environ)
        if not await self.sessions_per_address.allow(address):
            raise TooFast("too many new chats from this address; wait a minute")
        token = given.get("visitor")
        visitor = channel.visitors.check(token)
        if visitor is None:  # new here, or an id we did not sign: a fresh anonymous visitor
            token = channel.visitors.issue()
            visitor = channel.visitors.check(token)
        assert visitor is not None
        external = None
        user = given.get("user")
        if isinstance(user, dict):
            secret = site.identity_secret
            found = None
            if secret is not None:
                found = signed_user(
                    secret.get_secret_value(), user.get("id"), user.get("signature")
                )
            if found is None:
                raise AuthError("the signed identity does not match (HMAC-SHA256 of the user id)")
            external = f"{site.id}:{found}"
        return {
            "site": site.id,
            "visitor": visitor,
            "token": token,
            "address": address,
            "external": external,
        }

    async def _chat_json(self, chat: Interaction | None) -> dict[str, Any] | None:
        if chat is None:
            return None
        agent = None
        if chat.assigned_user_id is not None:
            agent = await self.channel.chats.agent_name(chat.assigned_user_id)
        return {"interaction_id": chat.id, "state": chat.state.value, "agent": agent}

    async def _open_chat(self, visitor: str) -> Interaction | None:
        return await self.channel.chats.open_chat(visitor)

    async def _limit(self, session: dict[str, Any]) -> None:
        if not await self.per_visitor.allow(session["visitor"]):
            raise TooFast("you are sending messages too fast; wait a moment")
        if not await self.per_address.allow(session["address"]):
            raise TooFast("too many messages from this address; wait a moment")

    async def on_message(self, sid: str, data: object) -> dict[str, Any]:
        """A visitor's message: stored (once per client_id), then acknowledged."""
        try:
            session = await self.get_session(sid)
            message = validate(VisitorMessage, data)
            channel = self.channel
            limit = channel.settings.webchat.max_message_chars
            text = message.text.strip()
            if len(text) > limit:
                raise ValidationError(f"a message is at most {limit} characters", field="text")
            if not text and not message.uploads:
                raise ValidationError("an empty message", field="text")
            await self._limit(session)
            site = channel.sites[session["site"]]
            # Required pre-chat fields are asked on a chat's first message: only then look.
            asks = "required" in (site.prechat_name, site.prechat_email, site.prechat_phone)
            first = asks and await self._open_chat(session["visitor"]) is None
            name, claims = claims_of(
                message.profile, site, channel.settings.default_region, first=first
            )
            if session["external"]:
                ref = IdentityRef(IdentityKind.EXTERNAL, session["external"])
                claims = (*claims, IdentityClaim(ref, verified=True))
            files = tuple(
                [
                    await asyncio.to_thread(channel.uploaded, session["visitor"], u)
                    for u in message.uploads
                ]
            )
            received = await channel.sink()(
                to_inbound_message(
                    visitor=session["visitor"],
                    site=site,
                    text=text,
                    client_id=message.client_id,
                    name=name,
                    claims=claims,
                    attachments=files,
                    now=channel.clock(),
                )
            )
        except HubError as err:
            return failure(err)
        if received.interaction_id is not None and not received.duplicate:
            await self._after_message(sid, session["visitor"], received.event_id)
        return {
            "ok": True,
            "event_id": received.event_id,
            "interaction_id": received.interaction_id,
            "duplicate": received.duplicate,
        }

    async def _after_message(self, sid: str, visitor: str, event_id: int) -> None:
        """Show the message in the visitor's other tabs; tell them where they stand."""
        event, chat = await self.channel.chats.message(event_id)
        if event is None:
            return
        await self.emit(
            "message", {"event": public_event(event, None)}, room=f"visitor:{visitor}", skip_sid=sid
        )
        if chat is not None and chat.state in WAITING:
            self.channel.waiting[chat.id] = visitor
            await self.channel.tell_place(chat.id, visitor)

    async def on_typing(self, sid: str, data: object) -> dict[str, Any]:
        """The visitor is (or stopped) typing: told to the agent who has the chat."""
        try:
            session = await self.get_session(sid)
            typing = validate(Typing, data)
        except HubError as err:
            return failure(err)
        chat = await self._open_chat(session["visitor"])
        if chat is not None and chat.assigned_user_id is not None:
            await self.server.emit(
                "typing",
                {"interaction_id": chat.id, "typing": typing.typing},
                room=f"agent:{chat.assigned_user_id}",
                namespace="/agent",
            )
        return {"ok": True}

    async def on_seen(self, sid: str, data: object) -> dict[str, Any]:
        """The widget has an agent's message (read: the visitor has it in front of them)."""
        try:
            session = await self.get_session(sid)
            seen = validate(Seen, data)
            known = await self.channel.chats.mark_seen(
                session["visitor"], seen.event_id, read=seen.read
            )
        except HubError as err:
            return failure(err)
        return {"ok": known}

    async def on_rate(self, sid: str, data: object) -> dict[str, Any]:
        """The visitor rates the chat that ended (1-5, with a comment)."""
        try:
            session = await self.get_session(sid)
            rating = validate(Rating, data)
            await self.channel.chats.rate(
                session["visitor"], rating.interaction_id, rating.score, rating.comment
            )
        except HubError as err:
            return failure(err)
        return {"ok": True}

    async def on_transcript(self, sid: str, data: object) -> dict[str, Any]:
        """Email the visitor the conversation so far."""
        try:
            session = await self.get_session(sid)
            asked = validate(TranscriptRequest, data)
            try:
                address = normalize_identity(IdentityKind.EMAIL, asked.email, "US").value
            except InvalidIdentity as err:
                raise ValidationError(f"{asked.email!r} is not an email address") from err
            if not await self.transcripts.allow(session["visitor"]):
                raise TooFast("a transcript was sent a moment ago")
            await self.channel.send_transcript(session["visitor"], session["site"], address)
        except HubError as err:
            return failure(err)
        return {"ok": True}

    async def on_leave_message(self, sid: str, data: object) -> dict[str, Any]:
        """Nobody can chat: the message becomes work answered later, by email where it can be."""
        try:
            session = await self.get_session(sid)
            left = validate(LeftMessage, data)
            await self._limit(session)
            received = await self.channel.leave_message(session, left)
        except HubError as err:
            return failure(err)
        return {"ok": True, "interaction_id": received.interaction_id}


def widget_settings(site: Any) -> dict[str, Any]:
    """What the widget needs to look and ask as the site wants."""
    return {
        "id": site.id,
        "name": site.name,
        "title": site.title,
        "greeting": site.greeting,
        "colour": site.colour,
        "position": site.position,
        "language": site.language,
        "prechat": {
            "name": site.prechat_name,
            "email": site.prechat_email,
            "phone": site.prechat_phone,
        },
        "offline_message": site.offline_message,
    }


def _address(environ: dict[str, Any]) -> str:
    request = environ.get("aiohttp.request")
    remote = getattr(request, "remote", None)
    return str(remote or environ.get("REMOTE_ADDR") or "unknown")
