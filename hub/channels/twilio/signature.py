"""Checking ``X-Twilio-Signature`` on Twilio's webhooks.

Twilio signs the full URL it called (our public URL, path and query) plus the POSTed form
parameters with HMAC-SHA1 keyed by the account's auth token
(https://www.twilio.com/docs/usage/webhooks/webhooks-security). The check uses the twilio
library's own RequestValidator, against ``public_url`` + the path, never the loopback address
the request arrived on.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from aiohttp import web
from twilio.request_validator import RequestValidator

from hub.errors import BadSignature, MalformedRequest, UnsupportedMediaType

SIGNATURE_HEADER = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 256 * 1024  # an SMS of 1,600 characters and ten media links is a few kB
MAX_SID = 64  # Twilio's ids (CallSid, MessageSid, ...) are 34 characters; the store keeps 64


async def verified_form(request: web.Request, auth_token: str, public_url: str) -> dict[str, str]:
    """The request's form parameters, if Twilio signed them; BadSignature (403) otherwise."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise BadSignature(f"missing {SIGNATURE_HEADER}")
    params = await read_form(request)
    url = public_url + request.path_qs
    validator = RequestValidator(auth_token)
    # The URL as Twilio called it nearly always matches: one HMAC. Only if it does not, the
    # library's full check (the URL with and without its port, two HMACs, both computed).
    signed = hmac.compare_digest(validator.compute_signature(url, params), signature)
    if not signed and not validator.validate(url, params, signature):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match {url}")
    return params


class _Form(dict[str, str]):
    """A form's fields; ``getall`` as a MultiDict has it, which the library's signature code
    asks for first (it finds a plain dict's values only after two AttributeErrors a field)."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


async def read_form(request: web.Request) -> dict[str, str]:
    """The body as Twilio sends it (a UTF-8 urlencoded form), or a 4xx saying what it is not.

    Parsed here rather than by aiohttp's ``post()``, which raises on bytes that are not UTF-8
    and reads multipart bodies too: a webhook that cannot be read answers 400 or 415, never 500.
    """
    if request.content_type != FORM:
        raise UnsupportedMediaType(f"a Twilio webhook is {FORM}, not {request.content_type}")
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise MalformedRequest(f"the webhook is larger than {MAX_FORM_BYTES} bytes")
    raw = await request.read()
    if len(raw) > MAX_FORM_BYTES:
        raise MalformedRequest(f"the webhook is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as err:
        raise MalformedRequest(f"the webhook's form is not UTF-8 text: {err}") from err
    form = _Form(pairs)  # a repeated field: its last value, as aiohttp's form gave
    for name, value in form.items():
        if name.endswith("Sid") and len(value) > MAX_SID:
            raise MalformedRequest(f"{name} is not a Twilio id (at most {MAX_SID} characters)")
    return form
