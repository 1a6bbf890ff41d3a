"""Bulk reads and writes for the receive path: one statement per step for a whole batch.

Core statements (no ORM units of work, no identity map): a batch of inbound messages reads
what it needs (its provider references stored already, its queues, who holds its senders, their
open interactions, the default team) in one statement, and inserts its customers, identities,
interactions and timeline events with one multi-row INSERT each.

On PostgreSQL, where each statement is a round trip to the server, the snapshot also reserves
ids from the tables' sequences, so a batch of plain messages knows every id it will write
before it writes: its rows, its customers' updates and its outbox rows then go in as one
statement of data-modifying CTEs (``write_plain``), atomic on its own in autocommit. A batch
costs two round trips instead of eight (BEGIN, snapshot, five writes, COMMIT).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    String,
    Table,
    bindparam,
    column,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

from hub.crm_store.customers import fold_name
from hub.crm_store.database import in_ids, insert_many
from hub.crm_store.interactions import INTERACTIONS, OPEN_STATE_VALUES
from hub.crm_store.tables import CustomerRow, IdentityRow, UTCDateTime
from hub.crm_store.timeline import NewEvent, event_row
from hub.domain.identity import IdentityRef
from hub.domain.interaction import Channel, InteractionState
from hub.json_writer import json_bytes

CUSTOMERS = cast(Table, CustomerRow.__table__)
IDENTITIES = cast(Table, IdentityRow.__table__)


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


def _snapshot_sql(dialect: str) -> TextualSelect:
    """The batch's snapshot in one statement: the lists it asks about arrive as JSON arrays, so
    the text is the same for every batch (PostgreSQL prepares it once per connection), and
    each answer comes back as one JSON array (no row per fact, no round trip per question)."""
    if dialect == "postgresql":
        pairs = "SELECT p->>0 AS a, p->>1 AS b FROM jsonb_array_elements(CAST({} AS jsonb)) AS p"
        names = "SELECT jsonb_array_elements_text(CAST({} AS jsonb))"
        rows, row = "coalesce(json_agg({}), '[]')", "json_build_array({})"
        # Each key looked up in its index: PostgreSQL guesses a JSON array holds 100 elements
        # and would rather scan a small table whole (OFFSET 0 keeps each lookup apart).
        lookup = "CROSS JOIN LATERAL (SELECT * FROM {0} AS {1} WHERE {2} OFFSET 0) AS {1}"
        # Ids the batch may write with, taken now (a sequence never hands one out twice, and
        # one not used is a gap, as after any rollback).
        sequence = (
            "(SELECT array_agg(nextval('{0}_id_seq')) FROM generate_series(1, :reserve)) AS {0}"
        )
        reserved = ",\n  ".join(sequence.format(table) for table in RESERVED)
    else:
        pairs = (
            "SELECT json_extract(p.value, '$[0]') AS a, json_extract(p.value, '$[1]') AS b"
            " FROM json_each({}) AS p"
        )
        names = "SELECT value FROM json_each({})"
        rows, row = "json_group_array({})", "json_array({})"
        lookup = "CROSS JOIN {0} AS {1} ON {2}"  # CROSS: SQLite keeps the order written
        reserved = ",\n  ".join(f"NULL AS {table}" for table in RESERVED)  # one writer: no need

    def listed(columns: str) -> str:
        return rows.format(row.format(columns))

    return (
        text(
            f"""
WITH refs AS ({pairs.format(":refs")}),
senders AS ({pairs.format(":senders")}),
held AS (
  SELECT i.kind, i.value, i.customer_id, i.verified, c.display_name
  FROM senders AS s
  {lookup.format("identities", "i", "i.kind = s.a AND i.value = s.b")}
  JOIN customers AS c ON c.id = i.customer_id
)
SELECT
  (SELECT {listed("e.provider, e.provider_ref, e.customer_id, e.interaction_id, e.id")}
   FROM refs AS r
   {lookup.format("timeline_events", "e", "e.provider = r.a AND e.provider_ref = r.b")}
  ) AS earlier,
  (SELECT {listed("q.name, q.id, q.team_id")}
   FROM queues AS q WHERE q.name IN ({names.format(":queues")})
  ) AS queues,
  (SELECT {listed("h.kind, h.value, h.customer_id, h.verified, h.display_name")} FROM held AS h
  ) AS holders,
  (SELECT {listed("n.id, n.customer_id, n.channel, n.thread_key, n.queue_id")}
   FROM (SELECT DISTINCT customer_id FROM held) AS h
   {lookup.format("interactions", "n", "n.customer_id = h.customer_id")}
   WHERE n.channel IN ({names.format(":channels")})
     AND n.state IN ({names.format(":states")})
  ) AS open,
  (SELECT t.id FROM teams AS t WHERE t.name = :team) AS team,
  {reserved}
