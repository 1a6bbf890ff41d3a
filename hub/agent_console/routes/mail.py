"""Email administration: the messages the hub could not take in, and why."""

from __future__ import annotations

from aiohttp import web

from hub.domain.users import Permission
from hub.http import HUB, MAX_ID, json_response, query_int, requires

routes = web.RouteTableDef()


@routes.get("/api/v1/email/quarantine")
@requires(Permission.AUDIT_READ)
async def quarantine(request: web.Request) -> web.Response:
    """Quarantined messages, newest first: mailbox, UID, reason, whether the raw message is kept."""
    limit = query_int(request, "limit", default=50, low=1, high=500)
    before = query_int(request, "before", 0, low=1, high=MAX_ID) or None
    async with request.app[HUB].store.unit_of_work() as uow:
        found = await uow.mail.quarantined(limit=limit, before_id=before)
    return json_response(
        {
            "messages": [
                {
                    "id": q.id,
                    "mailbox": q.mailbox,
                    "uidvalidity": q.uidvalidity,
                    "uid": q.uid,
                    "reason": q.reason,
                    "size": q.size,
                    "kept": q.raw_path is not None,
                    "created_at": q.created_at,
                }
                for q in found
            ],
            "next_before": found[-1].id if len(found) == limit else None,
        }
    )
