"""The event bus contract."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hub.domain.events import Event

Handler = Callable[[Any], Awaitable[None]]


class EventBus(abc.ABC):
    """Delivers committed domain events to subscribers by event type."""

    @abc.abstractmethod
    def subscribe(self, event_type: type[Event], handler: Handler) -> None:
        """Call handler for every published event of event_type (or a subclass)."""

    @abc.abstractmethod
    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver events, in order; call only after the data they describe is committed."""

    async def backlog(self) -> int:
        """Events published and not yet handled (0 where delivery is immediate)."""
        return 0

    async def start(self) -> None:  # noqa: B027  (optional hook)
        """Begin delivering (no-op where delivery needs no background work)."""

    async def stop(self) -> None:  # noqa: B027  (optional hook)
        """Stop delivering and release resources."""
