"""`hub twilio` (the account the hub uses) and `hub dev` (simulated providers to try it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from hub.cli.root import main, run, with_settings
from hub.config import Settings
from hub.domain.identity import normalize_phone

HUB_URL_HELP = (
    "Where the hub listens (default: from its settings, HUB_HOST and HUB_PORT or config/hub.toml)."
)


@main.group()
def twilio() -> None:
    """The Twilio account the hub uses."""


@twilio.command(name="configure")
@click.option("--check", is_flag=True, help="Only compare; exit 1 if anything differs.")
@with_settings
def twilio_configure(settings: Settings, check: bool) -> None:
    """Point our numbers and the TwiML app at the hub: webhooks with retries, status
    callbacks, the fallback URL (see docs/channels.md)."""
    from hub.channels.twilio.setup import configure_twilio

    found = run(configure_twilio(settings, apply=not check))
    for setting in found:
        if setting.changed:
            verb = "differs" if check else "set"
            click.echo(f"{setting.resource} {setting.name} {verb}: {setting.current or '(unset)'}")
            click.echo(f"    -> {setting.wanted}")
    differing = sum(s.changed for s in found)
    if not differing:
        click.echo(f"all {len(found)} settings as the hub needs them")
    elif check:
        raise SystemExit(1)
    else:
        click.echo(f"{differing} of {len(found)} settings changed")


@main.group()
def dev() -> None:
    """Try the hub without real providers."""


async def _until_interrupted(stop: Callable[[], Awaitable[None]]) -> None:
    """Serve until Ctrl-C, then stop."""
    try:
        await asyncio.Event().wait()
    finally:
        await stop()


def _twilio_credentials(settings: Settings) -> tuple[str, str]:
    sid, token = settings.twilio.account_sid, settings.twilio.auth_token
    if not sid or token is None:
        raise click.ClickException(
            "set HUB_TWILIO__ACCOUNT_SID and HUB_TWILIO__AUTH_TOKEN (any values; the hub's own)"
        )
    return sid, token.get_secret_value()


@dev.command(name="twilio-sim")
@click.option("--port", default=8089, show_default=True, help="Where the simulator listens.")
@click.option("--hub-url", help=HUB_URL_HELP)
@with_settings
def twilio_sim(settings: Settings, port: int, hub_url: str | None) -> None:
    """Run a local Twilio (REST API + signed callbacks); start the hub with
    HUB_TWILIO__API_BASE_URL=http://127.0.0.1:PORT to send through it."""
    from hub.dev.twilio_sim import SimMessage, TwilioSimulator

    sid, token = _twilio_credentials(settings)

    def show(message: SimMessage) -> None:
        click.echo(f"SMS to {message.to} from {message.from_}: {message.body}")

    async def go() -> None:
        simulator = TwilioSimulator(
            account_sid=sid,
            auth_token=token,
            hub_url=hub_url or settings.local_url,
            public_url=settings.public_url,
            on_message=show,
            numbers=[normalize_phone(n, settings.default_region) for n in settings.twilio.numbers],
        )
        url = await simulator.start(port=port)
        click.echo(f"Twilio simulator on {url}; replies from the hub show here (Ctrl-C stops)")
        await _until_interrupted(simulator.stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())


@dev.command(name="sms")
@click.option("--from", "sender", required=True, help="The customer's number.")
@click.option("--to", required=True, help="Your Twilio number (see twilio.numbers).")
@click.option("--hub-url", help=HUB_URL_HELP)
@click.argument("body")
@with_settings
def dev_sms(settings: Settings, sender: str, to: str, hub_url: str | None, body: str) -> None:
    """Text the hub as a customer, with a webhook signed as Twilio signs it."""
    from hub.dev.twilio_sim import TwilioSimulator

    sid, token = _twilio_credentials(settings)
    simulator = TwilioSimulator(
        account_sid=sid,
        auth_token=token,
        hub_url=hub_url or settings.local_url,
        public_url=settings.public_url,
    )
    status, answer = asyncio.run(simulator.send_sms(sender=sender, to=to, body=body))
    click.echo(f"hub answered {status}: {answer.strip()}")
    if status != 200:
        raise click.exceptions.Exit(1)


