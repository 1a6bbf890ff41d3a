"""Phone calls as the hub sees them: the legs of an interaction's conference.

Every call the hub handles is a Twilio conference named for its interaction. Each party on it
(the customer, the agent, a supervisor listening in, a colleague or number being transferred
to) is a *leg*: one Twilio call, known by its CallSid. Call controls act on legs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class LegRole(StrEnum):
    """Who is on a leg."""

    CUSTOMER = "customer"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    EXTERNAL = "external"  # a number the call was transferred to


class MonitorMode(StrEnum):
    """How a supervisor is on a call."""

    LISTEN = "listen"  # hears both sides, is heard by nobody
    WHISPER = "whisper"  # coaches: heard by the agent only
    BARGE = "barge"  # a full party to the call


# Twilio call statuses (https://www.twilio.com/docs/voice/api/call-resource#call-status-values).
LIVE = frozenset({"queued", "initiated", "ringing", "in-progress"})
ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
ENDING = "ending"  # ours, not Twilio's: the hub asked Twilio to end the leg


@dataclass(frozen=True, slots=True)
class CallLeg:
    """One party's call into an interaction's conference."""

    id: int
    interaction_id: int
    call_sid: str
    role: LegRole
    status: str
    created_at: datetime
    user_id: int | None = None
    number: str | None = None  # E.164, or client:agent-7 for a browser
    conference_sid: str | None = None
    conference_sequence: int | None = None  # the last conference event applied to the leg
    muted: bool = False
    held: bool = False
    monitor: MonitorMode | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def live(self) -> bool:
        """Still ringing or connected."""
        return self.status in LIVE
