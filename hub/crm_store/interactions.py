"""Interactions: read them, open them, and move them through their state machine."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Integer, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from hub.crm_store.database import in_ids
from hub.crm_store.tables import InteractionRow, UTCDateTime
from hub.domain.interaction import OPEN_STATES, Channel, Interaction, InteractionState


def interaction_from_row(row: Any) -> Interaction:
    """A domain interaction from an ORM instance or a Core row (same attribute names)."""
    return Interaction(
        id=row.id,
        customer_id=row.customer_id,
        channel=Channel(row.channel),
        state=InteractionState(row.state),
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        queue_id=row.queue_id,
        assigned_user_id=row.assigned_user_id,
        subject=row.subject,
        thread_key=row.thread_key,
        closed_at=row.closed_at,
        disposition=row.disposition,
        priority=row.priority,
        queued_at=row.queued_at,
        answered_at=row.answered_at,
        abandoned_at=row.abandoned_at,
        csat_score=row.csat_score,
        csat_comment=row.csat_comment,
    )


OPEN_STATE_VALUES = [state.value for state in OPEN_STATES]
INTERACTIONS = cast(Table, InteractionRow.__table__)


# Reads by id, built once (a build and its cache key cost more than the read).
_MANY = select(INTERACTIONS).where(in_ids(INTERACTIONS.c.id))
_MANY_LOCKED = _MANY.with_for_update()
_HOLDERS = select(INTERACTIONS.c.id, INTERACTIONS.c.assigned_user_id).where(
    in_ids(INTERACTIONS.c.id), INTERACTIONS.c.assigned_user_id.is_not(None)
)


def _compare_and_set(expected: InteractionState, **values: Any) -> ReturningUpdate[int]:
    """An UPDATE of the interactions in ``ids`` still in ``expected``, returning those it set.

    Built once: building it per call (its IN, values and RETURNING, then its cache key) took
    120 us, about what a routing decision costs, two or three times a routing batch.
    """
    return (
        update(INTERACTIONS)
        .where(
            in_ids(INTERACTIONS.c.id),
            INTERACTIONS.c.state == expected.value,
        )
        .values(updated_at=bindparam("now", type_=UTCDateTime()), **values)
        .returning(INTERACTIONS.c.id)
    )


S = InteractionState
_QUEUE_NEW = _compare_and_set(
    S.NEW,
    state=S.QUEUED.value,
    queue_id=bindparam("to_queue", type_=BigInteger),
    priority=bindparam("to_priority", type_=Integer),
    queued_at=func.coalesce(INTERACTIONS.c.queued_at, INTERACTIONS.c.opened_at),
)
_OFFER_QUEUED = _compare_and_set(S.QUEUED, state=S.OFFERED.value)
_REQUEUE_OFFERED = _compare_and_set(S.OFFERED, state=S.QUEUED.value)


class InteractionRepository:
    """Reads and writes interactions."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, interaction_id: int, *, lock: bool = False) -> Interaction | None:
        """The interaction, or None; lock=True holds a row lock (PostgreSQL) until commit."""
        query = select(InteractionRow).where(InteractionRow.id == interaction_id)
        if lock:
            query = query.with_for_update()
        row = await self._session.scalar(query)
        return None if row is None else interaction_from_row(row)

    async def many(
        self, interaction_ids: Iterable[int], *, lock: bool = False
    ) -> list[Interaction]:
        """Interactions by id (those that exist), in one query; lock=True as for ``get``."""
        ids = sorted(set(interaction_ids))
        if not ids:
            return []
        query = _MANY_LOCKED if lock else _MANY
        rows = await self._session.execute(query, {"ids": ids})
        return [interaction_from_row(row) for row in rows]

    async def last_agents(self, customer_ids: Iterable[int]) -> dict[int, int]:
        """The agent who most recently had one of each customer's interactions."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        ranked = (
            select(
                InteractionRow.customer_id,
                InteractionRow.assigned_user_id,
                func.row_number()
                .over(
                    partition_by=InteractionRow.customer_id,
                    order_by=(InteractionRow.answered_at.desc(), InteractionRow.id.desc()),
                )
                .label("rank"),
            )
            .where(
                InteractionRow.customer_id.in_(ids), InteractionRow.assigned_user_id.is_not(None)
            )
            .subquery()
        )
        rows = await self._session.execute(
            select(ranked.c.customer_id, ranked.c.assigned_user_id).where(ranked.c.rank == 1)
        )
        return {customer_id: agent_id for customer_id, agent_id in rows}

    async def queue_new(
        self, interaction_ids: Sequence[int], queue_id: int | None, priority: int, now: datetime
    ) -> list[int]:
        """Move interactions still new to queued (in line since they opened, unless they were
        in line before); the ids moved. Compare-and-set: what left ``new`` is left alone."""
        return await self._move(
            _QUEUE_NEW, interaction_ids, now, to_queue=queue_id, to_priority=priority
        )

    async def offer_queued(self, interaction_ids: Sequence[int], now: datetime) -> list[int]:
        """Move waiting interactions to offered; the ids moved. Compare-and-set: only what is
        still queued moves (what was closed or taken meanwhile is left alone)."""
        return await self._move(_OFFER_QUEUED, interaction_ids, now)

    async def requeue_offered(self, interaction_ids: Sequence[int], now: datetime) -> list[int]:
        """Put offered interactions back in line (their offers rang out or were withdrawn);
        the ids moved. Compare-and-set: only what is still offered moves."""
        return await self._move(_REQUEUE_OFFERED, interaction_ids, now)

    async def _move(
        self,
        statement: ReturningUpdate[int],
        interaction_ids: Sequence[int],
        now: datetime,
        **values: Any,
    ) -> list[int]:
        """Run a compare-and-set statement on these interactions; the ids it set."""
        if not interaction_ids:
            return []
        moved = await self._session.execute(
            statement, {"ids": list(interaction_ids), "now": now, **values}
        )
        return [row[0] for row in moved]

    async def open_for(
        self, customer_id: int, channel: Channel, thread_key: str | None
    ) -> Interaction | None:
        """The customer's newest open interaction on the channel (and thread, if given)."""
        query = (
            select(InteractionRow)
            .where(
                InteractionRow.customer_id == customer_id,
                InteractionRow.channel == channel.value,
                InteractionRow.state.in_(OPEN_STATE_VALUES),
            )
            .order_by(InteractionRow.id.desc())
            .limit(1)
        )
        if thread_key is not None:
            query = query.where(InteractionRow.thread_key == thread_key)
        row = await self._session.scalar(query)
        return None if row is None else interaction_from_row(row)

    async def open_of_customer(self, customer_id: int) -> list[Interaction]:
        """All the customer's open interactions, newest first."""
        rows = await self._session.execute(
            select(InteractionRow.__table__)
            .where(
                InteractionRow.customer_id == customer_id,
                InteractionRow.state.in_(OPEN_STATE_VALUES),
            )
            .order_by(InteractionRow.id.desc())
        )
        return [interaction_from_row(row) for row in rows]

    async def holders(self, interaction_ids: Iterable[int]) -> dict[int, int]:
        """The agent each of these interactions is (or was last) assigned to, if any."""
        ids = sorted(set(interaction_ids))
        if not ids:
            return {}
        rows = await self._session.execute(_HOLDERS, {"ids": ids})
        return {row.id: row.assigned_user_id for row in rows}

    async def in_states(
        self, states: frozenset[InteractionState], *, after: int = 0, limit: int | None = None
    ) -> list[Interaction]:
        """Interactions in one of these states (rebuilding routing after a restart), by id:
        those after id ``after``, at most ``limit`` of them (a page) if given."""
        query = (
            select(InteractionRow.__table__)
            .where(InteractionRow.state.in_([s.value for s in states]), InteractionRow.id > after)
            .order_by(InteractionRow.id)
        )
        rows = await self._session.execute(query if limit is None else query.limit(limit))
        return [interaction_from_row(row) for row in rows]

    async def held_by(self, user_id: int) -> list[Interaction]:
        """The work an agent holds: assigned to them or in their wrap-up, oldest first."""
        held = [InteractionState.ASSIGNED.value, InteractionState.WRAP_UP.value]
        rows = await self._session.execute(
            select(InteractionRow.__table__)
            .where(InteractionRow.assigned_user_id == user_id, InteractionRow.state.in_(held))
            .order_by(InteractionRow.id)
        )
        return [interaction_from_row(row) for row in rows]

    async def last_agent_of(self, customer_id: int, *, excluding: int) -> int | None:
        """The agent who most recently had one of the customer's interactions."""
        return await self._session.scalar(
            select(InteractionRow.assigned_user_id)
            .where(
                InteractionRow.customer_id == customer_id,
                InteractionRow.id != excluding,
                InteractionRow.assigned_user_id.is_not(None),
            )
            .order_by(InteractionRow.answered_at.desc(), InteractionRow.id.desc())
            .limit(1)
        )

    async def queue_activity(
        self, queue_id: int, since: datetime, until: datetime
    ) -> list[Interaction]:
        """Interactions of a queue that arrived, were answered, abandoned or closed in a window."""
        column = InteractionRow
        rows = await self._session.execute(
            select(InteractionRow.__table__).where(
                column.queue_id == queue_id,
                (column.queued_at.between(since, until))
                | (column.answered_at.between(since, until))
                | (column.abandoned_at.between(since, until))
                | (column.closed_at.between(since, until)),
            )
        )
        return [interaction_from_row(row) for row in rows]

    async def create(
        self,
        *,
        customer_id: int,
        channel: Channel,
        now: datetime,
        queue_id: int | None = None,
        subject: str | None = None,
        thread_key: str | None = None,
    ) -> Interaction:
        """Open a new interaction in state NEW."""
        row = InteractionRow(
            customer_id=customer_id,
            channel=channel.value,
            state=InteractionState.NEW.value,
            queue_id=queue_id,
            subject=subject,
            thread_key=thread_key,
            opened_at=now,
            updated_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return interaction_from_row(row)

    async def save_state(self, interaction: Interaction, expected: InteractionState) -> bool:
        """Write the interaction's state if the stored one is still ``expected``.

        The compare-and-set makes two concurrent moves of one interaction safe: the loser
        sees False and must re-read.
        """
        result = await self._session.execute(
            update(InteractionRow)
            .where(InteractionRow.id == interaction.id, InteractionRow.state == expected.value)
            .values(
                state=interaction.state.value,
                updated_at=interaction.updated_at,
                closed_at=interaction.closed_at,
                queue_id=interaction.queue_id,
                assigned_user_id=interaction.assigned_user_id,
                disposition=interaction.disposition,
                priority=interaction.priority,
                queued_at=interaction.queued_at,
                answered_at=interaction.answered_at,
                abandoned_at=interaction.abandoned_at,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_rating(
        self, interaction_id: int, score: int, comment: str | None, now: datetime
    ) -> bool:
        """Keep the customer's rating, once (False if it was rated already)."""
        result = await self._session.execute(
            update(InteractionRow)
            .where(InteractionRow.id == interaction_id, InteractionRow.csat_score.is_(None))
            .values(csat_score=score, csat_comment=comment, rated_at=now)
        )
        return bool(getattr(result, "rowcount", 0))
