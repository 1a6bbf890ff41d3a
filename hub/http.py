"""HTTP plumbing shared by the console API and channel webhooks.

Every route says who may call it: ``@requires(permission)``, ``@authenticated`` (any logged-in
user) or ``@public``. The app refuses to start with a route that says nothing (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import pydantic
import socketio
import structlog
from aiohttp import web

from hub.domain.users import Permission, Principal
from hub.errors import HubError, MalformedRequest, NotFound, UnsupportedMediaType, ValidationError
from hub.json_writer import json_bytes

if TYPE_CHECKING:
    from hub.bootstrap import Hub

log = structlog.get_logger(__name__)
HUB: web.AppKey[Hub] = web.AppKey("hub")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
TOKEN_ID: web.RequestKey[int] = web.RequestKey("token_id", int)
ACCESS_ATTRIBUTE = "__hub_access__"
MAX_JSON_BYTES = 1024 * 1024
MAX_REPLY_BYTES = 30 * 1024 * 1024  # a reply with attachments (base64: 4/3 of the files)
MAX_ID = 2**63 - 1  # the stores' ids are signed 64-bit integers
MAX_VERSION = 2**31 - 1  # versions of what admins edit are 32-bit integers in the store
# A row id in a request body: what the stores can hold (a larger one is a 422, not a 500).
Id = Annotated[int, pydantic.Field(ge=1, le=MAX_ID)]
Version = Annotated[int, pydantic.Field(ge=0, le=MAX_VERSION)]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Awaitable[web.StreamResponse]])
M = TypeVar("M", bound=pydantic.BaseModel)

PUBLIC = "public"
AUTHENTICATED = "authenticated"


def requires(permission: Permission) -> Callable[[H], H]:
    """Mark a handler as needing an authenticated caller whose role grants permission."""

    def mark(handler: H) -> H:
        setattr(handler, ACCESS_ATTRIBUTE, permission)
        return handler

    return mark


def authenticated(handler: H) -> H:
    """Mark a handler as open to any authenticated caller."""
    setattr(handler, ACCESS_ATTRIBUTE, AUTHENTICATED)
    return handler


def public(handler: H) -> H:
    """Mark a handler as open to anyone (health checks, login, signed webhooks)."""
    setattr(handler, ACCESS_ATTRIBUTE, PUBLIC)
    return handler


def access_of(handler: Any) -> Permission | str | None:
    """What a handler was marked with, or None when it was not marked."""
    return getattr(handler, ACCESS_ATTRIBUTE, None)


def principal_of(request: web.Request) -> Principal:
    """The authenticated caller (set by the auth middleware)."""
    return request[PRINCIPAL]


async def read_json(request: web.Request, model: type[M], *, max_bytes: int = MAX_JSON_BYTES) -> M:
    """Parse the body as JSON into model: 415 unless it says JSON, 400 unless it is, 422 unfit."""
    if not is_json_type(request.content_type):
        raise UnsupportedMediaType(
            f"send the body as Content-Type: application/json, not {request.content_type}"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise MalformedRequest(f"the body is larger than {max_bytes} bytes")
    raw = await request.read()
    if len(raw) > max_bytes:
        raise MalformedRequest(f"the body is larger than {max_bytes} bytes")
    if not raw:
        raise MalformedRequest("the body is empty; send a JSON object")
    data = loads_json(raw)
    if not isinstance(data, dict):
        raise MalformedRequest("the body must be a JSON object")
    return validate(model, data)


def is_json_type(content_type: str) -> bool:
    """Whether a media type is JSON (application/json, or a +json type such as problem+json)."""
    kind = content_type.lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def loads_json(raw: bytes | str) -> Any:
    """Parse JSON from a request, or MalformedRequest saying why it is not JSON.

    Nesting deeper than Python's recursion limit (50,000 ``[``) is refused as malformed too,
    instead of escaping as a RecursionError.
    """
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MalformedRequest(f"the body is not JSON: {err}") from err
    except RecursionError as err:
        raise MalformedRequest("the body is not JSON the hub reads: nested too deeply") from err


def id_in(text: str, *, low: int = 1, high: int = MAX_ID) -> int | None:
    """A numeric id written in text, or None if it is none a row can have (not digits, or
    outside ``low``-``high``: beyond 64 bits by default)."""
    value = int(text) if text.isdigit() and len(text) <= 19 else -1
    return value if low <= value <= high else None


def path_id(request: web.Request, name: str, *, low: int = 1, high: int = MAX_ID) -> int:
    """A numeric id from the path; an id no row can have (beyond 64 bits, or ``high``) is
    simply not found."""
    raw = request.match_info[name]
    value = id_in(raw, low=low, high=high)
    if value is None:
        raise NotFound(f"no {name.removesuffix('_id').replace('_', ' ')} {raw[:40]}")
    return value


def validate(model: type[M], data: Any) -> M:
    """Validate data against model, turning pydantic's errors into a 422 with each field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or None, "reason": e["msg"]}
            for e in err.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
        raise ValidationError(f"the input is not valid: {summary}", problems=problems) from err


def query_int(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or a 422 naming it."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ValidationError(f"{name} must be a whole number", field=name) from err
    if not low <= value <= high:
        raise ValidationError(f"{name} must be between {low} and {high}", field=name)
    return value


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response (dates as ISO 8601 strings)."""
    return web.Response(
        body=json_bytes(data), status=status, content_type="application/json", charset="utf-8"
    )


def failure(err: HubError) -> dict[str, Any]:
    """A socket.io request's refusal: the same code and message the HTTP API would give."""
    return {"ok": False, "error": {"code": err.code, "message": err.message}}


class GuardedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """A socket.io namespace whose every request gets an answer.

    A handler that fails with something unforeseen (a library error nobody translated) would
    leave the client waiting for its acknowledgement until it times out; here it answers
    with an error, as the HTTP API answers 500, and the failure is logged.
    """

    async def trigger_event(self, event: str, *args: Any) -> Any:
        try:
            return await super().trigger_event(event, *args)
        except (socketio.exceptions.ConnectionRefusedError, HubError):
            raise
        except Exception:
            log.exception("socket.io handler failed", namespace=self.namespace, event=event)
            if event == "connect":
                raise socketio.exceptions.ConnectionRefusedError(
                    "something went wrong on our side"
                ) from None
            if event == "disconnect":
                return None
            return failure(HubError("something went wrong on our side"))
