"""Request middlewares: observation, errors as JSON, authentication and role checks."""

from __future__ import annotations

import itertools
import secrets
import time

import structlog
from aiohttp import web

from hub.domain.users import Permission
from hub.errors import AuthError, HubError
from hub.http import (
    AUTHENTICATED,
    HUB,
    PRINCIPAL,
    PUBLIC,
    TOKEN_ID,
    Handler,
    access_of,
    json_response,
)
from hub.services.accounts import authenticate

log = structlog.get_logger(__name__)
# Request ids: this process's random prefix and a count (uuid4 read os.urandom per request).
_PROCESS = secrets.token_hex(6)
_REQUESTS = itertools.count(1)


def error_body(code: str, message: str, **details: object) -> dict[str, object]:
    """The one shape every API error has."""
    error: dict[str, object] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id, log it once, and count it in the metrics."""
    request_id = request.headers.get("X-Request-Id") or f"{_PROCESS}-{next(_REQUESTS):x}"
    structlog.contextvars.bind_contextvars(request_id=request_id[:64])
    started = time.perf_counter()
    route = request.match_info.route.resource
    route_name = route.canonical if route is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id[:64]
        return response
    finally:
        elapsed = time.perf_counter() - started
        metrics = request.app[HUB].metrics
        metrics.http_requests.labels(request.method, route_name, str(status)).inc()
        metrics.http_latency.labels(request.method, route_name).observe(elapsed)
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=status,
            ms=round(elapsed * 1000, 1),
        )
        structlog.contextvars.unbind_contextvars("request_id")


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure with a JSON error and a stable code; never leak a traceback."""
    try:
        return await handler(request)
    except HubError as err:
        if err.status >= 500:
            log.error("request failed", code=err.code, error=err.message)
        response = json_response(error_body(err.code, err.message, **err.details), err.status)
        if isinstance(err, AuthError) and err.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="hub"'
        if "retry_after" in err.details:
            response.headers["Retry-After"] = str(err.details["retry_after"])
        return response
    except web.HTTPException as err:
        if err.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            err.status, "http_error"
        )
        return json_response(error_body(code, err.reason), err.status)
    except Exception:
        log.exception("unhandled error")
        return json_response(error_body("internal_error", "something went wrong on our side"), 500)


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate the caller and check the route's permission before the handler runs."""
    if request.match_info.http_exception is not None:
        return await handler(request)  # no such route: let it answer 404/405
    access = access_of(request.match_info.handler)
    if access == PUBLIC:
        return await handler(request)
    if access is None:
        raise HubError(f"route {request.path} has no access rule")  # also refused at start-up
    token = bearer_token(request)
    if token is None:
        raise AuthError("log in first: send Authorization: Bearer <token>")
    hub = request.app[HUB]
    principal, token_id = await authenticate(hub.store, token, hub.clock())
    request[PRINCIPAL] = principal
    request[TOKEN_ID] = token_id
    if isinstance(access, Permission):
        principal.require(access)
    elif access != AUTHENTICATED:
        raise HubError(f"route {request.path} has an unknown access rule {access!r}")
    return await handler(request)


# The console is built with no inline script (Vite emits module files); styles may be inline
# (the chat widget draws into a shadow root). Twilio's Voice SDK talks to Twilio's hosts.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self' https://*.twilio.com wss://*.twilio.com",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(self)",
}


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer carries the security headers (on_response_prepare: errors and 404s too)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.app[HUB].settings.public_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def bearer_token(request: web.Request) -> str | None:
    """The token from ``Authorization: Bearer``.

    Cookies are deliberately not read: a cookie-authenticated API needs CSRF protection,
    which comes with the browser console.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None
