"""Checking ``X-Twilio-Signature`` on Twilio's webhooks.

Twilio signs the full URL it called (our public URL, path and query) plus the POSTed form
parameters with HMAC-SHA1 keyed by the account's auth token
(https://www.twilio.com/docs/usage/webhooks/webhooks-security). The check uses the twilio
library's own RequestValidator, against ``public_url`` + the path, never the loopback address
the request arrived on.
"""

from __future__ import annotations

from aiohttp import web
from twilio.request_validator import RequestValidator

from hub.errors import BadSignature

SIGNATURE_HEADER = "X-Twilio-Signature"


async def verified_form(request: web.Request, auth_token: str, public_url: str) -> dict[str, str]:
    """The request's form parameters, if Twilio signed them; BadSignature (403) otherwise."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise BadSignature(f"missing {SIGNATURE_HEADER}")
    form = await request.post()
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    url = public_url + request.path_qs
    if not RequestValidator(auth_token).validate(url, params, signature):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match {url}")
    return params
