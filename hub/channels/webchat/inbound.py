"""What a chat visitor sends, checked, and turned into the core's InboundMessage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.config import ChatSiteSettings
from hub.domain.identity import IdentityClaim, IdentityKind, IdentityRef, normalize_identity
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.timeline import Attachment
from hub.errors import InvalidIdentity, ValidationError

PROVIDER = "webchat"
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class Profile(BaseModel):
    """What the pre-chat form asked (each optional or required per site)."""

    model_config = ConfigDict(extra="forbid")

    name: Short | None = None
    email: Short | None = None
    phone: Short | None = None


class VisitorMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(default="", max_length=20_000)
    # The widget's own id for the message: a resend after a reconnect is the same message.
    client_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    uploads: list[Annotated[str, StringConstraints(pattern=r"^[a-f0-9]{32}$")]] = Field(
        default_factory=list, max_length=5
    )
    profile: Profile | None = None


class LeftMessage(BaseModel):
    """A message left while nobody can chat (closed, or no agent available)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    name: Short | None = None
    email: Short
    text: str = Field(min_length=1, max_length=20_000)


def claims_of(
    profile: Profile | None, site: ChatSiteSettings, region: str, *, first: bool
) -> tuple[str | None, tuple[IdentityClaim, ...]]:
    """The name and unverified claims the pre-chat form gave (required ones on a first message)."""
    profile = profile or Profile()
    if first:
        for name in ("name", "email", "phone"):
            if getattr(site, f"prechat_{name}") == "required" and not getattr(profile, name):
                raise ValidationError(f"the {name} is needed to start a chat", field=name)
    claims = []
    for kind, value in ((IdentityKind.EMAIL, profile.email), (IdentityKind.PHONE, profile.phone)):
        if value:
            try:
                ref = normalize_identity(kind, value, region)
            except InvalidIdentity as err:
                raise ValidationError(f"{value!r} is not a usable {kind}", field=kind) from err
            # Typed into a web form: anyone can type anyone's address, so never verified.
            claims.append(IdentityClaim(ref, verified=False))
    return profile.name or None, tuple(claims)


def to_inbound_message(
    *,
    visitor: str,
    site: ChatSiteSettings,
    text: str,
    client_id: str,
    name: str | None,
    claims: tuple[IdentityClaim, ...],
    attachments: tuple[Attachment, ...],
    now: datetime,
    data: dict[str, Any] | None = None,
    channel: Channel = Channel.WEBCHAT,
    subject: str | None = None,
    queue: str | None = None,
    thread_key: str | None = None,
) -> InboundMessage:
    """A visitor's message for the core: the visitor id is the identity the channel vouches for."""
    return InboundMessage(
        channel=channel,
        sender=IdentityRef(IdentityKind.CHAT_VISITOR, visitor),
        received_at=now,
        body=text,
        provider=PROVIDER,
        provider_ref=f"{visitor}:{client_id}",
        name=name,
        claims=claims,
        subject=subject,
        thread_key=thread_key,
        queue=queue or site.queue,
        attachments=attachments,
        data={"from": visitor, "site": site.id} | (data or {}),
    )