@dev.command(name="telnyx-sim")
@click.option("--port", default=8090, show_default=True, help="Where the simulator listens.")
@click.option("--hub-url", help=HUB_URL_HELP)
@with_settings
def telnyx_sim(settings: Settings, port: int, hub_url: str | None) -> None:
    """Run a local Telnyx fax API (REST, expiring media links, Ed25519-signed webhooks)."""
    from hub.dev.telnyx_sim import SentFax, TelnyxSimulator
    from hub.keys import key_file

    key = key_file(Path(settings.data_dir) / "telnyx-sim.key")  # the same key every run
    outbox = Path(settings.data_dir) / "telnyx-sim-sent"

    def show(fax: SentFax) -> None:
        outbox.mkdir(parents=True, exist_ok=True)
        if fax.document is not None:
            (outbox / f"{fax.fax_id}.pdf").write_bytes(fax.document)
        click.echo(f"fax to {fax.to} from {fax.sender}: {fax.events[-1]}, kept in {outbox}")

    async def go() -> None:
        api_key = settings.fax.api_key.get_secret_value() if settings.fax.api_key else "dev"
        simulator = TelnyxSimulator(
            api_key=api_key, hub_url=hub_url or settings.local_url, private_key=key, on_fax=show
        )
        url = await simulator.start(port=port)
        click.echo(f"Telnyx simulator on {url}; start the hub with")
        click.echo(
            f"  HUB_FAX__PROVIDER=telnyx HUB_FAX__API_KEY={api_key} "
            f"HUB_FAX__API_BASE_URL={url} HUB_FAX__CONNECTION_ID=dev "
            f"HUB_FAX__PUBLIC_KEY={simulator.public_key}"
        )
        await _until_interrupted(simulator.stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())


@dev.command(name="fax")
@click.option("--from", "sender", required=True, help="The customer's fax number.")
@click.option("--to", required=True, help="Your fax number (see fax.numbers).")
@click.option("--sim-url", default="http://127.0.0.1:8090", show_default=True)
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def dev_fax(sender: str, to: str, sim_url: str, document: Path) -> None:
    """Fax the hub a PDF or TIFF as a customer, through `hub dev telnyx-sim`."""
    import base64

    import aiohttp

    encoded = base64.b64encode(document.read_bytes()).decode()

    async def go() -> dict[str, Any]:
        body = {"from": sender, "to": to, "document": encoded}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{sim_url}/dev/faxes", json=body) as r,
        ):
            answer: dict[str, Any] = await r.json()
            return answer

    answer = run(go())
    click.echo(f"hub answered {answer['hub_status']} for fax {answer['fax_id']}")
    if answer["hub_status"] != 200:
        raise click.exceptions.Exit(1)


@dev.command(name="call")
@click.option("--from", "caller", required=True, help="The caller's number.")
@click.option("--to", required=True, help="Your Twilio number (see twilio.numbers).")
@click.option("--sim-url", default="http://127.0.0.1:8089", show_default=True)
def dev_call(caller: str, to: str, sim_url: str) -> None:
    """Call the hub as a customer through a running `hub dev twilio-sim`, and play the caller."""
    import urllib.error
    import urllib.request

    def sim(path: str, body: dict[str, str] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310  (the developer's own simulator URL)
            sim_url.rstrip("/") + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
            method="POST" if body is not None else "GET",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer: dict[str, Any] = json.load(response)
                return answer
        except urllib.error.HTTPError as err:
            raise click.ClickException(json.load(err).get("error", str(err))) from err
        except OSError as err:
            raise click.ClickException(f"no simulator answers at {sim_url}: {err}") from err

    shown = sim("/sim/calls", {"from": caller, "to": to})
    said = 0
    help_line = "keys to press, 'say WORDS', 'w' to hear the wait message, Enter, or 'h' to hang up"
    while True:
        for line in shown["heard"][said:]:
            click.echo(f"  hub: {line}")
        said = len(shown["heard"])
        state = "at the menu" if shown["at_menu"] else shown["status"]
        if shown["status"] == "completed":
            click.echo("[hung up]")
            return
        if shown["on_hold"]:
            state = "on hold"
        elif shown["with"]:
            state = f"talking with {', '.join(shown['with'])}"
        elif shown["waiting"]:
            state = "waiting for an agent"
        click.echo(f"[{state}]")
        command = click.prompt(help_line, default="", show_default=False).strip()
        path = f"/sim/calls/{shown['sid']}"
        action = {"h": "/hangup", "w": "/wait"}.get(command, "/press" if command else "")
        body: dict[str, str] | None = None if not command else {}
        if action == "/press":
            body = {"speech": command[4:]} if command.startswith("say ") else {"digits": command}
        try:
            shown = sim(path + action, body)
        except click.ClickException as err:
            click.echo(f"  ({err.message})")
            shown = sim(path)
