"""The routing policy over HTTP: read it, edit it (whole, or a queue or calendar), its history.

Every change is checked like the policy file (a bad one answers 422 naming the field and the
reason, and the policy in force stays), saved as the next version in the store and put in force
at once; ``base_version`` guards against undoing a change saved meanwhile (409).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from hub.agent_console.routes.routing import routing_of
from hub.crm_store.config_versions import ConfigVersion
from hub.domain.users import Permission
from hub.errors import NotFound, ValidationError
from hub.http import (
    MAX_VERSION,
    Version,
    json_response,
    path_id,
    principal_of,
    read_json,
    requires,
)
from hub.routing.policy import policy_toml
from hub.routing.service import RoutingService

routes = web.RouteTableDef()


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any]
    base_version: Version | None = None


class EntryBody(BaseModel):
    """One queue or calendar of the policy, in the file's shape (its name is the path's)."""

    model_config = ConfigDict(extra="forbid")

    entry: dict[str, Any]
    base_version: Version | None = None


class ReloadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_file: bool = False


def version_json(version: ConfigVersion, *, document: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {
        "version": version.version,
        "source": version.source,
        "created_at": version.created_at,
        "created_by": version.created_by,
    }
    if document:
        found["document"] = version.document
    return found


def _policy_json(routing: RoutingService) -> dict[str, Any]:
    path = routing.policy_file()
    return version_json(routing.version, document=True) | {
        "file": None if path is None else str(path)
    }


@routes.get("/api/v1/routing/policy")
@requires(Permission.AGENTS_READ)
async def get_policy(request: web.Request) -> web.Response:
    """The policy in force as a document, with its version (?format=toml: as a policy file)."""
    routing = routing_of(request)
    if request.query.get("format") == "toml":
        response = web.Response(text=policy_toml(routing.version.document))
        response.content_type = "application/toml"
        response.headers["Content-Disposition"] = (
            f'attachment; filename="routing-v{routing.version.version}.toml"'
        )
        return response
    return json_response(_policy_json(routing))


@routes.put("/api/v1/routing/policy")
@requires(Permission.ROUTING_MANAGE)
async def put_policy(request: web.Request) -> web.Response:
    """Replace the whole policy (admins)."""
    routing = routing_of(request)
    body = await read_json(request, PolicyBody)
    await routing.save_policy(principal_of(request), body.document, base_version=body.base_version)
    return json_response(_policy_json(routing))


async def _put_entry(request: web.Request, section: str) -> web.Response:
    routing = routing_of(request)
    body = await read_json(request, EntryBody)
    name = request.match_info["name"]
    entry = body.entry | {"name": name}
    document = dict(routing.version.document)
    entries = list(document.get(section, []))
    names = [e.get("name") for e in entries]
    known = name in names
    if known:  # in place, keeping the order (the board lists queues in policy order)
        entries[names.index(name)] = entry
    else:
        entries.append(entry)
    document[section] = entries
    await routing.save_policy(
        principal_of(request),
        document,
        base_version=body.base_version,
        source=f"the console ({section[:-1]} {name})",
    )
    return json_response(_policy_json(routing), status=200 if known else 201)


async def _delete_entry(request: web.Request, section: str) -> web.Response:
    routing = routing_of(request)
    name = request.match_info["name"]
    document = dict(routing.version.document)
    entries = document.get(section, [])
    if not any(e.get("name") == name for e in entries):
        raise NotFound(f"no {section[:-1]} {name!r} in the routing policy")
    document[section] = [e for e in entries if e.get("name") != name]
    await routing.save_policy(
        principal_of(request),
        document,
        base_version=None,
        source=f"the console (removed {section[:-1]} {name})",
    )
    return json_response(_policy_json(routing))


@routes.put("/api/v1/routing/policy/queues/{name}")
@requires(Permission.ROUTING_MANAGE)
async def put_queue(request: web.Request) -> web.Response:
    """Add a queue, or replace the queue of that name (admins)."""
    return await _put_entry(request, "queues")


@routes.delete("/api/v1/routing/policy/queues/{name}")
@requires(Permission.ROUTING_MANAGE)
async def delete_queue(request: web.Request) -> web.Response:
    """Remove a queue nothing else names and no work waits in (admins)."""
    return await _delete_entry(request, "queues")


@routes.put("/api/v1/routing/policy/calendars/{name}")
@requires(Permission.ROUTING_MANAGE)
async def put_calendar(request: web.Request) -> web.Response:
    """Add business hours, or replace the calendar of that name (admins)."""
    return await _put_entry(request, "calendars")


@routes.delete("/api/v1/routing/policy/calendars/{name}")
@requires(Permission.ROUTING_MANAGE)
async def delete_calendar(request: web.Request) -> web.Response:
    """Remove a calendar no queue uses (admins)."""
    return await _delete_entry(request, "calendars")


@routes.get("/api/v1/routing/policy/versions")
@requires(Permission.AGENTS_READ)
async def versions(request: web.Request) -> web.Response:
    """The policy's versions, newest first: when, who, from where."""
    found = await routing_of(request).policy_versions()
    return json_response({"versions": [version_json(v) for v in found]})


@routes.get(r"/api/v1/routing/policy/versions/{version:\d+}")
@requires(Permission.AGENTS_READ)
async def version(request: web.Request) -> web.Response:
    """One version of the policy, with its document."""
    found = await routing_of(request).policy_version(path_id(request, "version", high=MAX_VERSION))
    return json_response(version_json(found, document=True))


@routes.post(r"/api/v1/routing/policy/versions/{version:\d+}/restore")
@requires(Permission.ROUTING_MANAGE)
async def restore(request: web.Request) -> web.Response:
    """Put an earlier version back in force, as a new version (admins)."""
    routing = routing_of(request)
    number = path_id(request, "version", high=MAX_VERSION)
    found = await routing.policy_version(number)
    if number == routing.version.version:
        raise ValidationError(f"version {number} is the one in force")
    await routing.save_policy(
        principal_of(request),
        found.document,
        base_version=None,
        source=f"the console (restored version {number})",
    )
    return json_response(_policy_json(routing))


@routes.post("/api/v1/routing/reload")
@requires(Permission.ROUTING_MANAGE)
async def reload(request: web.Request) -> web.Response:
    """Put the newest policy in force, importing a changed policy file (from_file: any file).

    A bad file answers 422 with its line and the reason; the policy in force stays.
    """
    body = ReloadBody()
    if request.can_read_body:
        body = await read_json(request, ReloadBody)
    routing = routing_of(request)
    policy = await routing.reload(from_file=body.from_file)
    return json_response(
        {
            "source": policy.source,
            "version": routing.version.version,
            "queues": sorted(policy.queues),
        }
    )
