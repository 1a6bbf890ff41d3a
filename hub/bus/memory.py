"""The in-process event bus of the embedded hub."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from hub.bus.base import EventBus, Handler
from hub.domain.events import Event

log = structlog.get_logger(__name__)


class InProcessEventBus(EventBus):
    """Calls subscribers directly, in the publishing task, in subscription order.

    A failing subscriber is logged and the others still run: the event is already committed,
    so the publisher must not see an error it cannot undo.
    """

    def __init__(self) -> None:
        self._handlers: list[tuple[type[Event], Handler]] = []

    def subscribe(self, event_type: type[Event], handler: Handler) -> None:
        self._handlers.append((event_type, handler))

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            for event_type, handler in self._handlers:
                if isinstance(event, event_type):
                    try:
                        await handler(event)
                    except Exception:
                        log.exception("event handler failed", event_type=type(event).__name__)
