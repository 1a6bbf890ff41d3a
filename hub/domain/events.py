"""Domain events: facts, in the past tense, published on the bus only after they are committed."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.domain.interaction import Channel


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every domain event.

    ``outbox_id`` is the event's row in the store's outbox (0 for an event never stored, such
    as a presence change): handlers that must act once per event key their work on it, since
    delivery is at least once.
    """

    outbox_id: int = field(default=0, kw_only=True, compare=False)

    @property
    def key(self) -> int:
        """What orders this event: its interaction, else its customer, else its agent."""
        for name in ("interaction_id", "customer_id", "survivor_id", "agent_id"):
            value = getattr(self, name, None)
            if isinstance(value, int):
                return value
        return 0


@dataclass(frozen=True, slots=True)
class InteractionReceived(Event):
    """A customer's message was stored on an interaction (new or continued)."""

    interaction_id: int
    customer_id: int
    event_id: int
    channel: Channel
    queue_id: int | None
    opened: bool
    # When it opened (ISO 8601), if this message opened it: its place in line. Routing builds
    # the new work from the event, without reading the interaction again.
    opened_at: str | None = None
    # The customer was created with this message: they have no custom fields or tags yet, so
    # routing has none of their traits to read.
    customer_created: bool = False


@dataclass(frozen=True, slots=True)
class CustomerCreated(Event):
    """A customer record was created."""

    customer_id: int


@dataclass(frozen=True, slots=True)
class CustomersMerged(Event):
    """One customer was merged into another."""

    merge_id: int
    survivor_id: int
    merged_id: int


@dataclass(frozen=True, slots=True)
class CustomersUnmerged(Event):
    """A merge was undone."""

    merge_id: int
    survivor_id: int
    restored_id: int


@dataclass(frozen=True, slots=True)
class MergeSuggested(Event):
    """Two customers look like the same person but nothing proves it."""

    suggestion_id: int
    customer_a_id: int
    customer_b_id: int


@dataclass(frozen=True, slots=True)
class NoteAdded(Event):
    """An agent wrote a note on a customer."""

    customer_id: int
    note_id: int


@dataclass(frozen=True, slots=True)
class InteractionClosed(Event):
    """An interaction was closed (by an agent, or because the customer left)."""

    interaction_id: int
    customer_id: int
    previous_state: str
    agent_id: int | None


@dataclass(frozen=True, slots=True)
class InteractionEnded(Event):
    """The conversation is over (the agent ended it, or the customer left); wrap-up follows."""

    interaction_id: int
    customer_id: int
    agent_id: int


@dataclass(frozen=True, slots=True)
class InteractionQueued(Event):
    """Work entered (or moved to) a queue."""

    interaction_id: int
    queue: str


@dataclass(frozen=True, slots=True)
class OfferMade(Event):
    """Work is ringing at an agent until expires_at (ISO 8601)."""

    interaction_id: int
    customer_id: int
    agent_id: int
    expires_at: str


@dataclass(frozen=True, slots=True)
class OfferWithdrawn(Event):
    """An offer ended without an answer: declined, rang out, or the agent left."""

    interaction_id: int
    agent_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class InteractionAssigned(Event):
    """An agent took the work."""

    interaction_id: int
    customer_id: int
    agent_id: int


@dataclass(frozen=True, slots=True)
class QueueClosedNotice(Event):
    """Work waits in a queue outside its hours; the channel should tell the customer."""

    interaction_id: int
    queue: str
    action: str  # voicemail | callback | message
    message: str


@dataclass(frozen=True, slots=True)
class InteractionAbandoned(Event):
    """Work left the queue unanswered (the customer gave up, or the queue could not keep it)."""

    interaction_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class AgentStateChanged(Event):
    """An agent's presence changed."""

    agent_id: int
    presence: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class TimelineEventAdded(Event):
    """Something was put on a customer's timeline (a message either way, a call note, a note)."""

    customer_id: int
    interaction_id: int | None
    event_id: int
    # Its interaction was held by nobody when it was added (new, or waiting in a queue): no
    # agent's console is to be told. False says nothing either way.
    unheld: bool = False


@dataclass(frozen=True, slots=True)
class TimelineEventUpdated(Event):
    """A timeline event changed: a reply's delivery status, an attachment fetched, a bounce."""

    customer_id: int
    interaction_id: int | None
    event_id: int


@dataclass(frozen=True, slots=True)
class AttachmentsOwed(Event):
    """A message came with files the provider only links to: the channel fetches them."""

    customer_id: int
    interaction_id: int | None
    event_id: int
    channel: Channel
