"""The root of the ``hub`` command and what its commands share (settings, running a hub)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from typing import Any, TypeVar

import click

from hub.bootstrap import Hub, build_hub
from hub.config import Settings, load_settings
from hub.crm_store.database import create_engine
from hub.errors import HubError
from hub.observability import configure_logging

T = TypeVar("T")


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


async def with_hub(settings: Settings, work: Callable[[Hub], Awaitable[T]]) -> T:
    """Build the hub, do work with it, stop it."""
    hub = await build_hub(settings)
    try:
        return await work(hub)
    finally:
        await hub.stop()


async def with_engine(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store's engine, do work with it, close it."""
    engine = create_engine(settings.database_url)
    try:
        return await work(engine)
    finally:
        await engine.dispose()
