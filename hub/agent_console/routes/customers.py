"""Customers: search, the unified record, profile, identities, timeline, notes, merges."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Base64Bytes, BaseModel, ConfigDict, Field, StringConstraints

from hub.agent_console.presenters import (
    customer_json,
    event_json,
    interaction_json,
    merge_json,
    note_json,
    record_json,
    search_hit_json,
)
from hub.crm_store.timeline import decode_cursor, encode_cursor
from hub.domain.identity import IdentityClaim, IdentityKind, normalize_identity
from hub.domain.users import Permission
from hub.errors import ValidationError
from hub.http import (
    HUB,
    MAX_REPLY_BYTES,
    Id,
    json_response,
    path_id,
    principal_of,
    query_int,
    read_json,
    requires,
)
from hub.services import customers, interactions, replies
from hub.services.identities import Attached

routes = web.RouteTableDef()

FieldValue = str | int | float | bool | None
FieldKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Tag = Annotated[str, StringConstraints(max_length=64)]


class IdentityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)
    verified: bool = False


class CreateCustomerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    identities: list[IdentityBody] = Field(default_factory=list, max_length=50)
    custom_fields: dict[FieldKey, FieldValue] = Field(default_factory=dict, max_length=100)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    team_id: Id | None = None


class UpdateCustomerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    custom_fields: dict[FieldKey, FieldValue] | None = Field(default=None, max_length=100)
    tags: list[Tag] | None = Field(default=None, max_length=50)
    owner_id: Id | None = None
    team_id: Id | None = None


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=20_000)
    interaction_id: Id | None = None


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merge_from: Id = Field(description="the customer absorbed into the one in the path")


class ReplyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=200)
    content_type: str = Field(default="application/octet-stream", pattern=r"^[\w.+-]+/[\w.+-]+$")
    content_base64: Base64Bytes


class ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=100_000)  # each channel checks its own limit
    html: str | None = Field(default=None, max_length=500_000)  # email: sanitized before sending
    attachments: list[ReplyFile] = Field(default_factory=list, max_length=20)


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disposition: str | None = Field(default=None, max_length=100)


def _claim(body: IdentityBody, region: str) -> IdentityClaim:
    return IdentityClaim(normalize_identity(body.kind, body.value, region), body.verified)


def _attached_json(attached: Attached) -> dict[str, Any]:
    return {
        "identity_id": attached.identity_id,
        "refused": attached.refused,
        "merge_suggestions": attached.suggestions,
    }


@routes.get("/api/v1/customers")
@requires(Permission.CUSTOMERS_READ)
async def search(request: web.Request) -> web.Response:
    """Search by name fragment, phone in any format, email, or external id: ?q=."""
    hub = request.app[HUB]
    limit = query_int(request, "limit", customers.SEARCH_LIMIT, low=1, high=200)
    hits = await customers.search_customers(
        hub.store,
        principal_of(request),
        request.query.get("q", ""),
        default_region=hub.settings.default_region,
        limit=limit,
    )
    return json_response({"customers": [search_hit_json(h) for h in hits]})


@routes.post("/api/v1/customers")
@requires(Permission.CUSTOMERS_WRITE)
async def create(request: web.Request) -> web.Response:
    """Create a customer by hand."""
    hub = request.app[HUB]
    body = await read_json(request, CreateCustomerBody)
    region = hub.settings.default_region
    customer, attached = await customers.create_customer(
        hub.store,
        principal_of(request),
        display_name=body.name.strip() if body.name and body.name.strip() else None,
        claims=[_claim(i, region) for i in body.identities],
        custom_fields=body.custom_fields,
        tags=body.tags,
        team_id=body.team_id,
        now=hub.clock(),
    )
    return json_response(
        {**customer_json(customer), "identities": [_attached_json(a) for a in attached]},
        status=201,
    )


@routes.get(r"/api/v1/customers/{customer_id:\d+}")
@requires(Permission.CUSTOMERS_READ)
async def record(request: web.Request) -> web.Response:
    """The unified customer record."""
    hub = request.app[HUB]
    found = await customers.unified_record(
        hub.store,
        principal_of(request),
        path_id(request, "customer_id"),
        events=hub.settings.record_events,
    )
    return json_response(record_json(found))


@routes.patch(r"/api/v1/customers/{customer_id:\d+}")
@requires(Permission.CUSTOMERS_WRITE)
async def update(request: web.Request) -> web.Response:
    """Change name, custom fields, tags, owner or team."""
    hub = request.app[HUB]
    body = await read_json(request, UpdateCustomerBody)
    given = body.model_fields_set
    if not given:
        raise ValidationError(
            "nothing to change: send name, custom_fields, tags, owner_id or team_id"
        )
    changes: dict[str, Any] = {}
    if "name" in given:
        changes["display_name"] = body.name.strip() if body.name and body.name.strip() else None
    for name in ("custom_fields", "tags"):
        if name in given:
            value = getattr(body, name)
            if value is None:
                raise ValidationError(f"{name} cannot be null; send an empty value", field=name)
            changes[name] = value
    for name in ("owner_id", "team_id"):
        if name in given:
            changes[name] = getattr(body, name)
    customer = await customers.update_customer(
        hub.store,
        principal_of(request),
        path_id(request, "customer_id"),
        changes,
        hub.clock(),
    )
    return json_response(customer_json(customer))


@routes.post(r"/api/v1/customers/{customer_id:\d+}/identities")
@requires(Permission.CUSTOMERS_WRITE)
async def add_identity(request: web.Request) -> web.Response:
    """Add an identity; one another customer holds verified is refused and suggested instead."""
    hub = request.app[HUB]
    body = await read_json(request, IdentityBody)
    attached = await customers.add_identity(
        hub.store,
        principal_of(request),
        path_id(request, "customer_id"),
        _claim(body, hub.settings.default_region),
        hub.clock(),
    )
    if attached.refused:
        return json_response(
            {
                "error": {
                    "code": "identity_taken",
                    "message": "another customer holds this identity verified; "
                    "a merge suggestion was made instead",
                    "details": _attached_json(attached),
                }
            },
            status=409,
        )
    return json_response(_attached_json(attached), status=201)


@routes.get(r"/api/v1/customers/{customer_id:\d+}/timeline")
@requires(Permission.TIMELINE_READ)
async def timeline(request: web.Request) -> web.Response:
    """The timeline across channels, newest first; page on with ?before=<next_before>."""
    hub = request.app[HUB]
    limit = query_int(request, "limit", 50, low=1, high=200)
    cursor = request.query.get("before")
    events = await customers.timeline_page(
        hub.store,
        principal_of(request),
        path_id(request, "customer_id"),
        limit=limit,
        before=decode_cursor(cursor) if cursor else None,
    )
    next_before = encode_cursor(events[-1]) if len(events) == limit else None
    return json_response({"events": [event_json(e) for e in events], "next_before": next_before})


@routes.get(r"/api/v1/events/{event_id:\d+}/attachments/{index:\d+}")
@requires(Permission.TIMELINE_READ)
async def attachment(request: web.Request) -> web.StreamResponse:
    """A file the hub kept (an MMS image, later email attachments and faxes)."""
    hub = request.app[HUB]
    found = await customers.attachment_file(
        hub.store,
        principal_of(request),
        path_id(request, "event_id"),
        path_id(request, "index", low=0),
        data_dir=hub.settings.data_dir,
    )
    response = web.FileResponse(found.path)
    response.content_type = found.content_type
    response.headers["X-Content-Type-Options"] = "nosniff"  # never run what customers send
    response.headers["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    return response


@routes.get(r"/api/v1/customers/{customer_id:\d+}/notes")
@requires(Permission.TIMELINE_READ)
async def notes(request: web.Request) -> web.Response:
    """The customer's notes, newest first."""
    hub = request.app[HUB]
    found = await customers.list_notes(
        hub.store,
        principal_of(request),
        path_id(request, "customer_id"),
        limit=query_int(request, "limit", 100, low=1, high=500),
    )
    return json_response({"notes": [note_json(n) for n in found]})


