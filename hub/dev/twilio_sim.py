"""A local stand-in for Twilio, at the wire: its REST API in, signed webhooks out.

The hub's real ``twilio`` library talks to it when ``twilio.api_base_url`` points here. It
speaks the parts of the REST API the hub uses (Messages: create, fetch; the phone resources are
in ``hub.dev.twilio_voice``), checks the account's basic auth as Twilio does, records every
request, answers in Twilio's JSON shapes, and fires status callbacks signed with the account's
auth token. It also plays the customer: it sends the hub inbound SMS webhooks and calls signed
exactly as Twilio signs them (over the hub's *public* URL).

Failures can be injected (``fail_next(status, count)``) to see the hub retry 429s and 500s.

Run it for a demo with ``hub dev twilio-sim``; tests start it in-process.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from hub.dev.twilio_numbers import AccountSim
from hub.dev.twilio_voice import VoiceSim

API = "/2010-04-01/Accounts/{account}/Messages"


@dataclass
class SimMessage:
    """A message the hub asked the simulator to send."""

    sid: str
    to: str
    from_: str
    body: str
    status: str
    status_callback: str | None
    media_urls: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_twilio(self, account_sid: str) -> dict[str, Any]:
        """The message resource as Twilio's API returns it."""
        when = format_datetime(self.created)
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "status": self.status,
            "direction": "outbound-api",
            "num_media": str(len(self.media_urls)),
            "num_segments": "1",
            "date_created": when,
            "date_updated": when,
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "api_version": "2010-04-01",
            "messaging_service_sid": None,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{self.sid}.json",
            "subresource_uris": {},
        }


# Twilio's default opt-out keywords (https://help.twilio.com/articles/223134027).
TWILIO_STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
TWILIO_START_WORDS = frozenset({"START", "YES", "UNSTOP"})


