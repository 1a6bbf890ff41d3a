"""Every route of a hub with every channel, fuzzed by hypothesis: no answer is a 500.

A hub with SMS, voice, fax and web chat runs on a loopback port in a thread of its own; the
test sends raw HTTP to it (http.client, so bodies and headers are exactly what hypothesis drew):
every route the app serves, with bodies of every shape (JSON deep and wide, forms, multipart,
bytes that are not UTF-8), declared as any content type, with and without valid credentials
and provider signatures (so handlers run on strange but signed input). Whatever arrives, the
hub answers with a 4xx and a reason, or 2xx; a provider that cannot be reached (502/503 with a
channel code) is the only 5xx allowed. Every URL the hub might fetch points at a closed
loopback port: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from hub.agent_console.app import build_app
from hub.bootstrap import build_hub
from hub.config import (
    ChatSiteSettings,
    FaxSettings,
    Settings,
    TwilioSettings,
    WebchatSettings,
)
from tests.conftest import BACKENDS, empty_tables, make_team

PUBLIC = "https://hub.example.com"
TWILIO_TOKEN = "12345678901234567890123456789012"
CLOSED = "http://127.0.0.1:9"  # the discard port: refused at once, nothing leaves loopback
PROVIDER_DOWN = {"channel_not_ready", "channel_error", "channel_auth_failed"}


@dataclass
class LiveHub:
    """A hub serving on a loopback port from its own thread and event loop."""

    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    routes: list[tuple[str, str]] = field(default_factory=list)  # (method, path template)
    fax_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    errors: list[str] = field(default_factory=list)

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def _settings(database_url: str, data_dir: Path, fax_key: Ed25519PrivateKey) -> Settings:
    public_key = fax_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return Settings(
        database_url=database_url,
        data_dir=str(data_dir),
        public_url=PUBLIC,
        log_level="ERROR",
        twilio=TwilioSettings(
            account_sid="AC00000000000000000000000000000000",
            auth_token=TWILIO_TOKEN,  # type: ignore[arg-type]
            api_base_url=CLOSED,
            numbers={"+14155550000": "support"},
        ),
        fax=FaxSettings(
            provider="telnyx",
            api_key="KEY0123",  # type: ignore[arg-type]
            public_key=base64.b64encode(public_key).decode(),
            api_base_url=CLOSED,
            connection_id="fuzz",
            numbers={"+14155550999": "support"},
        ),
        webchat=WebchatSettings(sites=[ChatSiteSettings(id="demo", origins=["http://shop.test"])]),
    )


@pytest.fixture(params=BACKENDS, scope="module")
def live_hub(
    request: pytest.FixtureRequest,
    migrated_databases: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveHub]:
    url = migrated_databases[request.param]
    asyncio.run(empty_tables(url))
    live = LiveHub()
    ready, stop = threading.Event(), threading.Event()
    data_dir = tmp_path_factory.mktemp("fuzz-data")

    async def serve() -> None:
        hub = await build_hub(_settings(url, data_dir, live.fax_key), run_migrations=False)
        for channel in hub.channels:
            if hasattr(channel, "backoff_seconds"):
                channel.backoff_seconds = 0.001  # a provider that is down fails fast here
        if hub.calls is not None:
            hub.calls.backoff_seconds = 0.001
        app = build_app(hub)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        team = await make_team(hub, "support")
        live.tokens = team.tokens
        live.port = runner.addresses[0][1]
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            template = info.get("formatter") or info.get("path")
            if template:
                live.routes.append((route.method, str(template)))
        ready.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as err:  # reported to the test, which fails on it
            live.errors.append(repr(err))
            ready.set()

    thread = threading.Thread(target=run, name="fuzzed hub", daemon=True)
    thread.start()
    assert ready.wait(60), "the hub did not start"
    assert not live.errors, live.errors
    yield live
    stop.set()
    thread.join(60)
    assert not live.errors, live.errors


# -- what is sent ---------------------------------------------------------------------------

PHONES = ["+14155550100", "+14155550000", "+14155550999", "anonymous", "Restricted",
          "+266696687", "client:agent-1", "", "415 555 0101", "+1"]  # fmt: skip
WORDS = ["completed", "ringing", "in-progress", "no-answer", "busy", "failed", "canceled",
         "participant-leave", "participant-join", "conference-end", "conference-start",
         "delivered", "undelivered", "sent", "1", "2", "#", "*", "0", "-1", "STOP", "START",
         "99999999999999999999", "SM1", "CA1", "CF1", "RE1", "interaction-1", "true", "null",
         CLOSED + "/media/x", CLOSED + "/recording.wav", "\u0000", "\ud7ff", "你好"]  # fmt: skip
TWILIO_FIELDS = ["From", "To", "Caller", "Called", "Body", "MessageSid", "SmsMessageSid",
                 "AccountSid", "NumMedia", "MediaUrl0", "MediaContentType0", "MediaUrl1",
                 "CallSid", "ParentCallSid", "CallStatus", "CallDuration", "Direction",
                 "Digits", "SpeechResult", "StatusCallbackEvent", "ConferenceSid",
                 "FriendlyName", "RecordingUrl", "RecordingSid", "RecordingStatus",
                 "RecordingDuration", "MessageStatus", "ErrorCode", "Muted", "Hold",
                 "DialCallStatus", "SequenceNumber", "Timestamp"]  # fmt: skip
FAX_FIELDS = ["fax_id", "from", "to", "direction", "media_url", "page_count", "failure_reason",
              "status"]  # fmt: skip
FAX_EVENTS = ["fax.received", "fax.failed", "fax.delivered", "fax.queued", "fax.sending.started",
              "fax.media.processed", "call.initiated"]  # fmt: skip
JSON_KEYS = ["body", "state", "reason", "queue", "agent_id", "disposition", "interaction_id",
             "merge_from", "display_name", "name", "tags", "custom_fields", "username",
             "password", "role", "team", "teams", "team_ids", "active", "skills", "languages",
             "capacity", "to", "mode", "base_version", "attachments", "from", "provider_ref",
             "subject", "html", "kind", "value", "verified", "owner_id", "team_id", "event_id",
             "document", "queues", "twilio", "email", "webchat", "numbers", "hold", "muted",
             "content_base64", "filename", "content_type", "channel", "phone", "email_address",
             "priority", "calendar", "week", "steps", "target", "timezone"]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS + PHONES),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(JSON_KEYS), inner, max_size=5)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.sampled_from(JSON_KEYS), json_values, max_size=8)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.just(b"[" * 50_000),
    st.just(b'{"a":' * 20_000),
    st.just(b"\xff\xfe\x00garbage"),
    st.just(b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc'),
    st.just(b'"just a string"'),
    st.just(b"null"),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "application/octet-stream",
        "",
    ]
)
ids = st.one_of(
    st.sampled_from(["1", "2", "0", "99999999999999999999", "9223372036854775808"]),
    st.integers(min_value=0, max_value=2**64).map(str),
)
names = st.one_of(
    st.sampled_from(["support", "demo", "general", "agent", "admin", "x" * 300, "你好", "%00"]),
    st.text(min_size=1, max_size=20),
)


def _fill(template: str, draw: Any) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        numeric = name.endswith(("_id", "index", "version", "n"))
        value = draw(ids) if numeric else draw(names)
        return quote(value, safe="")

    return re.sub(r"\{(\w+)[^}]*\}", one, template)


def _twilio_form(draw: Any, path: str) -> tuple[dict[str, str], bytes]:
    params = draw(
        st.dictionaries(
            st.sampled_from(TWILIO_FIELDS),
            st.one_of(st.sampled_from(WORDS + PHONES), st.text(max_size=30)),
            max_size=12,
        )
    )
    body = urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if draw(st.booleans()) or draw(st.booleans()):  # three in four are signed right
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC + path, params)
        headers["X-Twilio-Signature"] = signature
    else:
        headers["X-Twilio-Signature"] = draw(st.sampled_from(["", "forged", "c2ln"]))
    return headers, body


def _telnyx_event(draw: Any, live: LiveHub) -> tuple[dict[str, str], bytes]:
    payload = draw(
        st.dictionaries(
            st.sampled_from(FAX_FIELDS),
            st.one_of(
                st.sampled_from(["inbound", "outbound", CLOSED + "/fax.pdf", "user_busy", "3"]),
                st.sampled_from(PHONES),
                json_values,
            ),
            max_size=8,
        )
    )
    event_type = draw(st.one_of(st.sampled_from(FAX_EVENTS), st.text(max_size=20)))
    document: Any = {"data": {"event_type": event_type, "id": draw(st.text()), "payload": payload}}
    if draw(st.integers(0, 9)) == 0:
        document = draw(json_values)  # not even the envelope
    body = json.dumps(document).encode()
    stamp = str(int(time.time()))
    signature = live.fax_key.sign(stamp.encode() + b"|" + body)
    return {
        "Content-Type": "application/json",
        "telnyx-timestamp": stamp,
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
    }, body


@st.composite
def requests(draw: Any, live: LiveHub) -> tuple[str, str, dict[str, str], bytes | None]:
    method, template = draw(st.sampled_from(live.routes))
    path = _fill(template, draw)
    if draw(st.integers(0, 4)) == 0:
        path += "?" + urlencode(
            draw(st.dictionaries(st.sampled_from(["limit", "before", "q", "interval", "format",
                                                  "windows", "after"]), ids, max_size=3))
        )  # fmt: skip
    headers: dict[str, str] = {}
    token = draw(st.sampled_from([*live.tokens.values(), None, "hub_not-a-token", "x"]))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body: bytes | None = None
    if path.startswith("/webhooks/twilio/"):
        extra, body = _twilio_form(draw, path.split("?", 1)[0])
        headers |= extra
    elif path.startswith("/webhooks/fax/telnyx"):
        extra, body = _telnyx_event(draw, live)
        headers |= extra
    elif method in ("POST", "PUT", "PATCH", "DELETE"):
        shape = draw(st.integers(0, 9))
        body = json.dumps(draw(json_objects)).encode() if shape < 6 else draw(raw_bodies)
        content_type = "application/json" if shape < 5 else draw(content_types)
        if content_type:
            headers["Content-Type"] = content_type
    if draw(st.integers(0, 9)) == 0:
        headers["Content-Type"] = draw(content_types) or "application/json"  # a lie
    return method, path, headers, body


@hypothesis_settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_route_answers_a_500_whatever_it_is_sent(live_hub: LiveHub, data: Any) -> None:
    method, path, headers, body = data.draw(requests(live_hub))
    status, answer = live_hub.request(method, path, headers, body)
    if status >= 500 and method == "HEAD":  # no body to say why: ask again with GET
        status, answer = live_hub.request("GET", path, headers, body)
    if status >= 500:
        code = None
        with contextlib.suppress(ValueError, KeyError, TypeError):
            code = json.loads(answer)["error"]["code"]
        assert status in (502, 503), (method, path, status, answer[:300])
        assert code in PROVIDER_DOWN, (method, path, status, answer[:300])
    assert b"Traceback" not in answer