@routes.post(r"/api/v1/customers/{customer_id:\d+}/notes")
@requires(Permission.NOTES_WRITE)
async def add_note(request: web.Request) -> web.Response:
    """Write a note (it also appears on the timeline)."""
    hub = request.app[HUB]
    body = await read_json(request, NoteBody)
    note = await customers.add_note(
        hub.store,
        principal_of(request),
        path_id(request, "customer_id"),
        body=body.body,
        interaction_id=body.interaction_id,
        now=hub.clock(),
    )
    return json_response(note_json(note), status=201)


@routes.post(r"/api/v1/customers/{customer_id:\d+}/merge")
@requires(Permission.CUSTOMERS_MERGE)
async def merge(request: web.Request) -> web.Response:
    """Merge the customer named in merge_from into this one."""
    hub = request.app[HUB]
    body = await read_json(request, MergeBody)
    record = await customers.merge_customers(
        hub.store,
        principal_of(request),
        path_id(request, "customer_id"),
        body.merge_from,
        hub.clock(),
    )
    return json_response(merge_json(record), status=201)


@routes.post(r"/api/v1/merges/{merge_id:\d+}/undo")
@requires(Permission.CUSTOMERS_UNMERGE)
async def unmerge(request: web.Request) -> web.Response:
    """Undo a merge."""
    hub = request.app[HUB]
    record = await customers.unmerge_customers(
        hub.store, principal_of(request), path_id(request, "merge_id"), hub.clock()
    )
    return json_response(merge_json(record))


