"""Timeline events: everything that happened with a customer, across channels, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hub.domain.interaction import Channel


class EventKind(StrEnum):
    """What a timeline event records."""

    MESSAGE = "message"
    CALL = "call"
    NOTE = "note"
    ASSIGNMENT = "assignment"
    STATUS_CHANGE = "status_change"
    MERGE = "merge"
    UNMERGE = "unmerge"


class Direction(StrEnum):
    """Who spoke: the customer (inbound), us (outbound), or nobody outside (internal)."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with (or went out with) a message."""

    filename: str
    content_type: str
    size: int | None = None
    url: str | None = None  # where the provider offers it (often for a short time)
    path: str | None = None  # where the hub keeps it, under data_dir, once fetched
    error: str | None = None  # why it could not be fetched
    content_id: str | None = None  # an email's inline image, shown where the HTML says cid:...
    inline: bool = False

    @property
    def owed(self) -> bool:
        """Still to fetch: a provider's link, and neither a kept file nor a reason it failed."""
        return self.url is not None and self.path is None and self.error is None


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One thing that happened with a customer."""

    id: int
    customer_id: int
    kind: EventKind
    direction: Direction
    occurred_at: datetime
    interaction_id: int | None = None
    channel: Channel | None = None
    body: str | None = None
    attachments: tuple[Attachment, ...] = ()
    provider: str | None = None
    provider_ref: str | None = None
    author_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
