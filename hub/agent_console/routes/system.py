"""Health and metrics."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.agent_console.middleware import bearer_token
from hub.domain.users import Permission
from hub.errors import AuthError, HubError
from hub.http import HUB, json_response, public
from hub.services.accounts import authenticate

routes = web.RouteTableDef()


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    """Liveness and the database's readiness, for load balancers and orchestration."""
    hub = request.app[HUB]
    try:
        await hub.store.ping()
    except HubError as err:
        return json_response({"status": "unavailable", "database": err.message}, status=503)
    return json_response({"status": "ok", "database": "ok"})


@routes.get("/metrics")
@public  # checked here: Prometheus may present the metrics token instead of a user's token
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics, for the metrics token or a user allowed to read them."""
    hub = request.app[HUB]
    token = bearer_token(request)
    if token is None:
        raise AuthError("send Authorization: Bearer <metrics token or user token>")
    expected = hub.settings.metrics_token
    if expected is None or not hmac.compare_digest(token, expected.get_secret_value()):
        principal, _ = await authenticate(hub.store, token, hub.clock())
        principal.require(Permission.METRICS_READ)
    body = generate_latest(hub.metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
