from __future__ import annotations

import logging

import pytest

from hub.bus import InProcessEventBus
from hub.domain.events import CustomerCreated, Event, NoteAdded


async def test_subscribers_get_their_event_types_in_order_and_a_failure_is_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InProcessEventBus()
    seen: list[tuple[str, Event]] = []

    async def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    async def created(event: CustomerCreated) -> None:
        seen.append(("created", event))

    async def everything(event: Event) -> None:
        seen.append(("any", event))

    bus.subscribe(CustomerCreated, broken)
    bus.subscribe(CustomerCreated, created)
    bus.subscribe(Event, everything)
    with caplog.at_level(logging.ERROR):
        await bus.publish([CustomerCreated(1), NoteAdded(1, 2)])
    assert seen == [
        ("created", CustomerCreated(1)),
        ("any", CustomerCreated(1)),
        ("any", NoteAdded(1, 2)),
    ]
    assert "event handler failed" in caplog.text
