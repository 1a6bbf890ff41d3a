"""The API channel's payload and its translation to an InboundMessage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.domain.identity import (
    IdentityClaim,
    IdentityKind,
    IdentityRef,
    normalize_identity,
    try_normalize_phone,
)
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.errors import InvalidIdentity


class SenderRef(BaseModel):
    """A sender given with its kind spelled out."""

    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)


class ApiInbound(BaseModel):
    """``POST /api/v1/inbound``: one contact from another system."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    channel: Literal["api"] = "api"
    sender: str | SenderRef = Field(alias="from")
    body: str = Field(default="", max_length=100_000)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=320)
    provider_ref: str | None = Field(default=None, min_length=1, max_length=255)
    subject: str | None = Field(default=None, max_length=500)
    queue: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)


def sender_ref(sender: str | SenderRef, default_region: str) -> IdentityRef:
    """Read ``from``: an explicit {kind, value}, or a string that is an email or a phone."""
    if isinstance(sender, SenderRef):
        return normalize_identity(sender.kind, sender.value, default_region)
    if "@" in sender:
        return normalize_identity(IdentityKind.EMAIL, sender, default_region)
    phone = try_normalize_phone(sender, default_region)
    if phone is not None:
        return IdentityRef(IdentityKind.PHONE, phone)
    raise InvalidIdentity(
        f"cannot tell what {sender!r} is: give an email, a phone number, "
        'or {"kind": ..., "value": ...}',
        field="from",
    )


def to_inbound_message(
    payload: ApiInbound, *, default_region: str, now: datetime
) -> InboundMessage:
    """Translate the payload; the pushing system vouches for ``from`` and ``external_id``.

    ``email`` and ``phone`` are claims the system passes on without proof (a form a visitor
    filled in), so they never merge customers on their own.
    """
    claims: list[IdentityClaim] = []
    if payload.external_id:
        ref = normalize_identity(IdentityKind.EXTERNAL, payload.external_id, default_region)
        claims.append(IdentityClaim(ref, verified=True))
    if payload.email:
        ref = normalize_identity(IdentityKind.EMAIL, payload.email, default_region)
        claims.append(IdentityClaim(ref, verified=False))
    if payload.phone:
        ref = normalize_identity(IdentityKind.PHONE, payload.phone, default_region)
        claims.append(IdentityClaim(ref, verified=False))
    sender = sender_ref(payload.sender, default_region)
    return InboundMessage(
        channel=Channel.API,
        sender=sender,
        received_at=now,
        body=payload.body,
        provider="api",
        provider_ref=payload.provider_ref,
        name=payload.name.strip() if payload.name and payload.name.strip() else None,
        claims=tuple(c for c in claims if c.ref != sender),
        subject=payload.subject,
        queue=payload.queue,
        data=payload.data,
    )
