"""The console's web app: the Vite build in hub/agent_console/static, served at /console/."""

from __future__ import annotations

import functools
import io
from pathlib import Path

from aiohttp import web
from PIL import Image, ImageDraw

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


@routes.get("/console")
@public
async def console_without_slash(request: web.Request) -> web.Response:
    """A link typed without the slash still opens the console."""
    raise web.HTTPMovedPermanently("/console/")


@routes.get("/favicon.ico")
@public
async def favicon(request: web.Request) -> web.Response:
    """The hub's icon, which browsers ask for on every page."""
    return web.Response(
        body=_icon(),
        content_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@functools.cache
def _icon() -> bytes:
    """A speech bubble in the console's blue, drawn once (16, 32 and 48 pixels)."""
    image = Image.new("RGBA", (48, 48), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((3, 5, 45, 35), radius=9, fill=(47, 111, 214, 255))
    draw.polygon([(12, 34), (24, 34), (10, 45)], fill=(47, 111, 214, 255))
    for x in (14, 24, 34):
        draw.ellipse((x - 3, 17, x + 3, 23), fill=(255, 255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    return out.getvalue()


@routes.get("/console/")
@public
async def console(request: web.Request) -> web.FileResponse:
    """The console's page (the API behind it needs a login)."""
    return web.FileResponse(_built(), headers={"Cache-Control": "no-cache"})


@routes.get(r"/console/assets/{name:[A-Za-z0-9._-]{1,128}}")  # longer: no such name
@public
async def asset(request: web.Request) -> web.FileResponse:
    """A built script, stylesheet or source map (hashed names: cached for good)."""
    path = STATIC / "assets" / request.match_info["name"]
    if not path.is_file():
        raise NotFound(f"no asset {request.match_info['name']}")
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})
