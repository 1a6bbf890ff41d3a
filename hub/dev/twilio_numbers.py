"""The simulator's account configuration: phone numbers, TwiML apps, and webhook delivery.

Twilio sends a number's calls and texts to the URLs set on the number (IncomingPhoneNumbers)
and a browser call to its TwiML app's URLs (Applications); both are REST resources, and this
module speaks the parts of them ``hub twilio configure`` uses: list, fetch, update.

It also delivers webhooks as Twilio does (https://www.twilio.com/docs/usage/webhooks/
webhooks-connection-overrides): the connection settings come from the URL's fragment
(``#ct=...&rt=...&tt=...&rc=...&rp=...``) and default to one retry on a failed connection
only. A 5xx or a read timeout is not retried unless the fragment says so; when every try
fails, the fallback URL set on the number is asked instead, and without one the caller
hears an application error. The fragment is never sent, and signatures do not cover it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from hub.dev.twilio_sim import TwilioSimulator

ACCOUNT = "/2010-04-01/Accounts/{account}"
RETRY_POLICIES = frozenset({"4xx", "5xx", "ct", "rt", "all"})


@dataclass(frozen=True)
class ConnectionOverrides:
    """A webhook URL's connection settings, with Twilio's defaults and limits."""

    connect_ms: int = 5000  # ct: 100-10000
    read_ms: int = 15000  # rt: 100-15000
    total_ms: int = 15000  # tt: 100-15000, retries included
    retries: int = 1  # rc: 0-5
    policy: frozenset[str] = frozenset({"ct"})  # rp: 4xx, 5xx, ct, rt, all

    @classmethod
    def of(cls, url: str) -> tuple[str, ConnectionOverrides]:
        """The URL Twilio requests (no fragment) and the settings its fragment gives."""
        base, _, fragment = url.partition("#")
        values = dict(parse_qsl(fragment))

        def number(key: str, default: int, low: int, high: int) -> int:
            raw = values.get(key)
            return default if raw is None or not raw.isdigit() else max(low, min(high, int(raw)))

        policy = frozenset(p for p in values.get("rp", "ct").split(",") if p in RETRY_POLICIES)
        return base, cls(
            connect_ms=number("ct", 5000, 100, 10000),
            read_ms=number("rt", 15000, 100, 15000),
            total_ms=number("tt", 15000, 100, 15000),
            retries=number("rc", 1, 0, 5),
            policy=policy or frozenset({"ct"}),
        )

    def retries_on(self, failure: str) -> bool:
        return "all" in self.policy or failure in self.policy


@dataclass
class Delivery:
    """What delivering one webhook came to: the last answer and every try made."""

    status: int  # 0: no answer (connection failed or timed out)
    body: str
    tries: list[tuple[str, int | str]] = field(default_factory=list)  # (url, status or failure)
    fallback: bool = False  # the answer is the fallback URL's


@dataclass
class SimNumber:
    """One of the account's phone numbers and the URLs set on it."""

    sid: str
    phone_number: str
    voice_url: str | None
    sms_url: str | None
    voice_method: str = "POST"
    sms_method: str = "POST"
    status_callback: str | None = None  # unset, as on a new number: call progress goes nowhere
    status_callback_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    sms_fallback_url: str | None = None
    sms_fallback_method: str = "POST"

    def as_twilio(self, account_sid: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "phone_number": self.phone_number,
            "friendly_name": self.phone_number,
            "voice_url": self.voice_url,
            "voice_method": self.voice_method,
            "voice_fallback_url": self.voice_fallback_url,
            "voice_fallback_method": self.voice_fallback_method,
            "status_callback": self.status_callback,
            "status_callback_method": self.status_callback_method,
            "sms_url": self.sms_url,
            "sms_method": self.sms_method,
            "sms_fallback_url": self.sms_fallback_url,
            "sms_fallback_method": self.sms_fallback_method,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers/{self.sid}.json",
        }


@dataclass
class SimApplication:
    """A TwiML app: where a browser (Voice SDK) call's TwiML and status go."""

    sid: str
    friendly_name: str
    voice_url: str | None = None
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"

    def as_twilio(self, account_sid: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "friendly_name": self.friendly_name,
            "voice_url": self.voice_url,
            "voice_method": self.voice_method,
            "voice_fallback_url": self.voice_fallback_url,
            "voice_fallback_method": self.voice_fallback_method,
            "status_callback": self.status_callback,
            "status_callback_method": self.status_callback_method,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account_sid}/Applications/{self.sid}.json",
        }


# The form fields Twilio takes on an update, and the attribute each one sets.
NUMBER_FIELDS = {
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method",
}


