"""Channel settings over HTTP: what each channel does, changed by admins while the hub runs."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from hub.domain.users import Permission
from hub.errors import NotFound
from hub.http import HUB, Version, json_response, principal_of, read_json, requires
from hub.services.channel_settings import ChannelSettings

routes = web.RouteTableDef()


class SettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overrides: dict[str, Any]
    base_version: Version | None = None


def _live(request: web.Request) -> ChannelSettings:
    live = request.app[HUB].channel_settings
    if live is None:
        raise NotFound("channel settings are not kept by this hub")
    return live


@routes.get("/api/v1/channels/settings")
@requires(Permission.CHANNELS_MANAGE)
async def get_settings(request: web.Request) -> web.Response:
    """The channels' settings in force, the file's values, and which secrets are set (admins)."""
    return json_response(_live(request).view())


@routes.put("/api/v1/channels/settings")
@requires(Permission.CHANNELS_MANAGE)
async def put_settings(request: web.Request) -> web.Response:
    """Replace the admins' overrides (what is left out is as the file says); audited."""
    hub = request.app[HUB]
    live = _live(request)
    body = await read_json(request, SettingsBody)
    queues = set() if hub.routing is None else set(hub.routing.policy.queues)
    await live.save(
        principal_of(request), body.overrides, base_version=body.base_version, queues=queues
    )
    return json_response(live.view())
