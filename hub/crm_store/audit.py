"""The audit log: who changed what, when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm_store.tables import AuditRow


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    actor_id: int | None
    action: str
    entity_type: str
    entity_id: str | None
    details: dict[str, Any]


class AuditRepository:
    """Writes and reads the audit log."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(
        self,
        *,
        at: datetime,
        actor_id: int | None,
        action: str,
        entity_type: str,
        entity_id: int | str | None,
        **details: Any,
    ) -> None:
        """Add an entry to the current transaction."""
        self._session.add(
            AuditRow(
                at=at,
                actor_id=actor_id,
                action=action,
                entity_type=entity_type,
                entity_id=None if entity_id is None else str(entity_id),
                details=details,
            )
        )

    async def latest(
        self, *, limit: int, before_id: int | None = None, entity_type: str | None = None
    ) -> list[AuditEntry]:
        """The newest entries first, optionally before an id and for one kind of entity."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditRow.id < before_id)
        if entity_type is not None:
            query = query.where(AuditRow.entity_type == entity_type)
        rows = (await self._session.scalars(query)).all()
        return [
            AuditEntry(r.id, r.at, r.actor_id, r.action, r.entity_type, r.entity_id, r.details)
            for r in rows
        ]
