"""`hub twilio configure`, and webhooks delivered (and retried) as the number's URLs say."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from hub.bench.figures import serve_app
from hub.bootstrap import Hub
from hub.channels.twilio.setup import CONNECTION_OVERRIDES, configure_twilio
from hub.crm_store.tables import TimelineEventRow
from hub.dev.twilio_numbers import ConnectionOverrides
from hub.dev.twilio_sim import TwilioSimulator
from hub.errors import ChannelConfigError
from tests.channels.sms.conftest import ACCOUNT, OUR_NUMBER, PUBLIC, TOKEN
from tests.channels.sms.test_inbound import count
from tests.channels.voice.helpers import CALLER, Client

HUB = PUBLIC + "/webhooks/twilio"


def test_connection_overrides_read_as_twilio_documents_them() -> None:
    assert ConnectionOverrides.of("https://x/y") == ("https://x/y", ConnectionOverrides())
    base, hub = ConnectionOverrides.of("https://x/y?a=1#" + CONNECTION_OVERRIDES)
    assert base == "https://x/y?a=1"
    assert (hub.connect_ms, hub.read_ms, hub.total_ms, hub.retries) == (2000, 5000, 15000, 5)
    assert [hub.retries_on(f) for f in ("ct", "rt", "5xx", "4xx")] == [True, True, True, False]
    clamped = ConnectionOverrides.of("u#rc=9&ct=1&rp=bogus")[1]
    assert (clamped.retries, clamped.connect_ms, clamped.policy) == (5, 100, frozenset({"ct"}))


async def test_configure_points_the_numbers_and_the_app_at_the_hub(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    app = twilio.account.application()
    sms_hub.settings.twilio.twiml_app_sid = app.sid
    sms_hub.settings.twilio.fallback_url = "https://backup.example.com/twiml"
    number = twilio.account.numbers[OUR_NUMBER]
    assert number.status_callback is None  # as bought: call progress goes nowhere
    checked = await configure_twilio(sms_hub.settings, apply=False)
    assert {s.resource for s in checked} == {OUR_NUMBER, f"TwiML app {app.sid}"}
    assert all(s.changed for s in checked if s.name.endswith("url") or s.name == "status_callback")
    assert number.status_callback is None  # a check changes nothing
    await configure_twilio(sms_hub.settings, apply=True)
    fragment = "#" + CONNECTION_OVERRIDES
    assert (number.voice_url, number.status_callback, number.sms_url) == (
        HUB + "/voice" + fragment,
        HUB + "/voice/status" + fragment,
        HUB + "/sms" + fragment,
    )
    assert (
        number.voice_fallback_url == number.sms_fallback_url == "https://backup.example.com/twiml"
    )
    assert (app.voice_url, app.status_callback) == (
        HUB + "/voice/agent" + fragment,
        HUB + "/voice/status" + fragment,
    )
    assert not any(s.changed for s in await configure_twilio(sms_hub.settings, apply=False))


async def test_configure_refuses_a_number_the_account_does_not_have(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    sms_hub.settings.twilio.numbers = {"+14155550199": "support"}
    with pytest.raises(ChannelConfigError, match=r"\+14155550199 .* not a number of the account"):
        await configure_twilio(sms_hub.settings, apply=True)


async def test_the_command_checks_then_configures(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, tmp_path: Path
) -> None:
    env = os.environ | {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "HUB_PUBLIC_URL": PUBLIC,
        "HUB_TWILIO__ACCOUNT_SID": ACCOUNT,
        "HUB_TWILIO__AUTH_TOKEN": TOKEN,
        "HUB_TWILIO__API_BASE_URL": twilio.url,
        "HUB_TWILIO__NUMBERS": '{"' + OUR_NUMBER + '": "support"}',
        "HUB_LOG_LEVEL": "WARNING",
    }

    async def hub(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            Path(sys.executable).parent / "hub", "twilio", "configure", *args,
            env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        assert process.returncode is not None
        return process.returncode, output.decode()

    code, output = await hub("--check")
    assert code == 1, output
    assert f"{OUR_NUMBER} status_callback differs: (unset)" in output
    code, output = await hub()
    assert code == 0, output
    assert "3 of 6 settings changed" in output  # the URLs; the methods were POST
    assert await hub("--check") == (0, "all 6 settings as the hub needs them\n")


@pytest.fixture
async def flaky(twilio: TwilioSimulator) -> AsyncIterator[list[int]]:
    """A proxy before the hub, as a load balancer whose backend died after committing: the
    first request reaches the hub, and its answer is lost (502). Later ones pass."""
    answered: list[int] = []
    hub_url = twilio.hub_url

    async def forward(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(hub_url + request.path_qs, data=body, headers=headers) as response,
        ):
            text = await response.text()
            answered.append(response.status)
        if len(answered) == 1:
            return web.Response(status=502, text="backend went away")
        return web.Response(status=response.status, text=text, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/{tail:.*}", forward)
    runner, twilio.hub_url = await serve_app(app)
    yield answered
    twilio.hub_url = hub_url
    await runner.cleanup()


async def test_without_overrides_a_lost_answer_is_not_retried(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, flaky: list[int]
) -> None:
    """Twilio's default: a 5xx is not retried; the caller hears an application error."""
    status, _ = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA70")
    assert (status, flaky) == (502, [200])
    assert twilio.voice.calls["CA70"].heard == ["An application error has occurred."]


async def test_with_the_hubs_overrides_a_lost_answer_is_retried_and_stored_once(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, flaky: list[int]
) -> None:
    await configure_twilio(sms_hub.settings, apply=True)
    status, _ = await twilio.send_sms(sender=CALLER, to=OUR_NUMBER, body="hello", sid="SM1")
    assert (status, flaky) == (200, [200, 200])  # committed, answer lost, asked again
    assert await count(sms_hub, TimelineEventRow) == 2  # the text and its queueing, once
    status, twiml = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA71")
    assert (status, "<Conference" in twiml) == (200, True)
    assert "An application error has occurred." not in twilio.voice.calls["CA71"].heard


async def test_when_every_try_fails_the_fallback_url_answers(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator
) -> None:
    asked: list[str] = []

    async def fallback(request: web.Request) -> web.Response:
        asked.append((await request.post()).get("CallSid", ""))  # type: ignore[arg-type]
        return web.Response(
            text="<Response><Say>Please call again shortly.</Say><Hangup/></Response>",
            content_type="text/xml",
        )

    app = web.Application()
    app.router.add_post("/fallback", fallback)
    runner, base = await serve_app(app)
    try:
        sms_hub.settings.twilio.fallback_url = base + "/fallback"
        await configure_twilio(sms_hub.settings, apply=True)
        twilio.hub_url = "http://127.0.0.1:9"  # the hub is down: nothing listens
        status, _ = await twilio.voice.start_call(caller=CALLER, to=OUR_NUMBER, sid="CA72")
        assert (status, asked) == (200, ["CA72"])
        assert twilio.voice.calls["CA72"].heard == ["Please call again shortly."]
    finally:
        await runner.cleanup()
