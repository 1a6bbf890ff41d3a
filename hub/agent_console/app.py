"""The aiohttp application: middlewares, the API's routes and the channels' webhooks."""

from __future__ import annotations

from aiohttp import web

from hub.agent_console.middleware import authorize, errors_as_json, observe, security_headers
from hub.agent_console.realtime import Realtime
from hub.agent_console.routes import (
    audit,
    auth,
    calls,
    channel_settings,
    console,
    customers,
    mail,
    policy,
    routing,
    system,
)
from hub.agent_console.throttle import LoginThrottle
from hub.bootstrap import Hub
from hub.errors import ConfigError
from hub.http import HUB, MAX_REPLY_BYTES, access_of


def build_app(hub: Hub) -> web.Application:
    """The hub's web application; starting it starts the hub, cleaning up stops it."""
    app = web.Application(
        middlewares=[observe, errors_as_json, authorize], client_max_size=MAX_REPLY_BYTES
    )
    app[HUB] = hub
    app.on_response_prepare.append(security_headers)
    app[auth.THROTTLE] = LoginThrottle(hub.limits, hub.clock)
    tables = (
        system,
        auth,
        customers,
        audit,
        routing,
        policy,
        calls,
        mail,
        channel_settings,
        console,
    )
    for table in (module.routes for module in tables):
        app.router.add_routes(table)
    for channel in hub.channels:
        app.router.add_routes(channel.routes())
    Realtime(hub).attach(app)
    _refuse_unguarded_routes(app)

    async def start(_: web.Application) -> None:
        await hub.start()

    async def stop_intake(_: web.Application) -> None:
        hub.stop_intake()

    async def stop(_: web.Application) -> None:
        await hub.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop_intake)  # before requests in flight are waited for
    app.on_cleanup.append(stop)
    return app


def _refuse_unguarded_routes(app: web.Application) -> None:
    """Every route must say who may call it; a route that does not is a bug, caught here."""
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        if access_of(route.handler) is None:
            raise ConfigError(f"route {route.method} {route.resource} has no access rule")
