"""Interactions and their state machine.

An interaction is one piece of work with a customer on one channel: a call, an SMS conversation,
an email thread, a chat, a fax. Its state moves only along the edges of ``TRANSITIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from hub.errors import IllegalTransition


class Channel(StrEnum):
    """The ways a customer reaches the hub."""

    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"
    WEBCHAT = "webchat"
    FAX = "fax"
    API = "api"


class InteractionState(StrEnum):
    """Where an interaction is in its life."""

    NEW = "new"
    QUEUED = "queued"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    WRAP_UP = "wrap_up"
    CLOSED = "closed"
    ABANDONED = "abandoned"


S = InteractionState
TRANSITIONS: dict[InteractionState, frozenset[InteractionState]] = {
    # NEW -> ASSIGNED: work an agent starts (outbound, click-to-call); NEW -> CLOSED: noise.
    S.NEW: frozenset({S.QUEUED, S.ASSIGNED, S.CLOSED, S.ABANDONED}),
    # QUEUED -> QUEUED: moved to another queue (overflow, supervisor move).
    S.QUEUED: frozenset({S.QUEUED, S.OFFERED, S.ASSIGNED, S.ABANDONED, S.CLOSED}),
    # OFFERED -> QUEUED: declined or not answered in time; it goes back in line.
    S.OFFERED: frozenset({S.ASSIGNED, S.QUEUED, S.ABANDONED}),
    # ASSIGNED -> QUEUED / OFFERED: transferred to a queue / to another agent.
    S.ASSIGNED: frozenset({S.WRAP_UP, S.QUEUED, S.OFFERED, S.CLOSED}),
    S.WRAP_UP: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
    S.ABANDONED: frozenset(),
}
OPEN_STATES = frozenset(state for state, nexts in TRANSITIONS.items() if nexts)


def check_transition(current: InteractionState, target: InteractionState) -> None:
    """Raise IllegalTransition unless the state machine allows current -> target."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is finished)"
        raise IllegalTransition(
            f"an interaction that is {current} cannot become {target}; it can become {allowed}",
            current=current.value,
            target=target.value,
        )


@dataclass(slots=True)
class Interaction:
    """One piece of work with a customer on one channel."""

    id: int
    customer_id: int
    channel: Channel
    state: InteractionState
    opened_at: datetime
    updated_at: datetime
    queue_id: int | None = None
    assigned_user_id: int | None = None
    subject: str | None = None
    thread_key: str | None = None
    closed_at: datetime | None = None
    disposition: str | None = None
    priority: int = 0
    queued_at: datetime | None = None  # its place in line: kept across transfers and restarts
    answered_at: datetime | None = None  # when an agent accepted it first
    abandoned_at: datetime | None = None
    csat_score: int | None = None  # the customer's rating at the end, 1-5
    csat_comment: str | None = None

    @property
    def is_open(self) -> bool:
        """Whether more work can happen on it."""
        return self.state in OPEN_STATES

    def move_to(self, target: InteractionState, now: datetime) -> InteractionState:
        """Move along the state machine, returning the previous state."""
        check_transition(self.state, target)
        previous, self.state, self.updated_at = self.state, target, now
        if target is InteractionState.QUEUED and self.queued_at is None:
            self.queued_at = now
        if target is InteractionState.ASSIGNED and self.answered_at is None:
            self.answered_at = now
        if target is InteractionState.ABANDONED:
            self.abandoned_at = now
        if not self.is_open:
            self.closed_at = now
        return previous
