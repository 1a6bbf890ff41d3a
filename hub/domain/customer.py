"""Customers and the unified customer record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.domain.identity import IdentityKind
from hub.domain.interaction import Interaction
from hub.domain.timeline import TimelineEvent

MAX_TAGS = 50
MAX_TAG_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Identity:
    """An identity as stored on a customer."""

    id: int
    customer_id: int
    kind: IdentityKind
    value: str
    verified: bool
    created_at: datetime
    opted_out_at: datetime | None = None  # SMS consent withdrawn (STOP) at


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer's profile."""

    id: int
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    custom_fields: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    owner_id: int | None = None
    team_id: int | None = None
    merged_into_id: int | None = None


@dataclass(frozen=True, slots=True)
class MergeSuggestion:
    """Two customers that may be one person, and why."""

    id: int
    customer_a_id: int
    customer_b_id: int
    reason: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """Everything an agent needs at once: profile, identities, open work, latest events."""

    customer: Customer
    identities: tuple[Identity, ...]
    open_interactions: tuple[Interaction, ...]
    latest_events: tuple[TimelineEvent, ...]
    merge_suggestions: tuple[MergeSuggestion, ...]


def normalize_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Trim, lower-case and de-duplicate tags, keeping their order."""
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = tag.strip().lower()
        if cleaned:
            seen.setdefault(cleaned[:MAX_TAG_LENGTH], None)
    return tuple(seen)[:MAX_TAGS]
