"""`hub serve`, `hub migrate`, `hub demo`: run the hub and get its store ready."""

from __future__ import annotations

import click
from aiohttp import web

from hub.bootstrap import build_hub, settle_heap, utc_now
from hub.cli.root import main, run, with_hub, with_settings
from hub.config import Settings
from hub.crm_store.database import create_engine, migrate
from hub.errors import HubError

# On SIGTERM new work stops at once; requests in flight get this long, then the hub stops
# (channels and routing wait at most 4 s more): it exits within 10 s.
SHUTDOWN_SECONDS = 3.0


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

        async def settled(_: web.Application) -> None:
            settle_heap()  # after the hub's own start-up (registered before this)

        app.on_startup.append(settled)
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

    organisation = run(with_hub(settings, lambda hub: seed_demo(hub.store, now=utc_now())))
    _print_demo(
        settings.local_url, organisation.usernames, organisation.password, organisation.created
    )
