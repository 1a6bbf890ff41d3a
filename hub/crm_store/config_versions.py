"""Versions of what admins edit at run time: the routing policy, channel settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm_store.tables import ConfigVersionRow


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    """One saved version of a kind of setting; the newest is in force."""

    kind: str
    version: int
    document: dict[str, Any]
    source: str
    file_digest: str | None
    created_at: datetime
    created_by: int | None


def _version(row: ConfigVersionRow) -> ConfigVersion:
    return ConfigVersion(
        row.kind,
        row.version,
        dict(row.document),
        row.source,
        row.file_digest,
        row.created_at,
        row.created_by,
    )


class ConfigVersionRepository:
    """Reads and adds config versions."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def latest(self, kind: str) -> ConfigVersion | None:
        """The version in force, or None if none was ever saved."""
        row = await self._session.scalar(
            select(ConfigVersionRow)
            .where(ConfigVersionRow.kind == kind)
            .order_by(ConfigVersionRow.version.desc())
            .limit(1)
        )
        return None if row is None else _version(row)

    async def latest_number(self, kind: str) -> int:
        """The newest version's number (0 if none): a cheap check for changes."""
        found = await self._session.scalar(
            select(func.max(ConfigVersionRow.version)).where(ConfigVersionRow.kind == kind)
        )
        return int(found or 0)

    async def get(self, kind: str, version: int) -> ConfigVersion | None:
        """One version, or None."""
        row = await self._session.scalar(
            select(ConfigVersionRow).where(
                ConfigVersionRow.kind == kind, ConfigVersionRow.version == version
            )
        )
        return None if row is None else _version(row)

    async def history(self, kind: str, *, limit: int) -> list[ConfigVersion]:
        """The newest versions first."""
        rows = await self._session.scalars(
            select(ConfigVersionRow)
            .where(ConfigVersionRow.kind == kind)
            .order_by(ConfigVersionRow.version.desc())
            .limit(limit)
        )
        return [_version(row) for row in rows]

    async def add(
        self,
        kind: str,
        *,
        version: int,
        document: dict[str, Any],
        source: str,
        now: datetime,
        file_digest: str | None = None,
        created_by: int | None = None,
    ) -> ConfigVersion:
        """Save a version; one with the same number already saved fails (StoreConflict)."""
        row = ConfigVersionRow(
            kind=kind,
            version=version,
            document=document,
            source=source,
            file_digest=file_digest,
            created_at=now,
            created_by=created_by,
        )
        self._session.add(row)
        await self._session.flush()
        return _version(row)
