"""The legs of calls: who is on each interaction's conference, by Twilio CallSid."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm_store.tables import CallLegRow
from hub.domain.calls import LIVE, CallLeg, LegRole, MonitorMode


def _leg(row: CallLegRow) -> CallLeg:
    return CallLeg(
        id=row.id,
        interaction_id=row.interaction_id,
        call_sid=row.call_sid,
        role=LegRole(row.role),
        status=row.status,
        created_at=row.created_at,
        user_id=row.user_id,
        number=row.number,
        conference_sid=row.conference_sid,
        conference_sequence=row.conference_sequence,
        muted=row.muted,
        held=row.held,
        monitor=MonitorMode(row.monitor) if row.monitor else None,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
    )


class CallRepository:
    """Adds, finds and updates call legs."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        interaction_id: int,
        call_sid: str,
        role: LegRole,
        status: str,
        now: datetime,
        user_id: int | None = None,
        number: str | None = None,
        conference_sid: str | None = None,
        monitor: MonitorMode | None = None,
    ) -> CallLeg:
        """Record a leg; the same CallSid again returns the leg already recorded."""
        found = await self._row(call_sid)
        if found is not None:
            return _leg(found)
        row = CallLegRow(
            interaction_id=interaction_id,
            call_sid=call_sid,
            role=role.value,
            status=status,
            user_id=user_id,
            number=number,
            conference_sid=conference_sid,
            muted=False,
            held=False,
            monitor=monitor.value if monitor else None,
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return _leg(row)

    async def by_sid(self, call_sid: str) -> CallLeg | None:
        """The leg of a Twilio call, or None."""
        row = await self._row(call_sid)
        return _leg(row) if row is not None else None

    async def of_interaction(self, interaction_id: int, *, live: bool = False) -> list[CallLeg]:
        """An interaction's legs in the order they were made (only the live ones if asked)."""
        query = select(CallLegRow).where(CallLegRow.interaction_id == interaction_id)
        if live:
            query = query.where(CallLegRow.status.in_(LIVE))
        rows = await self._session.scalars(query.order_by(CallLegRow.id))
        return [_leg(row) for row in rows]

    async def live(self) -> list[CallLeg]:
        """Every leg ringing or connected now, by interaction (the supervisor's call list)."""
        rows = await self._session.scalars(
            select(CallLegRow)
            .where(CallLegRow.status.in_(LIVE))
            .order_by(CallLegRow.interaction_id, CallLegRow.id)
        )
        return [_leg(row) for row in rows]

    async def update(self, call_sid: str, **changes: Any) -> CallLeg | None:
        """Change a leg's status, mute, hold, monitor mode, conference or times."""
        row = await self._row(call_sid)
        if row is None:
            return None
        for name, value in changes.items():
            if name == "monitor" and value is not None:
                value = MonitorMode(value).value
            setattr(row, name, value)
        await self._session.flush()
        return _leg(row)

    async def _row(self, call_sid: str) -> CallLegRow | None:
        return await self._session.scalar(select(CallLegRow).where(CallLegRow.call_sid == call_sid))
