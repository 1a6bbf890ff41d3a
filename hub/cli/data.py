"""`hub backup` and `hub restore`: the store to and from a portable file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hub.bootstrap import utc_now
from hub.cli.root import main, run, with_engine, with_settings
from hub.config import Settings
from hub.crm_store import backup as backups
from hub.crm_store.database import migrate


@main.command(name="backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_settings
def backup_command(settings: Settings, path: Path) -> None:
    """Write a consistent backup of the store to PATH (gzip'd JSON lines)."""
    counts = run(with_engine(settings, lambda e: backups.backup(e, path, now=utc_now())))
    click.echo(f"backed up {sum(counts.values())} rows to {path}")


@main.command(name="restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_settings
def restore_command(settings: Settings, path: Path) -> None:
    """Load a backup into an empty database (it is migrated first)."""

    async def go(engine: Any) -> dict[str, int]:
        await migrate(engine)
        return await backups.restore(engine, path)

    counts = run(with_engine(settings, go))
    click.echo(f"restored {sum(counts.values())} rows from {path}")
