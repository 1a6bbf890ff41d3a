"""`hub users` and `hub tokens`: people and their API tokens."""

from __future__ import annotations

import getpass
import sys
from datetime import timedelta

import click

from hub.bootstrap import Hub, utc_now
from hub.cli.root import main, run, with_hub, with_settings
from hub.config import Settings
from hub.crm_store.accounts import User
from hub.domain.users import Role


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

    user = run(with_hub(settings, go))
    click.echo(f"created {user.role} {user.username} (id {user.id})")


@users.command(name="list")
@with_settings
def users_list(settings: Settings) -> None:
    """List users."""

    async def go(hub: Hub) -> list[User]:
        async with hub.store.unit_of_work() as uow:
            return await uow.accounts.users()

    for user in run(with_hub(settings, go)):
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

    run(with_hub(settings, go))
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
        with_hub(
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

    run(with_hub(settings, go))


@tokens.command(name="revoke")
@click.argument("token_id", type=int)
@with_settings
def tokens_revoke(settings: Settings, token_id: int) -> None:
    """Revoke a token by its id (from `hub tokens list`)."""
    from hub.services.accounts import revoke_token

    async def go(hub: Hub) -> None:
        await revoke_token(hub.store, token_id=token_id, actor_id=None, now=utc_now())

    run(with_hub(settings, go))
    click.echo(f"token {token_id} revoked")
