"""Domain events: facts, in the past tense, published on the bus only after they are committed."""

from __future__ import annotations

from dataclasses import dataclass

from hub.domain.interaction import Channel


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every domain event."""


@dataclass(frozen=True, slots=True)
class InteractionReceived(Event):
    """A customer's message was stored on an interaction (new or continued)."""

    interaction_id: int
    customer_id: int
    event_id: int
    channel: Channel
    queue_id: int | None
    opened: bool


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
