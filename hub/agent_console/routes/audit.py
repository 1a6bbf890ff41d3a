"""The audit log."""

from __future__ import annotations

from aiohttp import web

from hub.agent_console.presenters import audit_json
from hub.domain.users import Permission
from hub.http import HUB, json_response, principal_of, query_int, requires
from hub.services import accounts

routes = web.RouteTableDef()


@routes.get("/api/v1/audit")
@requires(Permission.AUDIT_READ)
async def audit(request: web.Request) -> web.Response:
    """Newest entries first; page with ?before=<id>, filter with ?entity_type=."""
    limit = query_int(request, "limit", 100, low=1, high=500)
    before = query_int(request, "before", 0, low=0, high=2**62) or None
    entries = await accounts.audit_log(
        request.app[HUB].store,
        principal_of(request),
        limit=limit,
        before_id=before,
        entity_type=request.query.get("entity_type"),
    )
    next_before = entries[-1].id if len(entries) == limit else None
    return json_response({"entries": [audit_json(e) for e in entries], "next_before": next_before})
