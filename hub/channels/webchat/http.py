"""The chat's HTTP side: the widget script, each site's widget settings, files up and down.

Pages of the company's sites call these from another origin, so each answer carries CORS
headers for the origins the site allows (and only those).
"""

from __future__ import annotations

import asyncio
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import BodyPartReader, web

from hub.channels.webchat.namespace import TooFast, widget_settings
from hub.config import ChatSiteSettings
from hub.errors import AuthError, MalformedRequest, NotFound, ValidationError
from hub.http import path_id, public

if TYPE_CHECKING:
    from hub.channels.webchat.adapter import WebchatChannel


def routes(channel: WebchatChannel) -> list[web.RouteDef]:
    """The chat's HTTP routes."""

    def cors(request: web.Request, site: ChatSiteSettings, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin and channel.origin_allowed(site, origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Visitor"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Vary"] = "Origin"

    @public  # a script every visitor's browser loads
    async def widget(request: web.Request) -> web.StreamResponse:
        """The widget a site embeds with one script tag."""
        from hub.channels.webchat.adapter import WIDGET

        if not WIDGET.exists():
            raise NotFound("the chat widget is not built (make console)")
        response = web.FileResponse(WIDGET, headers={"Cache-Control": "public, max-age=300"})
        response.content_type = "text/javascript"
        return response

    @public  # the page that shows what the widget looks like (the hub's own origin)
    async def demo(request: web.Request) -> web.Response:
        """A page with the widget, to try a site's chat."""
        site = channel.site_of(request.match_info["site"])
        name = html.escape(site.name or site.id)
        page = f"""<!doctype html><html lang="{html.escape(site.language)}"><head>
<meta charset="utf-8"><title>{name}: chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 2rem">
<h1>{name}</h1><p>This page embeds the chat widget the way a site does:</p>
<pre>&lt;script src="{html.escape(channel.settings.public_url)}/webchat/widget.js"
        data-site="{html.escape(site.id)}" async&gt;&lt;/script&gt;</pre>
<script src="/webchat/widget.js" data-site="{html.escape(site.id)}" async></script>
</body></html>"""
        return web.Response(text=page, content_type="text/html")

    @public  # every site's visitors read it before they chat
    async def settings(request: web.Request) -> web.Response:
        """How the site's widget looks and asks, and whether anyone can chat now."""
        site = channel.site_of(request.match_info["site"])
        answer = widget_settings(site) | {"availability": await channel.availability(site)}
        response = web.json_response(answer, dumps=json.dumps)
        cors(request, site, response)
        return response

    @public  # the visitor's signed id authenticates it
    async def preflight(request: web.Request) -> web.Response:
        response = web.Response(status=204)
        site_id = request.query.get("site") or request.match_info.get("site")
        if site_id in channel.sites:
            cors(request, channel.sites[site_id], response)
        return response

    @public  # the visitor's signed id (X-Visitor) authenticates it
    async def upload(request: web.Request) -> web.Response:
        """A visitor's file, checked (size, type, contents), kept until their message names it."""
        site = channel.site_of(request.query.get("site"))
        if not channel.origin_allowed(site, request.headers.get("Origin")):
            raise AuthError(f"this page may not send files for site {site.id!r}")
        visitor = channel.visitors.check(request.headers.get("X-Visitor"))
        if visitor is None:
            raise AuthError("X-Visitor must be the visitor id the chat gave")
        if not await channel.namespace.per_visitor.allow(visitor):
            raise TooFast("you are sending too fast; wait a moment")
        limit = channel.settings.webchat.max_file_bytes
        if request.content_length is not None and request.content_length > limit + 4096:
            raise ValidationError(f"a file is at most {limit} bytes", field="file")
        if not request.content_type.startswith("multipart/"):
            raise MalformedRequest("send the file as multipart/form-data, field 'file'")
        reader = await request.multipart()
        part = await reader.next()
        if part is None or not isinstance(part, BodyPartReader) or part.name != "file":
            raise MalformedRequest("send the file in a form field named 'file'")
        data = bytearray()
        while chunk := await part.read_chunk(65536):
            data += chunk
            if len(data) > limit:
                raise ValidationError(f"a file is at most {limit} bytes", field="file")
        content_type = part.headers.get("Content-Type", "application/octet-stream").split(";")[0]
        filename = part.filename or "file"
        kept = await asyncio.to_thread(
            channel.keep_upload, visitor, filename, content_type.strip().lower(), bytes(data)
        )
        response = web.json_response({"upload": kept}, status=201)
        cors(request, site, response)
        return response

    @public  # the visitor's signed id (?visitor=) authenticates it
    async def download(request: web.Request) -> web.StreamResponse:
        """A file of the visitor's conversation (theirs or the agent's), as a download."""
        visitor = channel.visitors.check(request.query.get("visitor"))
        if visitor is None:
            raise NotFound("no such file")
        event_id, index = path_id(request, "event_id"), path_id(request, "n", low=0)
        found = await channel.chats.file(visitor, event_id, index)
        if found is None:
            raise NotFound("no such file")
        path = Path(str(found.path))
        if not await asyncio.to_thread(path.is_file):
            raise NotFound("the file is no longer kept")
        return web.FileResponse(
            path,
            headers={
                "Content-Type": found.content_type,
                "Content-Disposition": f'attachment; filename="{found.filename}"',
                "X-Content-Type-Options": "nosniff",
                "Access-Control-Allow-Origin": "*",
            },
        )

    return [
        web.get("/webchat/widget.js", widget),
        web.get("/webchat/sites/{site}/demo", demo),
        web.get("/webchat/sites/{site}/settings", settings),
        web.route("OPTIONS", "/webchat/sites/{site}/settings", preflight),
        web.post("/webchat/uploads", upload),
        web.route("OPTIONS", "/webchat/uploads", preflight),
        web.get(r"/webchat/files/{event_id:\d+}/{n:\d+}", download),
    ]
