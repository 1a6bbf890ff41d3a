"""What the visitor's widget is sent: messages as the visitor may see them."""

from __future__ import annotations

from typing import Any

from hub.domain.timeline import TimelineEvent


def public_event(event: TimelineEvent, author: str | None) -> dict[str, Any]:
    """A message as the visitor sees it: no internal notes, no internal data."""
    return {
        "id": event.id,
        "interaction_id": event.interaction_id,
        "direction": event.direction.value,
        "body": event.body or "",
        "at": event.occurred_at,
        "author": author,
        "status": event.data.get("status"),
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "url": f"/webchat/files/{event.id}/{n}",
            }
            for n, a in enumerate(event.attachments)
            if a.path
        ],
    }