"""  # noqa: S608 (built from this function's constants; every value is a bound parameter)
        )
        .bindparams(
            bindparam("refs", type_=String),
            bindparam("senders", type_=String),
            bindparam("queues", type_=String),
            bindparam("channels", type_=String),
            bindparam("states", type_=String),
            bindparam("team", type_=String),
            *([bindparam("reserve", type_=BigInteger)] if dialect == "postgresql" else []),
        )
        .columns(
            column("earlier", JSON),
            column("queues", JSON),
            column("holders", JSON),
            column("open", JSON),
            column("team", BigInteger),
            *(column(table, ARRAY(BigInteger)) for table in RESERVED),
        )
    )


RESERVED = ("customers", "interactions", "timeline_events")  # the tables whose ids are reserved

# The batch's other writes, built once (building a statement costs as much as running one).
_ADD_IDENTITIES = insert(IDENTITIES)
_TOUCH = (
    update(CUSTOMERS)
    .where(in_ids(CUSTOMERS.c.id))
    .values(updated_at=bindparam("now", type_=UTCDateTime()))
)


# Built once per dialect: building a statement cost more than running it.
_SNAPSHOT = {dialect: _snapshot_sql(dialect) for dialect in ("postgresql", "sqlite")}
_STATES = json.dumps(sorted(OPEN_STATE_VALUES))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a batch of inbound messages needs to know before it writes, read at once."""

    earlier: dict[tuple[str, str], tuple[int, int | None, int]]  # ref -> customer, work, event
    queues: dict[str, tuple[int, int | None]]  # name -> id, team
    holders: dict[IdentityRef, list[Holder]]
    open: list[OpenInteraction]  # the holders' open interactions on the channels, newest first
    team_id: int | None  # the default team's, if it exists
    reserved: Reserved | None = None  # ids taken for the batch's rows (PostgreSQL)


@dataclass(frozen=True, slots=True)
class Reserved:
    """Ids taken from the sequences for a batch's new rows, as many of each as it has messages."""

    customers: list[int]
    interactions: list[int]
    events: list[int]


class IntakeRepository:
    """What a batch of inbound messages reads and writes, in bulk."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def snapshot(
        self,
        *,
        refs: Iterable[tuple[str, str]],
        senders: Iterable[IdentityRef],
        queues: Iterable[str],
        channels: Iterable[Channel],
        team: str,
        reserve: int = 0,
    ) -> Snapshot:
        """Which references were stored already, the named queues, who holds the senders,
        those holders' open interactions on the channels, and the team: one statement. On
        PostgreSQL it also reserves ``reserve`` ids of each table a batch inserts into."""
        wanted = list(dict.fromkeys(senders))
        dialect = self._dialect()
        values: dict[str, Any] = {
            "refs": json.dumps(list(dict.fromkeys(refs))),
            "senders": json.dumps([[r.kind.value, r.value] for r in wanted]),
            "queues": json.dumps(sorted(set(queues))),
            "channels": json.dumps(sorted({c.value for c in channels})),
            "states": _STATES,
            "team": team,
        }
        if dialect == "postgresql":
            values["reserve"] = reserve
        row = (await self._session.execute(_SNAPSHOT[dialect], values)).one()
        holders: dict[IdentityRef, list[Holder]] = {ref: [] for ref in wanted}
        by_key = {(ref.kind.value, ref.value): ref for ref in wanted}
        for kind, value, customer_id, verified, name in row.holders or ():
            holders[by_key[(kind, value)]].append(Holder(customer_id, bool(verified), name))
        return Snapshot(
            earlier={(p, r): (c, i, e) for p, r, c, i, e in row.earlier or ()},
            queues={name: (queue_id, team_id) for name, queue_id, team_id in row.queues or ()},
            holders=holders,
            open=sorted(
                (OpenInteraction(*values) for values in row.open or ()),
                key=lambda interaction: -interaction.id,
            ),
            team_id=row.team,
            reserved=(
                Reserved(row.customers, row.interactions, row.timeline_events)
                if reserve and row.customers
                else None
            ),
        )

    def _dialect(self) -> str:
        bind = self._session.bind
        assert bind is not None
        return bind.dialect.name

    async def write_plain(self, batch: PlainWrite, outbox: Sequence[dict[str, Any]]) -> list[int]:
        """Write a batch of plain messages and its outbox rows in one statement (PostgreSQL,
        with ids reserved by the snapshot); the outbox rows' ids, in order.

        Run in autocommit, the statement is its own transaction: all of it or none. Its
        sibling CTEs see one snapshot, and the foreign keys are checked when it ends, so an
        identity may name a customer inserted beside it.
        """
        result = await self._session.execute(
            _WRITE_PLAIN,
            {
                "now": batch.now,
                "customers": _json(
                    [[i, name, fold_name(name), team] for i, name, team in batch.customers]
                ),
                "identities": _json(
                    [[customer, ref.kind.value, ref.value] for customer, ref in batch.identities]
                ),
                "interactions": _json(batch.interactions),
                "events": _json([_event_values(i, e) for i, e in batch.events]),
                "changed": _json(
                    [[i, i in batch.touched, name, fold_name(name)] for i, name in batch.changed()]
                ),
                "outbox": _json(
                    [[r["partition"], r["type"], r["data"], r["created_at"]] for r in outbox]
                ),
            },
        )
        return sorted(outbox_id for (outbox_id,) in result)  # one statement's ids grow in order

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
                _ADD_IDENTITIES,
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
            await self._session.execute(_TOUCH, {"ids": ids, "now": now})


@dataclass(frozen=True, slots=True)
class PlainWrite:
    """What a batch of plain messages writes (``IntakeRepository.write_plain``), ids known."""

    now: datetime
    customers: list[tuple[int, str | None, int]]  # id, display name, team
    identities: list[tuple[int, IdentityRef]]  # verified, of the new customers
    # id, customer, channel, queue, subject, thread key, opened at
    interactions: list[tuple[int, int, str, int | None, str | None, str | None, datetime]]
    events: list[tuple[int, NewEvent]]
    touched: frozenset[int]  # customers with new activity
    names: dict[int, str]  # nameless customers' names, from their messages

    def changed(self) -> list[tuple[int, str | None]]:
        """The existing customers to update, with the name each may take."""
        return [(i, self.names.get(i)) for i in sorted(self.touched | self.names.keys())]


def _event_values(event_id: int, e: NewEvent) -> list[Any]:
    """An event's columns in the order ``_WRITE_PLAIN`` reads them: its id, then the rest."""
    return [event_id, *event_row(e).values()]


