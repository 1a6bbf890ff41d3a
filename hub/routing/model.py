"""What the ACD reasons about: agents with capacity, and work waiting in queues."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hub.domain.interaction import Channel
from hub.routing.expressions import Attributes, Skills


class Presence(StrEnum):
    """What an agent said they are doing."""

    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"
    # An offer rang out at them: offered nothing more until they say they are available again
    # (as TaskRouter's and Amazon Connect's "missed"). Set by routing, never by the agent.
    MISSED = "missed"


# What an agent (or a supervisor for them) may choose; MISSED is routing's to set.
CHOSEN_PRESENCES = frozenset({Presence.AVAILABLE, Presence.AWAY, Presence.OFFLINE})


class AgentActivity(StrEnum):
    """What an agent is actually doing, for the supervisor's board and the statistics."""

    OFFLINE = "offline"
    AWAY = "away"
    IDLE = "idle"  # available and has no work
    BUSY = "busy"  # has work (or an offer ringing)
    WRAP_UP = "wrap_up"
    MISSED = "missed"  # let an offer ring out; waits to be made available again


@dataclass(slots=True)
class AgentState:
    """An agent as routing sees them: profile, presence and current load."""

    agent_id: int
    teams: frozenset[str]
    presence: Presence
    presence_since: datetime
    idle_since: datetime
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    capacity: dict[Channel, int] = field(default_factory=dict)  # overrides the policy's
    away_reason: str | None = None
    wrap_up_until: datetime | None = None
    load: dict[Channel, int] = field(default_factory=dict)  # assigned + offered, by channel

    def capacity_for(self, channel: Channel, default: Mapping[Channel, int]) -> int:
        """How many interactions of the channel the agent can hold at once."""
        return self.capacity.get(channel, default.get(channel, 1))

    def total_load(self) -> int:
        """Interactions held (and offers ringing) on every channel."""
        return sum(self.load.values())

    def activity(self, now: datetime) -> AgentActivity:
        """What the agent is doing now."""
        if self.presence is Presence.OFFLINE:
            return AgentActivity.OFFLINE
        if self.total_load():
            return AgentActivity.BUSY
        if self.wrap_up_until is not None and self.wrap_up_until > now:
            return AgentActivity.WRAP_UP
        if self.presence is Presence.AWAY:
            return AgentActivity.AWAY
        if self.presence is Presence.MISSED:
            return AgentActivity.MISSED
        return AgentActivity.IDLE

    def occupancy(self, default: Mapping[Channel, int]) -> float:
        """The share of capacity in use, the busiest channel counting."""
        return max(
            (n / max(1, self.capacity_for(c, default)) for c, n in self.load.items() if n),
            default=0.0,
        )

    def view(self) -> Attributes:
        """What target expressions see as ``agent``."""
        return Attributes(
            {
                "id": self.agent_id,
                "skills": Skills(self.skills),
                "languages": self.languages,
                "teams": self.teams,
            }
        )


@dataclass(slots=True)
class WorkItem:
    """An interaction waiting for (or being offered to) an agent."""

    interaction_id: int
    customer_id: int
    channel: Channel
    queue: str
    priority: int
    enqueued_at: datetime  # its place in line: kept across transfers, callbacks, restarts
    queue_entered_at: datetime  # when it entered this queue: the widening steps count from here
    language: str | None = None
    vip: bool = False
    tier: str | None = None
    tags: frozenset[str] = frozenset()
    last_agent_id: int | None = None
    # agents who declined it, let it ring out or transferred it away, and when: offered it
    # again only when nobody else can take it (engine.reoffer_allowed)
    excluded: dict[int, datetime] = field(default_factory=dict)
    offered_to: int | None = None
    offer_expires: datetime | None = None
    # the agent's console was told of the offer (its ring counts from then): an offer that
    # rings out untold is the hub's fault, never the agent's
    rung: bool = False
    closed_told: bool = False  # the channel has been told the queue is closed
    attributes: dict[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[int, datetime, int]:
        """Higher priority first, then the oldest place in line."""
        return (-self.priority, self.enqueued_at, self.interaction_id)

    def view(self) -> Attributes:
        """What target expressions see as ``interaction``."""
        return Attributes(
            {
                **self.attributes,
                "id": self.interaction_id,
                "channel": self.channel.value,
                "queue": self.queue,
                "priority": self.priority,
                "language": self.language,
                "vip": self.vip,
                "tier": self.tier,
                "tags": self.tags,
            }
        )
