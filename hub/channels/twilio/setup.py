"""Point the account's numbers and TwiML app at the hub, through Twilio's REST API.

What Twilio does with a call or a text depends on URLs set on the number and on the TwiML app,
not on anything the hub answers; left to a hand in the console they drift. ``hub twilio
configure`` sets them (``--check`` only compares) so that:

- calls and texts reach the hub's webhooks, with connection overrides in the URL's fragment:
  Twilio's default is one retry on a failed connection and none on a 5xx or a timeout, which
  would make "acknowledge after commit" a promise nobody keeps. The overrides retry a failed
  connection, a read timeout and a 5xx (up to five times within 15 s), and every retry is
  deduplicated by its CallSid / MessageSid;
- an inbound call's progress comes back (the number's status callback, and the TwiML app's
  for agents' browser legs): a caller who hangs up in the menu is noted, and one who hangs up
  while waiting is an abandon even when the conference's events are late;
- when every try fails, Twilio asks the fallback URL (``twilio.fallback_url``, if set: a
  second site or a TwiML Bin) instead of playing an application error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from hub.channels.sms.adapter import INBOUND_PATH as SMS_PATH
from hub.channels.twilio.client import twilio_client
from hub.channels.twilio.rest import with_retries
from hub.channels.voice.twiml import AGENT_PATH, CALL_PATH, STATUS_PATH
from hub.config import Settings
from hub.domain.identity import normalize_phone
from hub.errors import ChannelConfigError

# Twilio's limits: rc <= 5, tt <= 15000 ms. A connection fails fast; the hub answers in well
# under a second, so a 5 s read timeout leaves room for two slow tries and a quick one.
CONNECTION_OVERRIDES = "ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx"


def with_overrides(url: str) -> str:
    """The webhook URL with the hub's connection overrides (the fragment is never sent)."""
    return f"{url.partition('#')[0]}#{CONNECTION_OVERRIDES}"


@dataclass(frozen=True, slots=True)
class Setting:
    """One URL or method on a number or app: what it is, and what the hub wants."""

    resource: str  # "+14155550000" or "TwiML app AP..."
    name: str  # the REST field, snake_case (voice_url, status_callback, ...)
    current: str | None
    wanted: str

    @property
    def changed(self) -> bool:
        return (self.current or "") != self.wanted


def wanted_for_number(settings: Settings) -> dict[str, str]:
    """The URLs and methods every number of ours should have."""
    public = settings.public_url.rstrip("/")
    wanted = {
        "voice_url": with_overrides(public + CALL_PATH),
        "voice_method": "POST",
        "status_callback": with_overrides(public + STATUS_PATH),
        "status_callback_method": "POST",
        "sms_url": with_overrides(public + SMS_PATH),
        "sms_method": "POST",
    }
    fallback = settings.twilio.fallback_url
    if fallback:
        wanted |= {
            "voice_fallback_url": fallback,
            "voice_fallback_method": "POST",
            "sms_fallback_url": fallback,
            "sms_fallback_method": "POST",
        }
    return wanted


def wanted_for_app(settings: Settings) -> dict[str, str]:
    """The URLs the TwiML app agents' browsers dial through should have."""
    public = settings.public_url.rstrip("/")
    wanted = {
        "voice_url": with_overrides(public + AGENT_PATH),
        "voice_method": "POST",
        "status_callback": with_overrides(public + STATUS_PATH),
        "status_callback_method": "POST",
    }
    if settings.twilio.fallback_url:
        wanted |= {"voice_fallback_url": settings.twilio.fallback_url}
    return wanted


def _compare(resource: str, found: Any, wanted: dict[str, str]) -> list[Setting]:
    return [
        Setting(resource, name, getattr(found, name, None), value) for name, value in wanted.items()
    ]


async def configure_twilio(settings: Settings, *, apply: bool) -> list[Setting]:
    """Every setting the hub cares about on our numbers and TwiML app; changed ones set.

    With ``apply`` false nothing is changed (a check). ChannelConfigError if a number in
    ``twilio.numbers`` is not on the account or the TwiML app does not exist.
    """
    client, http = twilio_client(settings)
    region = settings.default_region
    try:
        result: list[Setting] = []
        for raw in settings.twilio.numbers:
            number = normalize_phone(raw, region)
            found = await with_retries(
                partial(client.incoming_phone_numbers.list_async, phone_number=number),
                what=f"the number {number}",
            )
            if not found:
                raise ChannelConfigError(
                    f"{number} (twilio.numbers) is not a number of the account"
                )
            resource = client.incoming_phone_numbers(found[0].sid)
            result += await _settle(
                number, found[0], wanted_for_number(settings), resource, apply=apply
            )
        app_sid = settings.twilio.twiml_app_sid
        if app_sid:
            app = client.applications(app_sid)
            current = await with_retries(app.fetch_async, what="the TwiML app")
            result += await _settle(
                f"TwiML app {app_sid}", current, wanted_for_app(settings), app, apply=apply
            )
        return result
    finally:
        await http.close()


async def _settle(
    resource: str, current: Any, wanted: dict[str, str], context: Any, *, apply: bool
) -> list[Setting]:
    """Compare one number's or app's settings with what the hub wants; update if asked."""
    found = [Setting(resource, name, getattr(current, name, None), v) for name, v in wanted.items()]
    changes = {s.name: s.wanted for s in found if s.changed}
    if apply and changes:
        await with_retries(partial(context.update_async, **changes), what=resource)
    return found
