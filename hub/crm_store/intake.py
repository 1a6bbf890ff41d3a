"""Bulk reads and writes for the receive path: one statement per step for a whole batch.

Core statements (no ORM units of work, no identity map): a batch of inbound messages looks up
its provider references, identities and open interactions in one query each, and inserts its
customers, identities, interactions and timeline events with one multi-row INSERT each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm_store.customers import fold_name
from hub.crm_store.database import insert_many
from hub.crm_store.interactions import INTERACTIONS, OPEN_STATE_VALUES
from hub.crm_store.tables import (
    CustomerRow,
    IdentityRow,
    QueueRow,
    TimelineEventRow,
)
from hub.domain.identity import IdentityRef
from hub.domain.interaction import Channel, InteractionState

CUSTOMERS = cast(Table, CustomerRow.__table__)
IDENTITIES = cast(Table, IdentityRow.__table__)
EVENTS = cast(Table, TimelineEventRow.__table__)
QUEUES = cast(Table, QueueRow.__table__)


@dataclass(frozen=True, slots=True)
class Holder:
    """A customer holding an identity."""

    customer_id: int
    verified: bool
    display_name: str | None


@dataclass(frozen=True, slots=True)
class OpenInteraction:
    """An open interaction a message may continue."""

    id: int
    customer_id: int
    channel: str
    thread_key: str | None
    queue_id: int | None


# Built once: the statement of every batch (building it cost more than running it).
_EARLIER = select(
    EVENTS.c.provider,
    EVENTS.c.provider_ref,
    EVENTS.c.customer_id,
    EVENTS.c.interaction_id,
    EVENTS.c.id,
).where(tuple_(EVENTS.c.provider, EVENTS.c.provider_ref).in_(bindparam("refs", expanding=True)))


class IntakeRepository:
    """What a batch of inbound messages reads and writes, in bulk."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def earlier(
        self, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[int, int | None, int]]:
        """Events already stored under these provider references: customer, interaction, id."""
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        rows = await self._session.execute(_EARLIER, {"refs": wanted})
        return {(p, r): (c, i, e) for p, r, c, i, e in rows}

    async def holders(self, refs: Iterable[IdentityRef]) -> dict[IdentityRef, list[Holder]]:
        """Who holds each identity (verified or not), with the holder's name."""
        wanted = list(dict.fromkeys(refs))
        if not wanted:
            return {}
        rows = await self._session.execute(
            select(
                IDENTITIES.c.kind,
                IDENTITIES.c.value,
                IDENTITIES.c.customer_id,
                IDENTITIES.c.verified,
                CUSTOMERS.c.display_name,
            )
            .join(CUSTOMERS, CUSTOMERS.c.id == IDENTITIES.c.customer_id)
            .where(
                tuple_(IDENTITIES.c.kind, IDENTITIES.c.value).in_(
                    [(r.kind.value, r.value) for r in wanted]
                )
            )
        )
        found: dict[IdentityRef, list[Holder]] = {ref: [] for ref in wanted}
        by_key = {(ref.kind.value, ref.value): ref for ref in wanted}
        for kind, value, customer_id, verified, name in rows:
            found[by_key[(kind, value)]].append(Holder(customer_id, bool(verified), name))
        return found

    async def queues(self, names: Iterable[str]) -> dict[str, tuple[int, int | None]]:
        """Queues by name: id and team."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        rows = await self._session.execute(
            select(QUEUES.c.name, QUEUES.c.id, QUEUES.c.team_id).where(QUEUES.c.name.in_(wanted))
        )
        return {name: (queue_id, team_id) for name, queue_id, team_id in rows}

    async def create_customers(
        self, customers: Sequence[tuple[str | None, int]], now: datetime
    ) -> list[int]:
        """New customers (display name, team), their ids in the same order."""
        if not customers:
            return []
        return await insert_many(
            self._session,
            CUSTOMERS,
            [
                {
                    "display_name": name,
                    "name_folded": fold_name(name),
                    "custom_fields": {},
                    "tags": [],
                    "team_id": team_id,
                    "created_at": now,
                    "updated_at": now,
                }
                for name, team_id in customers
            ],
        )

    async def add_verified_identities(
        self, identities: Sequence[tuple[int, IdentityRef]], now: datetime
    ) -> None:
        """Verified identities of customers (a value held verified elsewhere fails: conflict)."""
        if identities:
            await self._session.execute(
                insert(IDENTITIES),
                [
                    {
                        "customer_id": customer_id,
                        "kind": ref.kind.value,
                        "value": ref.value,
                        "verified": True,
                        "created_at": now,
                    }
                    for customer_id, ref in identities
                ],
            )

    async def name_customers(self, names: dict[int, str], now: datetime) -> None:
        """Give nameless customers the names their messages carried."""
        for customer_id, name in names.items():
            await self._session.execute(
                update(CUSTOMERS)
                .where(CUSTOMERS.c.id == customer_id, CUSTOMERS.c.display_name.is_(None))
                .values(display_name=name, name_folded=fold_name(name), updated_at=now)
            )

    async def open_interactions(
        self, customer_ids: Iterable[int], channels: Iterable[Channel]
    ) -> list[OpenInteraction]:
        """The customers' open interactions on these channels, newest first."""
        ids = sorted(set(customer_ids))
        if not ids:
            return []
        rows = await self._session.execute(
            select(
                INTERACTIONS.c.id,
                INTERACTIONS.c.customer_id,
                INTERACTIONS.c.channel,
                INTERACTIONS.c.thread_key,
                INTERACTIONS.c.queue_id,
            )
            .where(
                INTERACTIONS.c.customer_id.in_(ids),
                INTERACTIONS.c.channel.in_(sorted({c.value for c in channels})),
                INTERACTIONS.c.state.in_(OPEN_STATE_VALUES),
            )
            .order_by(INTERACTIONS.c.id.desc())
        )
        return [OpenInteraction(*row) for row in rows]

    async def create_interactions(self, interactions: Sequence[dict[str, Any]]) -> list[int]:
        """New interactions in state new (customer_id, channel, queue_id, subject, thread_key,
        opened_at), their ids in the same order."""
        if not interactions:
            return []
        return await insert_many(
            self._session,
            INTERACTIONS,
            [
                {
                    **values,
                    "state": InteractionState.NEW.value,
                    "priority": 0,
                    "updated_at": values["opened_at"],
                }
                for values in interactions
            ],
        )

    async def touch(self, customer_ids: Iterable[int], now: datetime) -> None:
        """Mark customers as having had activity now."""
        ids = sorted(set(customer_ids))
        if ids:
            await self._session.execute(
                update(CUSTOMERS).where(CUSTOMERS.c.id.in_(ids)).values(updated_at=now)
            )
