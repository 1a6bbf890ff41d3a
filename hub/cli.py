"""The ``hub`` command: serve, migrate, users, tokens, demo, backup, restore, bench."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import math
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from aiohttp import web

from hub.bootstrap import Hub, build_hub, utc_now
from hub.config import Settings, load_settings
from hub.crm_store import backup as backups
from hub.crm_store.accounts import User
from hub.crm_store.database import create_engine, migrate
from hub.domain.identity import normalize_phone
from hub.domain.users import Role
from hub.errors import HubError
from hub.observability import configure_logging

T = TypeVar("T")
# On SIGTERM new work stops at once; requests in flight get this long, then the hub stops
# (channels and routing wait at most 4 s more): it exits within 10 s.
SHUTDOWN_SECONDS = 3.0


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, turning HubErrors into a clear message and exit code."""
    try:
        return asyncio.run(coroutine)
    except HubError as err:
        raise click.ClickException(err.message) from err


def settings_from(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def with_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Pass the loaded settings as the first argument."""

    @click.pass_context
    @wraps(func)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return func(settings_from(ctx), *args, **kwargs)

    return wrapper


@click.group()
@click.option("--database-url", help="Override HUB_DATABASE_URL for this command.")
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """The hub: a self-hosted contact centre."""
    overrides = {"database_url": database_url} if database_url else {}
    try:
        settings = load_settings(**overrides)
    except HubError as err:
        raise click.ClickException(err.message) from err
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


@main.command()
@click.option("--host", help="Address to listen on (default: setting host).")
@click.option("--port", type=int, help="Port to listen on (default: setting port).")
@click.option("--demo", is_flag=True, help="Seed a demo organisation first (if not there yet).")
@with_settings
def serve(settings: Settings, host: str | None, port: int | None, demo: bool) -> None:
    """Run the hub (migrates the store first)."""
    from hub.agent_console.app import build_app
    from hub.demo import DEMO_CHAT_SITE, demo_twilio, seed_demo

    if demo and not settings.webchat.sites:
        # A chat site for trying the widget on the hub's own page (/webchat/sites/demo/demo).
        settings.webchat.sites = [DEMO_CHAT_SITE]

    async def make_app() -> web.Application:
        simulator = None
        if demo and settings.twilio.auth_token is None:
            simulator = await demo_twilio(
                settings, lambda m: click.echo(f"[twilio] SMS to {m.to}: {m.body}")
            )
            click.echo(
                f"no Twilio account set: SMS and calls go to the bundled simulator on "
                f"{settings.twilio.api_base_url}; text the hub with\n  "
                f"HUB_TWILIO__ACCOUNT_SID={settings.twilio.account_sid} "
                "HUB_TWILIO__AUTH_TOKEN=demo-token "
                f"HUB_PORT={settings.port} .venv/bin/hub dev sms --from +14155550177 "
                f"--to {next(iter(settings.twilio.numbers))} 'Hello'"
            )
        try:
            hub = await build_hub(settings)
            if demo:
                organisation = await seed_demo(hub.store, now=hub.clock())
                _print_demo(
                    settings.local_url,
                    organisation.usernames,
                    organisation.password,
                    organisation.created,
                )
        except HubError as err:
            raise click.ClickException(err.message) from err
        app = build_app(hub)
        if simulator is not None:

            async def stop_simulator(_: web.Application) -> None:
                await simulator.stop()

            app.on_cleanup.append(stop_simulator)
        return app

    settings.serve_on(host, port)
    click.echo(f"hub listening on http://{settings.host}:{settings.port}")
    click.echo(f"console: {settings.local_url}/console/")
    click.echo(f"public URL (what providers call): {settings.public_url}")
    web.run_app(
        make_app(),
        host=settings.host,
        port=settings.port,
        print=None,
        shutdown_timeout=SHUTDOWN_SECONDS,
    )


def _print_demo(url: str, usernames: tuple[str, ...], password: str, created: bool) -> None:
    state = "created" if created else "already present"
    click.echo(f"demo organisation {state}; users {', '.join(usernames)}; password {password!r}")
    click.echo(f"  chat as a visitor: {url}/webchat/sites/demo/demo")
    click.echo(
        f"  try: curl -s -XPOST {url}/api/v1/auth/login -H 'Content-Type: application/json' "
        f'-d \'{{"username": "agent", "password": "{password}"}}\''
    )


@main.command(name="migrate")
@with_settings
def migrate_command(settings: Settings) -> None:
    """Bring the database schema up to date."""

    async def go() -> None:
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    run(go())
    click.echo("database is up to date")


@main.command()
@with_settings
def demo(settings: Settings) -> None:
    """Seed the demo organisation (users, teams, queues, a customer with history)."""
    from hub.demo import seed_demo

    organisation = run(_with_hub(settings, lambda hub: seed_demo(hub.store, now=utc_now())))
    _print_demo(
        settings.local_url, organisation.usernames, organisation.password, organisation.created
    )


@main.group()
def users() -> None:
    """Manage users."""


def _read_password(prompt_for_it: bool) -> str:
    if prompt_for_it and sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise click.ClickException("the passwords differ")
        return first
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.ClickException("give the password on standard input")
    return line


@users.command(name="create")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--team", "teams", multiple=True, help="Team to join (repeatable; created if new).")
@click.option("--display-name", help="Name shown to others (default: the username).")
@with_settings
def users_create(
    settings: Settings, username: str, role: str, teams: tuple[str, ...], display_name: str | None
) -> None:
    """Create a user; the password is read from standard input."""
    from hub.services.accounts import create_user

    password = _read_password(prompt_for_it=True)

    async def go(hub: Hub) -> User:
        return await create_user(
            hub.store,
            username=username,
            role=Role(role),
            password=password,
            teams=list(teams) or [settings.default_team],
            display_name=display_name,
            actor_id=None,
            now=utc_now(),
        )

    user = run(_with_hub(settings, go))
    click.echo(f"created {user.role} {user.username} (id {user.id})")


@users.command(name="list")
@with_settings
def users_list(settings: Settings) -> None:
    """List users."""

    async def go(hub: Hub) -> list[User]:
        async with hub.store.unit_of_work() as uow:
            return await uow.accounts.users()

    for user in run(_with_hub(settings, go)):
        state = "" if user.active else " (inactive)"
        click.echo(f"{user.id}\t{user.username}\t{user.role}{state}")


@users.command(name="deactivate")
@click.argument("username")
@with_settings
def users_deactivate(settings: Settings, username: str) -> None:
    """Stop a user: their logins and every token stop working at once."""
    _set_active(settings, username, active=False)


@users.command(name="activate")
@click.argument("username")
@with_settings
def users_activate(settings: Settings, username: str) -> None:
    """Let a deactivated user log in again."""
    _set_active(settings, username, active=True)


def _set_active(settings: Settings, username: str, *, active: bool) -> None:
    from hub.services.accounts import set_user_active

    async def go(hub: Hub) -> None:
        await set_user_active(
            hub.store, username=username, active=active, actor_id=None, now=utc_now()
        )

    run(_with_hub(settings, go))
    click.echo(f"{username} is now {'active' if active else 'deactivated'}")


@main.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command(name="create")
@click.argument("username")
@click.option("--name", "label", default="cli", show_default=True, help="What the token is for.")
@click.option("--expires-days", type=click.IntRange(1, 3650), help="Expire after N days.")
@with_settings
def tokens_create(settings: Settings, username: str, label: str, expires_days: int | None) -> None:
    """Print a new bearer token for USERNAME (shown once; only its hash is kept)."""
    from hub.services.accounts import issue_token

    now = utc_now()
    expires_at = now + timedelta(days=expires_days) if expires_days else None
    token = run(
        _with_hub(
            settings,
            lambda hub: issue_token(
                hub.store, username=username, name=label, now=now, expires_at=expires_at
            ),
        )
    )
    click.echo(token)


@tokens.command(name="list")
@click.argument("username")
@with_settings
def tokens_list(settings: Settings, username: str) -> None:
    """List USERNAME's tokens (id, kind, name, created, last used, state)."""
    from hub.services.accounts import list_tokens

    async def go(hub: Hub) -> None:
        for t in await list_tokens(hub.store, username=username):
            state = (
                "revoked"
                if t.revoked_at
                else (f"expires {t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "live")
            )
            used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
            click.echo(f"{t.id}\t{t.kind}\t{t.name}\t{t.created_at:%Y-%m-%d}\tused {used}\t{state}")

    run(_with_hub(settings, go))


@tokens.command(name="revoke")
@click.argument("token_id", type=int)
@with_settings
def tokens_revoke(settings: Settings, token_id: int) -> None:
    """Revoke a token by its id (from `hub tokens list`)."""
    from hub.services.accounts import revoke_token

    async def go(hub: Hub) -> None:
        await revoke_token(hub.store, token_id=token_id, actor_id=None, now=utc_now())

    run(_with_hub(settings, go))
    click.echo(f"token {token_id} revoked")


async def _with_hub(settings: Settings, work: Callable[[Hub], Awaitable[T]]) -> T:
    hub = await build_hub(settings)
    try:
        return await work(hub)
    finally:
        await hub.stop()


@main.command(name="backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_settings
def backup_command(settings: Settings, path: Path) -> None:
    """Write a consistent backup of the store to PATH (gzip'd JSON lines)."""
    counts = run(_with_engine(settings, lambda e: backups.backup(e, path, now=utc_now())))
    click.echo(f"backed up {sum(counts.values())} rows to {path}")


@main.command(name="restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_settings
def restore_command(settings: Settings, path: Path) -> None:
    """Load a backup into an empty database (it is migrated first)."""

    async def go(engine: Any) -> dict[str, int]:
        await migrate(engine)
        return await backups.restore(engine, path)

    counts = run(_with_engine(settings, go))
    click.echo(f"restored {sum(counts.values())} rows from {path}")


async def _with_engine(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    engine = create_engine(settings.database_url)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


@main.command()
@click.option("--arrivals-per-hour", type=click.FloatRange(min=0.001), required=True)
@click.option(
    "--aht", type=click.FloatRange(min=0.001), required=True, help="Mean handling time, s."
)
@click.option("--agents", type=click.IntRange(min=1), required=True)
@click.option("--patience", type=click.FloatRange(min=0.001), help="Mean patience, s (Erlang A).")
@click.option("--sl-seconds", type=click.FloatRange(min=0), default=20, show_default=True)
@click.option("--contacts", type=click.IntRange(min=10), default=100_000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the formula's figures).")
def simulate(
    arrivals_per_hour: float,
    aht: float,
    agents: int,
    patience: float | None,
    sl_seconds: float,
    contacts: int,
    seed: int,
    as_json: bool,
) -> None:
    """Simulate one queue with the real routing engine, beside Erlang C / Erlang A."""
    from hub.routing.erlang import queue_metrics
    from hub.routing.simulator import run_simulation

    result = run_simulation(
        arrivals_per_hour=arrivals_per_hour,
        aht_seconds=aht,
        agents=agents,
        contacts=contacts,
        sl_seconds=sl_seconds,
        patience_seconds=patience,
        seed=seed,
    ).as_dict()
    formula = queue_metrics(arrivals_per_hour, aht, agents, sl_seconds, patience)
    result["model"] = "erlang_c" if patience is None else "erlang_a"
    result["formula"] = {  # an unstable queue has no finite wait: null, not JSON-less Infinity
        k: None if math.isinf(getattr(formula, k)) else round(getattr(formula, k), 5)
        for k in ("p_wait", "service_level", "asa_seconds", "abandon_rate", "occupancy")
    }
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for key in ("p_wait", "service_level", "asa_seconds", "abandon_rate", "occupancy"):
        click.echo(
            f"{key:16} simulated {result[key]:<10} {result['model']} {result['formula'][key]}"
        )
    click.echo(f"{result['contacts']} contacts, {result['contacts_per_wall_second']} per second")


@main.command()
@click.option("--arrivals-per-hour", type=click.FloatRange(min=0.001), required=True)
@click.option(
    "--aht", type=click.FloatRange(min=0.001), required=True, help="Mean handling time, s."
)
@click.option("--target", type=click.FloatRange(0.01, 0.999), default=0.8, show_default=True)
@click.option("--sl-seconds", type=click.FloatRange(min=0), default=20, show_default=True)
@click.option("--patience", type=click.FloatRange(min=0.001), help="Mean patience, s (Erlang A).")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the curve as PNG."
)
@click.option("--json", "as_json", is_flag=True)
def staffing(
    arrivals_per_hour: float,
    aht: float,
    target: float,
    sl_seconds: float,
    patience: float | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """How many agents meet a service level (default 80% within 20 s) at this volume."""
    from hub.routing.erlang import agents_for_service_level
    from hub.routing.staffing import curve, curve_range, plot_service_level

    needed = agents_for_service_level(arrivals_per_hour, aht, target, sl_seconds, patience)
    points = curve(
        arrivals_per_hour,
        aht,
        sl_seconds,
        patience,
        curve_range(arrivals_per_hour, aht, needed.agents),
    )
    if plot is not None:
        plot_service_level(
            plot,
            points,
            target=target,
            sl_seconds=sl_seconds,
            arrivals_per_hour=arrivals_per_hour,
            aht_seconds=aht,
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "agents": needed.agents,
                    "service_level": round(needed.service_level, 4),
                    "asa_seconds": round(needed.asa_seconds, 2),
                    "abandon_rate": round(needed.abandon_rate, 4),
                    "occupancy": round(needed.occupancy, 4),
                    "curve": [
                        {"agents": p.agents, "service_level": round(p.service_level, 4)}
                        for p in points
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(
        f"{needed.agents} agents: {needed.service_level:.1%} answered within "
        f"{sl_seconds:g} s, ASA {needed.asa_seconds:.1f} s, occupancy {needed.occupancy:.1%}"
    )
    for p in points:
        click.echo(f"  {p.agents:4d} agents  SL {p.service_level:6.1%}  ASA {p.asa_seconds:8.1f} s")
    if plot is not None:
        click.echo(f"curve written to {plot}")


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


@main.group()
def bench() -> None:
    """Benchmarks that report numbers (never pass/fail)."""


@bench.command(name="routing")
@click.option("--agents", default=5_000, show_default=True)
@click.option("--queues", default=500, show_default=True)
@click.option("--decisions", default=5_000, show_default=True, help="New contacts to route.")
@click.option("--backlog", default=20_000, show_default=True, help="Waiting items for the tick.")
@click.option("--redis-url", help="Also bench the Redis state here (default: HUB_REDIS_URL).")
@click.option("--sim-contacts", default=100_000, show_default=True, help="Simulator contacts.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_routing(
    settings: Settings,
    agents: int,
    queues: int,
    decisions: int,
    backlog: int,
    redis_url: str | None,
    sim_contacts: int,
    as_json: bool,
) -> None:
    """Routing decisions per second and their latency, memory and Redis; simulator speed."""
    from hub.bench.routing import run_routing_bench

    result = run(
        run_routing_bench(
            agents=agents,
            queues=queues,
            decisions=decisions,
            backlog=backlog,
            redis_url=redis_url or settings.redis_url,
            progress=lambda line: click.echo(line, err=True),
            sim_contacts=sim_contacts,
        )
    )
    click.echo(json.dumps(result, indent=2) if as_json else _lines(result))


def _bench(
    start: Callable[..., Coroutine[Any, Any, dict[str, Any]]],
    settings: Settings,
    as_json: bool,
    **options: Any,
) -> None:
    """Run a benchmark (its progress on stderr) and print its figures.

    The hub under test logs warnings only: a line per request on a terminal would be timed
    along with the hub, and the baselines log nothing.
    """
    configure_logging("WARNING", settings.log_format)
    result: dict[str, Any] = run(
        start(settings, progress=lambda line: click.echo(line, err=True), **options)
    )
    click.echo(json.dumps(result, indent=2) if as_json else _lines(result))


def _lines(result: dict[str, Any], indent: str = "") -> str:
    out = []
    for key, value in result.items():
        if isinstance(value, dict):
            out.append(f"{indent}{key}:")
            out.append(_lines(value, indent + "  "))
        else:
            out.append(f"{indent}{key:32} {value}")
    return "\n".join(out)


@bench.command(name="sms")
@click.option("--requests", default=2_000, show_default=True, help="Webhooks to time.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight at once.")
@click.option("--customers", default=500, show_default=True, help="Distinct senders.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_sms(
    settings: Settings, requests: int, concurrency: int, customers: int, as_json: bool
) -> None:
    """Inbound SMS webhooks/s (signed, committed, routed) and p99, beside bare aiohttp."""
    from hub.bench.sms import run_sms_bench

    _bench(
        run_sms_bench,
        settings,
        as_json,
        requests=requests,
        concurrency=concurrency,
        customers=customers,
    )


@bench.command(name="email")
@click.option("--messages", default=5_000, show_default=True, help="The backlog in Dovecot.")
@click.option("--senders", default=500, show_default=True, help="Distinct customers.")
@click.option("--batch-size", default=100, show_default=True, help="Messages per UID FETCH.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_email(
    settings: Settings, messages: int, senders: int, batch_size: int, as_json: bool
) -> None:
    """Messages/s ingested from a backlog in a real Dovecot (parsed, threaded, committed)."""
    from hub.bench.email import run_email_bench

    _bench(
        run_email_bench,
        settings,
        as_json,
        messages=messages,
        senders=senders,
        batch_size=batch_size,
    )


@bench.command(name="console")
@click.option("--agents", default=500, show_default=True, help="Agent connections to hold.")
@click.option("--contacts", default=200, show_default=True, help="Contacts to time to the offer.")
@click.option(
    "--rate",
    default=0.0,
    show_default=True,
    help="Contacts a second, sent steadily (0: one at a time).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_console(
    settings: Settings, agents: int, contacts: int, rate: float, as_json: bool
) -> None:
    """Agent socket.io connections one hub holds, and webhook-to-offer latency in the client."""
    from hub.bench.console import run_console_bench

    _bench(run_console_bench, settings, as_json, agents=agents, contacts=contacts, rate=rate)


@bench.command(name="chat")
@click.option("--sessions", default=1000, show_default=True, help="Chat sessions to hold open.")
@click.option("--chats", default=30, show_default=True, help="Of them, chatting with agents.")
@click.option("--rounds", default=300, show_default=True, help="Round trips to time.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_chat(settings: Settings, sessions: int, chats: int, rounds: int, as_json: bool) -> None:
    """Chat sessions one hub holds, and visitor -> agent -> visitor round trips in the client."""
    from hub.bench.chat import run_chat_bench

    _bench(run_chat_bench, settings, as_json, sessions=sessions, chats=chats, rounds=rounds)


@bench.command(name="fax")
@click.option("--faxes", default=20, show_default=True, help="Faxes to receive.")
@click.option("--pages", default=3, show_default=True, help="Pages in each.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_fax(settings: Settings, faxes: int, pages: int, as_json: bool) -> None:
    """Fax webhooks answered while OCR runs behind them, and pages read per second."""
    from hub.bench.fax import run_fax_bench

    _bench(run_fax_bench, settings, as_json, faxes=faxes, pages=pages)


@bench.command(name="store")
@click.option("--customers", default=100_000, show_default=True, help="Customers in the store.")
@click.option("--events", default=10_000, show_default=True, help="Events on the read customer.")
@click.option("--requests", default=2_000, show_default=True, help="GETs of the record to time.")
@click.option("--concurrency", default=8, show_default=True, help="Requests in flight at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@with_settings
def bench_store(
    settings: Settings,
    customers: int,
    events: int,
    requests: int,
    concurrency: int,
    as_json: bool,
) -> None:
    """Unified-record reads per second and GET /api/v1/customers/{id} latency."""
    from hub.bench.store import run_store_bench

    result = run(
        run_store_bench(
            settings,
            customers=customers,
            events=events,
            requests=requests,
            concurrency=concurrency,
            progress=lambda line: click.echo(line, err=True),
        )
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            click.echo(f"{key:32} {value}")


if __name__ == "__main__":
    main()
