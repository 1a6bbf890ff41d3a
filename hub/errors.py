"""The hub's error vocabulary.

Every error the hub raises on purpose is a ``HubError``. Each carries a stable ``code`` (what API
clients match on) and the HTTP ``status`` the API answers with::

    HubError                      500 internal_error
    ├── ConfigError               (start-up only) a setting is missing or wrong; names the setting
    ├── ValidationError           422 invalid_input: the caller's input is wrong
    │   ├── MalformedRequest      400 malformed_request: not JSON, not an object
    │   ├── UnsupportedMediaType  415 unsupported_media_type: not a type the route reads
    │   └── InvalidIdentity       422 invalid_identity: a phone/email/... that cannot be parsed
    ├── AuthError                 401 unauthenticated: no or bad credentials
    │   └── Forbidden             403 forbidden: authenticated, but the role may not do this
    │       └── BadSignature      403 bad_signature: a webhook that its provider did not sign
    ├── NotFound                  404 not_found
    ├── TooManyRequests           429 too_many_requests: slow down (``retry_after`` seconds)
    ├── Conflict                  409 conflict: the request clashes with the current state
    │   ├── IllegalTransition     409 illegal_transition: the interaction state machine says no
    │   └── StoreConflict         409 store_conflict: a concurrent write got there first
    ├── StoreError                503 store_unavailable: the database failed under us
    ├── ChannelError              502 channel_error: a provider or channel adapter failed
    │   ├── ChannelNotReady       503 channel_not_ready: try again later
    │   ├── ChannelAuthFailed     502 channel_auth_failed: credentials rejected by the provider
    │   └── ChannelConfigError    500 channel_config_error: the channel is set up wrong
    └── RoutingError              500 routing_error

Library errors are translated where they enter (``raise StoreError(...) from err``) so the core
decides between retry, re-authentication and giving up.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HubError(Exception):
    """Base of every error the hub raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code  # type: ignore[misc]  # a more specific code for this instance
        self.details = details


class ConfigError(HubError):
    """A setting is missing or wrong; the message names it."""

    code = "config_error"


class ValidationError(HubError):
    """The caller's input is wrong."""

    code = "invalid_input"
    status = 422


class MalformedRequest(ValidationError):
    """The request body is not what the endpoint reads at all."""

    code = "malformed_request"
    status = 400


class UnsupportedMediaType(ValidationError):
    """The body is of a type the endpoint does not read (JSON sent as text/plain)."""

    code = "unsupported_media_type"
    status = 415


class InvalidIdentity(ValidationError):
    """A phone number, email address or other identity that cannot be understood."""

    code = "invalid_identity"


class AuthError(HubError):
    """No credentials, or credentials that are not valid."""

    code = "unauthenticated"
    status = 401


class Forbidden(AuthError):
    """The caller is known but their role does not allow this."""

    code = "forbidden"
    status = 403


class BadSignature(Forbidden):
    """A webhook whose signature does not check out: refused, nothing stored."""

    code = "bad_signature"


class NotFound(HubError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    code = "not_found"
    status = 404


class TooManyRequests(HubError):
    """The caller is going too fast (e.g. repeated failed logins)."""

    code = "too_many_requests"
    status = 429


class Conflict(HubError):
    """The request clashes with the current state."""

    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    """An interaction cannot move from its state to the one asked for."""

    code = "illegal_transition"


class StoreConflict(Conflict):
    """A uniqueness rule refused a write, usually because a concurrent writer got there first."""

    code = "store_conflict"


class StoreError(HubError):
    """The database failed underneath an operation."""

    code = "store_unavailable"
    status = 503


class ChannelError(HubError):
    """A channel adapter or its provider failed."""

    code = "channel_error"
    status = 502


class ChannelNotReady(ChannelError):
    """The channel cannot work right now (provider down, connection lost); retry later."""

    code = "channel_not_ready"
    status = 503


class ChannelAuthFailed(ChannelError):
    """The provider rejected the channel's credentials."""

    code = "channel_auth_failed"


class ChannelConfigError(ChannelError):
    """The channel is configured wrongly."""

    code = "channel_config_error"
    status = 500


class RoutingError(HubError):
    """The ACD could not make a decision."""

    code = "routing_error"