@routes.post(r"/api/v1/merge-suggestions/{suggestion_id:\d+}/dismiss")
@requires(Permission.CUSTOMERS_MERGE)
async def dismiss(request: web.Request) -> web.Response:
    """Say a suggested pair are different people."""
    hub = request.app[HUB]
    await customers.dismiss_suggestion(
        hub.store, principal_of(request), path_id(request, "suggestion_id"), hub.clock()
    )
    return web.Response(status=204)


@routes.get(r"/api/v1/interactions/{interaction_id:\d+}")
@requires(Permission.CUSTOMERS_READ)
async def interaction(request: web.Request) -> web.Response:
    """One interaction."""
    found = await interactions.get_interaction(
        request.app[HUB].store, principal_of(request), path_id(request, "interaction_id")
    )
    return json_response(interaction_json(found))


@routes.post(r"/api/v1/interactions/{interaction_id:\d+}/reply")
@requires(Permission.WORK_TAKE)
async def reply(request: web.Request) -> web.Response:
    """Write back to the customer on the interaction's channel; the event carries its status."""
    hub = request.app[HUB]
    body = await read_json(request, ReplyBody, max_bytes=MAX_REPLY_BYTES)
    event = await replies.reply(
        hub.store,
        {c.channel: c for c in hub.channels},
        principal_of(request),
        path_id(request, "interaction_id"),
        body=body.body,
        html=body.html,
        files=tuple(
            replies.ReplyFile(f.filename, f.content_type, f.content_base64)
            for f in body.attachments
        ),
        data_dir=hub.settings.data_dir,
        now=hub.clock(),
    )
    return json_response(event_json(event), status=201)


@routes.post(r"/api/v1/interactions/{interaction_id:\d+}/close")
@requires(Permission.NOTES_WRITE)
async def close(request: web.Request) -> web.Response:
    """Close an interaction with an optional disposition."""
    hub = request.app[HUB]
    body = await read_json(request, CloseBody)
    found = await interactions.close_interaction(
        hub.store,
        principal_of(request),
        path_id(request, "interaction_id"),
        disposition=body.disposition,
        now=hub.clock(),
    )
    return json_response(interaction_json(found))