class TwilioSimulator:
    """Twilio's REST API and webhooks, on loopback."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        hub_url: str,
        public_url: str,
        deliver: Iterable[str] = ("sent", "delivered"),
        on_message: Callable[[SimMessage], None] | None = None,
        numbers: Iterable[str] = (),
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.hub_url = hub_url.rstrip("/")  # where the hub really listens
        self.public_url = public_url.rstrip("/")  # what Twilio would call (signatures cover it)
        self.deliver = tuple(deliver)
        self.on_message = on_message
        self.messages: dict[str, SimMessage] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.callbacks: list[tuple[str, dict[str, str], int]] = []
        self._failures: list[int] = []
        # Numbers that texted STOP: Twilio's own opt-out handling blocks sending to them
        # (error 21610) until they text START, whatever the app thinks.
        self.unsubscribed: set[str] = set()
        self.media: dict[str, tuple[bytes, str]] = {}
        self._media_failures = 0
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._validator = RequestValidator(auth_token)
        self._tasks: set[asyncio.Task[None]] = set()
        self.account = AccountSim(self)  # the account's numbers and TwiML apps
        for number in numbers:  # bought, pointed at the hub as a newcomer would
            self.account.number(number)
        self.voice = VoiceSim(self)

    # -- the server --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(API.format(account="{account}") + ".json", self._create_message)
        app.router.add_get(API.format(account="{account}") + "/{sid}.json", self._fetch_message)
        app.router.add_get("/media/{name}", self._media)
        app.router.add_routes(self.voice.routes())
        app.router.add_routes(self.account.routes())
        return app

    def host_media(self, name: str, content: bytes, content_type: str) -> str:
        """Offer a file as Twilio offers MMS media; returns its URL."""
        self.media[name] = (content, content_type)
        return f"{self.url}/media/{name}"

    def fail_media(self, count: int) -> None:
        """Answer the next ``count`` media downloads with 500."""
        self._media_failures += count

    async def _media(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401)
        if self._media_failures:
            self._media_failures -= 1
            return web.Response(status=500)
        found = self.media.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; return the base URL to give the hub as twilio.api_base_url."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        await self.settle()
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` REST requests with ``status`` (429, 500 ...)."""
        self._failures += [status] * count

    def _authorized(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    async def _refuse(self, request: web.Request) -> web.Response | None:
        if not self._authorized(request) or request.match_info["account"] != self.account_sid:
            return web.json_response(
                {"code": 20003, "message": "Authenticate", "status": 401}, status=401
            )
        if self._failures:
            status = self._failures.pop(0)
            return web.json_response(
                {
                    "code": 20429 if status == 429 else 20500,
                    "message": "simulated",
                    "status": status,
                },
                status=status,
            )
        return None

    async def _create_message(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.requests.append(("POST", request.path, form))
        refused = await self._refuse(request)
        if refused is None and form.get("To") in self.unsubscribed:
            refused = web.json_response(
                {
                    "code": 21610,
                    "message": "Attempt to send to unsubscribed recipient",
                    "more_info": "https://www.twilio.com/docs/errors/21610",
                    "status": 400,
                },
                status=400,
            )
        if refused is not None:
            return refused
        if not form.get("To") or not (form.get("Body") or form.get("MediaUrl")):
            return web.json_response(
                {"code": 21602, "message": "Message body is required.", "status": 400}, status=400
            )
        message = SimMessage(
            sid="SM" + secrets.token_hex(16),
            to=form["To"],
            from_=form.get("From", ""),
            body=form.get("Body", ""),
            status="queued",
            status_callback=form.get("StatusCallback"),
            media_urls=[v for k, v in form.items() if k == "MediaUrl"],
        )
        self.messages[message.sid] = message
        if self.on_message is not None:
            self.on_message(message)
        if message.status_callback:
            self.spawn(self._report(message))
        return web.json_response(message.as_twilio(self.account_sid), status=201)

    async def read(self, request: web.Request) -> web.Response | None:
        """Record a GET; Twilio's refusal (401, injected failures) or None to go on."""
        self.requests.append(("GET", request.path, {}))
        return await self._refuse(request)

    async def _fetch_message(self, request: web.Request) -> web.Response:
        refused = await self.read(request)
        if refused is not None:
            return refused
        message = self.messages.get(request.match_info["sid"])
        if message is None:
            return web.json_response({"code": 20404, "status": 404}, status=404)
        return web.json_response(message.as_twilio(self.account_sid))

    async def _report(self, message: SimMessage) -> None:
        for status in self.deliver:
            await asyncio.sleep(0)
            message.status = status
            params = {
                "MessageSid": message.sid,
                "SmsSid": message.sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "AccountSid": self.account_sid,
                "From": message.from_,
                "To": message.to,
                "ApiVersion": "2010-04-01",
            }
            if status in ("failed", "undelivered"):
                params["ErrorCode"] = "30003"
            assert message.status_callback is not None
            await self.post_callback(message.status_callback, params)

    # -- playing the customer ----------------------------------------------------------------

    async def send_sms(
        self,
        *,
        sender: str,
        to: str,
        body: str,
        media: Iterable[tuple[str, str]] = (),
        sid: str | None = None,
        path: str | None = None,
    ) -> tuple[int, str]:
        """Text the hub as a customer would; returns the hub's status and body.

        Sent where the number's SMS URL says (with its connection overrides, then its fallback
        URL), or to the hub's ``path`` when one is given.
        """
        params = {
            "MessageSid": sid or "SM" + secrets.token_hex(16),
            "AccountSid": self.account_sid,
            "From": sender,
            "To": to,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        for n, (url, content_type) in enumerate(media):
            params[f"MediaUrl{n}"] = url
            params[f"MediaContentType{n}"] = content_type
            params["NumMedia"] = str(n + 1)
        word = body.strip().upper()
        if word in TWILIO_STOP_WORDS:  # Twilio's own opt-out handling sees it first
            self.unsubscribed.add(sender)
        elif word in TWILIO_START_WORDS:
            self.unsubscribed.discard(sender)
        if path is not None:
            return await self.post_to_hub(path, params)
        number = self.account.number(to)
        if number.sms_url is None:
            return 0, ""  # Twilio drops a text to a number with no SMS URL
        delivered = await self.account.deliver(
            number.sms_url, params, fallback=number.sms_fallback_url
        )
        return delivered.status, delivered.body

    def signature(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature for a POST of params to url (Twilio's algorithm, via its library)."""
        return str(self._validator.compute_signature(url, params))

    async def post_to_hub(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        """POST a webhook to the hub as Twilio would: signed over its public URL + path."""
        headers = {"X-Twilio-Signature": self.signature(self.public_url + path, params)}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
            session.post(self.hub_url + path, data=params, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def post_callback_for_answer(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        """POST to a URL the hub gave (under its public URL); the hub's status and answer."""
        if not url.startswith(self.public_url):
            return 0, ""  # not the hub's: nothing to deliver to on loopback
        delivered = await self.account.deliver(url, params)  # as its fragment says
        return delivered.status, delivered.body

    async def fetch(self, url: str, method: str, params: dict[str, str]) -> tuple[int, str]:
        """Fetch a URL the hub named (a waitUrl, a holdUrl) with its method, as Twilio does.

        The hub's own URLs are its webhooks (POST only, signed). Any other URL stands for a
        static audio host, on loopback never reached: GET gives the audio, and POST is
        refused with 405, as static hosts refuse it (Twilio's default method is POST).
        """
        if url.startswith(self.public_url):
            if method.upper() != "POST":
                return 405, ""
            return await self.post_callback_for_answer(url, params)
        if method.upper() == "GET":
            return 200, f"<Response><Play>{url}</Play></Response>"
        return 405, ""

    async def post_callback(self, url: str, params: dict[str, str]) -> int:
        """POST a callback to a URL the hub gave; the hub's status (kept in ``callbacks``)."""
        status, _ = await self.post_callback_for_answer(url, params)
        self.callbacks.append((url, params, status))
        return status

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work after answering, as Twilio sends its callbacks after its response."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait until every callback in flight has been delivered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
