"""The console's web app: the Vite build in hub/agent_console/static, served at /console/."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hub.errors import ChannelNotReady, NotFound
from hub.http import public

routes = web.RouteTableDef()
STATIC = Path(__file__).resolve().parent.parent / "static"


def _built() -> Path:
    index = STATIC / "index.html"
    if not index.exists():
        raise ChannelNotReady("the console is not built: run `make console`")
    return index


@routes.get("/")
@public
async def root(request: web.Request) -> web.Response:
    """The console lives at /console/."""
    raise web.HTTPFound("/console/")


@routes.get("/console/")
@public
async def console(request: web.Request) -> web.FileResponse:
    """The console's page (the API behind it needs a login)."""
    return web.FileResponse(_built(), headers={"Cache-Control": "no-cache"})


@routes.get(r"/console/assets/{name:[A-Za-z0-9._-]+}")
@public
async def asset(request: web.Request) -> web.FileResponse:
    """A built script, stylesheet or source map (hashed names: cached for good)."""
    path = STATIC / "assets" / request.match_info["name"]
    if not path.is_file():
        raise NotFound(f"no asset {request.match_info['name']}")
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})