class AccountSim:
    """The account's numbers and TwiML apps, and webhook delivery by their settings."""

    def __init__(self, sim: TwilioSimulator) -> None:
        self._sim = sim
        self.numbers: dict[str, SimNumber] = {}
        self.applications: dict[str, SimApplication] = {}

    def number(self, phone_number: str) -> SimNumber:
        """The account's number; one not seen before is bought pointed at the hub.

        Pointed at the hub's voice and SMS webhooks as the README tells a newcomer to paste
        them in the console: no status callback, no fallback, no connection overrides.
        """
        found = self.numbers.get(phone_number)
        if found is None:
            public = self._sim.public_url
            found = SimNumber(
                sid="PN" + secrets.token_hex(16),
                phone_number=phone_number,
                voice_url=public + "/webhooks/twilio/voice",
                sms_url=public + "/webhooks/twilio/sms",
            )
            self.numbers[phone_number] = found
        return found

    def application(self, friendly_name: str = "hub agents") -> SimApplication:
        """A new TwiML app with nothing set, as the console creates one."""
        app = SimApplication(sid="AP" + secrets.token_hex(16), friendly_name=friendly_name)
        self.applications[app.sid] = app
        return app

    # -- REST --------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        numbers = ACCOUNT + "/IncomingPhoneNumbers"
        apps = ACCOUNT + "/Applications/{sid}.json"
        return [
            web.get(numbers + ".json", self._list_numbers),
            web.get(numbers + "/{sid}.json", self._fetch),
            web.post(numbers + "/{sid}.json", self._update),
            web.get(apps, self._fetch),
            web.post(apps, self._update),
        ]

    async def _list_numbers(self, request: web.Request) -> web.Response:
        refused = await self._sim.read(request)
        if refused is not None:
            return refused
        wanted = request.query.get("PhoneNumber")
        found = [n for n in self.numbers.values() if wanted in (None, n.phone_number)]
        uri = request.path
        return web.json_response(
            {
                "incoming_phone_numbers": [n.as_twilio(self._sim.account_sid) for n in found],
                "page": 0,
                "page_size": 50,
                "first_page_uri": uri,
                "next_page_uri": None,
                "previous_page_uri": None,
                "uri": uri,
                "start": 0,
                "end": max(0, len(found) - 1),
            }
        )

    def _by_sid(self, sid: str) -> SimNumber | None:
        return next((n for n in self.numbers.values() if n.sid == sid), None)

    def _resource(self, request: web.Request) -> SimNumber | SimApplication | None:
        """The number (PN...) or TwiML app (AP...) a request names by sid."""
        sid = request.match_info["sid"]
        if "/IncomingPhoneNumbers/" in request.path:
            return self._by_sid(sid)
        return self.applications.get(sid)

    async def _fetch(self, request: web.Request) -> web.Response:
        refused = await self._sim.read(request)
        if refused is not None:
            return refused
        found = self._resource(request)
        if found is None:
            return not_found()
        return web.json_response(found.as_twilio(self._sim.account_sid))

    async def _update(self, request: web.Request) -> web.Response:
        """Set the URLs and methods the form names (an app has no SMS ones: ignored)."""
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self._sim.requests.append(("POST", request.path, form))
        refused = await self._sim._refuse(request)
        if refused is not None:
            return refused
        found = self._resource(request)
        if found is None:
            return not_found()
        for key, attribute in NUMBER_FIELDS.items():
            if key in form and hasattr(found, attribute):
                setattr(found, attribute, form[key] or None)
        return web.json_response(found.as_twilio(self._sim.account_sid))

    # -- delivering webhooks -----------------------------------------------------------------

    async def deliver(
        self, url: str, params: dict[str, str], *, fallback: str | None = None
    ) -> Delivery:
        """POST a signed webhook with the URL's connection settings; then the fallback's.

        A hub URL (under its public URL) is sent where the hub listens on loopback; any other
        URL is requested as it is (a fallback host a test runs).
        """
        result = await self._deliver_one(url, params)
        if result.status // 100 != 2 and fallback:
            second = await self._deliver_one(fallback, params)
            second.tries[:0] = result.tries
            second.fallback = True
            return second
        return result

    async def _deliver_one(self, url: str, params: dict[str, str]) -> Delivery:
        base, settings = ConnectionOverrides.of(url)
        target = base
        if base.startswith(self._sim.public_url):
            target = self._sim.hub_url + base[len(self._sim.public_url) :]
        headers = {"X-Twilio-Signature": self._sim.signature(base, params)}
        deadline = time.monotonic() + settings.total_ms / 1000
        result = Delivery(status=0, body="")
        for _ in range(1 + settings.retries):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            timeout = aiohttp.ClientTimeout(
                total=left,
                sock_connect=settings.connect_ms / 1000,
                sock_read=settings.read_ms / 1000,
            )
            failure: str
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as session,
                    session.post(target, data=params, headers=headers) as response,
                ):
                    result.status, result.body = response.status, await response.text()
                    result.tries.append((base, response.status))
                    if response.status // 100 in (2, 3):
                        return result
                    failure = f"{response.status // 100}xx"
            except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError):
                result.status, result.body, failure = 0, "", "ct"  # no connection made
                result.tries.append((base, failure))
            except (TimeoutError, aiohttp.ClientError, OSError):
                result.status, result.body, failure = 0, "", "rt"  # no (whole) answer
                result.tries.append((base, failure))
            if not settings.retries_on(failure):
                break
            await asyncio.sleep(0)
        return result


def not_found() -> web.Response:
    return web.json_response(
        {"code": 20404, "message": "The requested resource was not found", "status": 404},
        status=404,
    )