def _json(value: Any) -> str:
    """A statement's JSON parameter (datetimes as ISO 8601, as the API writes them)."""
    return json_bytes(value).decode()


def _rows(name: str, columns: str) -> str:
    """A JSON array of arrays as rows of the named, typed columns, and their ``ordinality``."""
    typed = [c.split(None, 1) for c in columns.split(",")]
    picked = ", ".join(
        f"CAST(r->>{n} AS {kind}) AS {label}" if kind != "jsonb" else f"r->{n} AS {label}"
        for n, (label, kind) in enumerate(typed)
    )
    rows = "(SELECT {}, ordinality FROM jsonb_array_elements(CAST(:{} AS jsonb))"
    return rows.format(picked, name) + " WITH ORDINALITY AS e(r, ordinality))"


# Built once: every batch sends the same text, which PostgreSQL prepares once per connection.
_WRITE_PLAIN: TextClause = text(
    f"""
WITH new_customers AS (
  INSERT INTO customers
    (id, display_name, name_folded, custom_fields, tags, team_id, created_at, updated_at)
  SELECT x.id, x.name, x.folded, '{{}}', '[]', x.team, :now, :now
  FROM {_rows("customers", "id bigint, name text, folded text, team bigint")} AS x
),
new_identities AS (
  INSERT INTO identities (customer_id, kind, value, verified, created_at)
  SELECT x.customer, x.kind, x.value, true, :now
  FROM {_rows("identities", "customer bigint, kind text, value text")} AS x
),
new_interactions AS (
  INSERT INTO interactions (id, customer_id, channel, state, queue_id, subject, thread_key,
    priority, opened_at, updated_at)
  SELECT x.id, x.customer, x.channel, '{InteractionState.NEW.value}', x.queue, x.subject,
    x.thread, 0, x.opened, x.opened
  FROM {
        _rows(
            "interactions",
            "id bigint, customer bigint, channel text, queue bigint, subject text,"
            " thread text, opened timestamptz",
        )
    } AS x
),
new_events AS (
  INSERT INTO timeline_events (id, customer_id, interaction_id, kind, channel, direction,
    occurred_at, body, attachments, provider, provider_ref, author_id, data)
  SELECT x.id, x.customer, x.interaction, x.kind, x.channel, x.direction, x.occurred, x.body,
    x.attachments, x.provider, x.ref, x.author, x.data
  FROM {
        _rows(
            "events",
            "id bigint, customer bigint, interaction bigint, kind text, channel text,"
            " direction text, occurred timestamptz, body text, attachments jsonb,"
            " provider text, ref text, author bigint, data jsonb",
        )
    } AS x
),
changed AS (
  UPDATE customers AS c SET
    updated_at = CASE WHEN x.touch OR c.display_name IS NULL AND x.name IS NOT NULL
      THEN :now ELSE c.updated_at END,
    display_name = coalesce(c.display_name, x.name),
    name_folded = CASE WHEN c.display_name IS NULL AND x.name IS NOT NULL
      THEN x.folded ELSE c.name_folded END
  FROM {_rows("changed", "id bigint, touch boolean, name text, folded text")} AS x
  WHERE c.id = x.id AND (x.touch OR c.display_name IS NULL AND x.name IS NOT NULL)
)
INSERT INTO outbox (partition, type, data, created_at)
SELECT x.partition, x.type, x.data, x.created
FROM {_rows("outbox", "partition integer, type text, data jsonb, created double precision")} AS x
ORDER BY x.ordinality
RETURNING id
"""  # noqa: S608 (built from this module's constants; every value is a bound parameter)
).bindparams(bindparam("now", type_=UTCDateTime()))
