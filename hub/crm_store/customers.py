"""Customers, their identities, notes, merge suggestions and merges."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    false,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm_store.database import in_ids, json_ids
from hub.crm_store.interactions import INTERACTIONS, OPEN_STATE_VALUES, interaction_from_row
from hub.crm_store.tables import (
    CustomerRow,
    IdentityRow,
    InteractionRow,
    MergeRow,
    MergeSuggestionRow,
    NoteRow,
    TimelineEventRow,
)
from hub.domain.customer import Customer, Identity, MergeSuggestion
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel, Interaction
from hub.domain.users import Principal, Role

# The rows a merge moves from one customer to another, by the name the merge record uses.
MOVABLE: dict[str, Any] = {
    "identities": IdentityRow,
    "interactions": InteractionRow,
    "events": TimelineEventRow,
    "notes": NoteRow,
}


@dataclass(frozen=True, slots=True)
class Note:
    """A note an agent wrote on a customer."""

    id: int
    customer_id: int
    interaction_id: int | None
    author_id: int | None
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    """A customer with its identities (oldest first) and open interactions (newest first)."""

    customer: Customer
    identities: tuple[Identity, ...]
    open_interactions: tuple[Interaction, ...]


class _Prefixed:
    """The columns of one table in a joined row, read by their own names (``i_value`` as
    ``value``), so the row converters serve joined rows too."""

    __slots__ = ("_prefix", "_row")

    def __init__(self, row: Any, prefix: str) -> None:
        self._row = row
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


CUSTOMERS = cast(Table, CustomerRow.__table__)
IDENTITIES = cast(Table, IdentityRow.__table__)


# The open states as equalities, not an IN list (finished at every execution).
_OPEN = or_(*(INTERACTIONS.c.state == state for state in OPEN_STATE_VALUES))
_LABELLED = (
    *(column.label(f"i_{column.name}") for column in IDENTITIES.c),
    *(column.label(f"w_{column.name}") for column in INTERACTIONS.c),
)
_OPEN_SUGGESTIONS = (
    select(MergeSuggestionRow.__table__)
    .where(
        or_(
            in_ids(MergeSuggestionRow.__table__.c.customer_a_id),
            in_ids(MergeSuggestionRow.__table__.c.customer_b_id),
        ),
        MergeSuggestionRow.status == "open",
    )
    .order_by(MergeSuggestionRow.id)
)


@dataclass(frozen=True, slots=True)
class Merge:
    """A merge of one customer into another, and what it moved."""

    id: int
    survivor_id: int
    merged_id: int
    moved: dict[str, Any]
    performed_by: int | None
    performed_at: datetime
    undone_at: datetime | None


def _customer(row: Any) -> Customer:
    return Customer(
        id=row.id,
        display_name=row.display_name,
        created_at=row.created_at,
        updated_at=row.updated_at,
        custom_fields=dict(row.custom_fields or {}),
        tags=tuple(row.tags or ()),
        owner_id=row.owner_id,
        team_id=row.team_id,
        merged_into_id=row.merged_into_id,
    )


def _identity(row: Any) -> Identity:
    return Identity(
        row.id,
        row.customer_id,
        IdentityKind(row.kind),
        row.value,
        row.verified,
        row.created_at,
        row.opted_out_at,
    )


def _suggestion(row: Any) -> MergeSuggestion:
    return MergeSuggestion(
        row.id, row.customer_a_id, row.customer_b_id, row.reason, row.status, row.created_at
    )


def _merge(row: MergeRow) -> Merge:
    return Merge(
        row.id,
        row.survivor_id,
        row.merged_id,
        row.moved,
        row.performed_by,
        row.performed_at,
        row.undone_at,
    )


def fold_name(name: str | None) -> str | None:
    """The searchable form of a name."""
    return None if name is None else " ".join(name.casefold().split())


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """SQL condition: the customer is visible to the principal.

    Admins see everyone; others see their teams' customers; an agent also sees the customers
    whose interactions are assigned to them, wherever those customers belong.
    """
    return _visibility(
        _visibility_shape(principal),
        CUSTOMERS.c.team_id.in_(sorted(principal.team_ids)),
        principal.user_id,
    )


def _visibility_shape(principal: Principal) -> tuple[bool, bool, bool]:
    """What the principal's visibility condition is made of, apart from its values: whether
    they see everything, have teams, hold work as an agent."""
    everything = principal.sees_everything
    return everything, bool(principal.team_ids), principal.role is Role.AGENT


def _visibility(
    shape: tuple[bool, bool, bool], in_teams: ColumnElement[bool], user: Any
) -> ColumnElement[bool]:
    """``visible_to``'s condition for a shape, given the condition that the customer is in
    the principal's teams and the principal's id (values, or parameters bound later)."""
    everything, has_teams, agent = shape
    if everything:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if has_teams:
        conditions.append(in_teams)
    if agent:
        held = INTERACTIONS.alias()  # apart from interactions the outer query may join
        conditions.append(
            exists().where(held.c.customer_id == CUSTOMERS.c.id, held.c.assigned_user_id == user)
        )
    return or_(*conditions) if conditions else false()


def _profiles_query(dialect: str, visibility: ColumnElement[bool] | None) -> Select[Any]:
    """Customers in the list ``ids`` (the visible ones only, given a condition), each with its
    identities and open interactions: a row per pair, identity columns as ``i_*`` and
    interaction columns as ``w_*``.

    PostgreSQL looks each id up (``LATERAL``, an index scan per customer, its identities and
    its work) whatever its statistics say: on tables analysed while small (a new hub, the
    first minute of a benchmark) the join's plan was three sequential scans, 600 us on the
    server for one customer against 150. SQLite's planner uses the indexes as it is.
    """
    if dialect != "postgresql":
        return (
            select(CUSTOMERS, *_LABELLED)
            .select_from(
                CUSTOMERS.outerjoin(
                    IDENTITIES, IDENTITIES.c.customer_id == CUSTOMERS.c.id
                ).outerjoin(INTERACTIONS, and_(INTERACTIONS.c.customer_id == CUSTOMERS.c.id, _OPEN))
            )
            .where(in_ids(CUSTOMERS.c.id), true() if visibility is None else visibility)
            .order_by(CUSTOMERS.c.id, IDENTITIES.c.id, INTERACTIONS.c.id.desc())
        )
    ids = json_ids().alias("ids")
    found = select(CUSTOMERS).where(CUSTOMERS.c.id == sql_cast(ids.c.value, BigInteger))
    if visibility is not None:
        found = found.where(visibility)
    customer = found.offset(0).lateral("c")  # OFFSET: each looked up on its own, not joined
    identity = (
        select(IDENTITIES).where(IDENTITIES.c.customer_id == customer.c.id).offset(0).lateral("i")
    )
    work = (
        select(INTERACTIONS)
        .where(INTERACTIONS.c.customer_id == customer.c.id, _OPEN)
        .offset(0)
        .lateral("w")
    )
    return (
        select(
            *customer.c,
            *(column.label(f"i_{column.name}") for column in identity.c),
            *(column.label(f"w_{column.name}") for column in work.c),
        )
        .select_from(ids.join(customer, true()).outerjoin(identity, true()).outerjoin(work, true()))
        .order_by(customer.c.id, identity.c.id, work.c.id.desc())
    )


# Built once per dialect and shape of visibility (the principal's teams and id are the
# parameters ``vis_teams`` and ``vis_user``): building the statement and its cache key anew
# for every read cost a twentieth of a unified record's processor time on PostgreSQL.
_SHAPES = [(e, t, a) for e in (False, True) for t in (False, True) for a in (False, True)]
_PROFILES = {
    (dialect, shape): _profiles_query(
        dialect,
        None
        if shape is None
        else _visibility(shape, in_ids(CUSTOMERS.c.team_id, "vis_teams"), bindparam("vis_user")),
    )
    for dialect in ("postgresql", "sqlite")
    for shape in [None, *_SHAPES]
}


class CustomerRepository:
    """Reads and writes customers and everything hanging on them but interactions and events."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # -- customers -------------------------------------------------------------------------

    async def get(self, customer_id: int, *, lock: bool = False) -> Customer | None:
        """The customer, or None; lock=True holds a row lock (PostgreSQL) until commit."""
        query = select(CustomerRow).where(CustomerRow.id == customer_id)
        if lock:
            query = query.with_for_update()
        row = await self._session.scalar(query)
        return None if row is None else _customer(row)

    async def traits(
        self, customer_ids: Iterable[int]
    ) -> dict[int, tuple[dict[str, Any], list[str]]]:
        """Custom fields and tags of customers (what routing matches on), in one query."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        rows = await self._session.execute(
            select(CustomerRow.id, CustomerRow.custom_fields, CustomerRow.tags).where(
                CustomerRow.id.in_(ids)
            )
        )
        return {cid: (dict(fields or {}), list(tags or [])) for cid, fields, tags in rows}

    async def get_visible(self, customer_id: int, principal: Principal) -> Customer | None:
        """The customer if it exists and the principal may see it, in one query."""
        row = await self._session.scalar(
            select(CustomerRow).where(CustomerRow.id == customer_id, visible_to(principal))
        )
        return None if row is None else _customer(row)

    async def is_visible(self, customer_id: int, principal: Principal) -> bool:
        """Whether the principal may see this customer."""
        found = await self._session.scalar(
            select(CustomerRow.id).where(CustomerRow.id == customer_id, visible_to(principal))
        )
        return found is not None

    async def create(
        self,
        *,
        display_name: str | None,
        team_id: int | None,
        now: datetime,
        custom_fields: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        owner_id: int | None = None,
    ) -> Customer:
        """Create a customer."""
        row = CustomerRow(
            display_name=display_name,
            name_folded=fold_name(display_name),
            custom_fields=custom_fields or {},
            tags=list(tags),
            owner_id=owner_id,
            team_id=team_id,
            created_at=now,
            updated_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return _customer(row)

    async def update(self, customer_id: int, now: datetime, **values: Any) -> None:
        """Change profile fields (display_name, custom_fields, tags, owner_id, team_id)."""
        if "display_name" in values:
            values["name_folded"] = fold_name(values["display_name"])
        if "tags" in values:
            values["tags"] = list(values["tags"])
        await self._session.execute(
            update(CustomerRow)
            .where(CustomerRow.id == customer_id)
            .values(updated_at=now, **values)
        )

    async def touch(self, customer_id: int, now: datetime) -> None:
        """Mark the customer as having had activity now (orders search results)."""
        await self._session.execute(
            update(CustomerRow).where(CustomerRow.id == customer_id).values(updated_at=now)
        )

    async def set_merged_into(self, customer_id: int, survivor_id: int | None) -> None:
        """Mark a customer as merged into another (or, with None, as standing alone again)."""
        await self._session.execute(
            update(CustomerRow)
            .where(CustomerRow.id == customer_id)
            .values(merged_into_id=survivor_id)
        )

    async def search(
        self,
        principal: Principal,
        *,
        name: str | None,
        identities: Iterable[IdentityRef],
        email_prefix: str | None,
        limit: int,
        document_text: str | None = None,
    ) -> list[Customer]:
        """Customers visible to the principal matching a name fragment, an identity, or text
        read off their documents."""
        matches: list[ColumnElement[bool]] = []
        refs = list(identities)
        if refs:
            matches.append(
                CustomerRow.id.in_(
                    select(IdentityRow.customer_id).where(
                        or_(
                            *(
                                (IdentityRow.kind == r.kind) & (IdentityRow.value == r.value)
                                for r in refs
                            )
                        )
                    )
                )
            )
        if email_prefix:
            matches.append(
                CustomerRow.id.in_(
                    select(IdentityRow.customer_id).where(
                        IdentityRow.kind == IdentityKind.EMAIL,
                        IdentityRow.value.like(_like_escape(email_prefix) + "%", escape="\\"),
                    )
                )
            )
        folded = fold_name(name)
        if folded:
            pattern = "%" + _like_escape(folded) + "%"
            matches.append(CustomerRow.name_folded.like(pattern, escape="\\"))
        if document_text and len(document_text) >= 3:
            # The text read off documents (faxes' OCR), kept as those events' bodies.
            pattern = "%" + _like_escape(document_text) + "%"
            matches.append(
                CustomerRow.id.in_(
                    select(TimelineEventRow.customer_id).where(
                        TimelineEventRow.channel == Channel.FAX.value,
                        TimelineEventRow.body.ilike(pattern, escape="\\"),
                    )
                )
            )
        if not matches:
            return []
        rows = await self._session.scalars(
            select(CustomerRow)
            .where(CustomerRow.merged_into_id.is_(None), visible_to(principal), or_(*matches))
            .order_by(CustomerRow.updated_at.desc(), CustomerRow.id.desc())
            .limit(limit)
        )
        return [_customer(row) for row in rows]

    # -- identities ------------------------------------------------------------------------

    async def identities_of(self, customer_ids: Sequence[int]) -> list[Identity]:
        """The identities of these customers, oldest first."""
        if not customer_ids:
            return []
        rows = await self._session.scalars(
            select(IdentityRow)
            .where(IdentityRow.customer_id.in_(customer_ids))
            .order_by(IdentityRow.id)
        )
        return [_identity(row) for row in rows]

    async def holders(self, ref: IdentityRef) -> list[Identity]:
        """Every stored identity with this value, verified or not."""
        rows = await self._session.scalars(
            select(IdentityRow)
            .where(IdentityRow.kind == ref.kind, IdentityRow.value == ref.value)
            .order_by(IdentityRow.id)
        )
        return [_identity(row) for row in rows]

    async def verified_owner(self, ref: IdentityRef) -> int | None:
        """The customer holding this identity as verified, or None."""
        return await self._session.scalar(
            select(IdentityRow.customer_id).where(
                IdentityRow.kind == ref.kind,
                IdentityRow.value == ref.value,
                IdentityRow.verified.is_(True),
            )
        )

    async def add_identity(
        self, customer_id: int, ref: IdentityRef, *, verified: bool, now: datetime
    ) -> Identity:
        """Attach an identity to a customer."""
        row = IdentityRow(
            customer_id=customer_id,
            kind=ref.kind.value,
            value=ref.value,
            verified=verified,
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return _identity(row)

    async def set_opt_out(self, ref: IdentityRef, at: datetime | None) -> None:
        """Record that a number withdrew (at) or gave back (None) consent to SMS."""
        await self._session.execute(
            update(IdentityRow)
            .where(IdentityRow.kind == ref.kind, IdentityRow.value == ref.value)
            .values(opted_out_at=at)
        )

    async def is_opted_out(self, ref: IdentityRef) -> bool:
        """Whether the number has texted STOP (and not START since)."""
        found = await self._session.scalar(
            select(IdentityRow.id).where(
                IdentityRow.kind == ref.kind,
                IdentityRow.value == ref.value,
                IdentityRow.opted_out_at.is_not(None),
            )
        )
        return found is not None

    async def mark_verified(self, identity_id: int) -> None:
        """Record that an identity has been proven to belong to its customer."""
        await self._session.execute(
            update(IdentityRow).where(IdentityRow.id == identity_id).values(verified=True)
        )

    # -- notes -----------------------------------------------------------------------------

    async def add_note(
        self,
        customer_id: int,
        *,
        body: str,
        author_id: int | None,
        interaction_id: int | None,
        now: datetime,
    ) -> Note:
        """Write a note on a customer."""
        row = NoteRow(
            customer_id=customer_id,
            interaction_id=interaction_id,
            author_id=author_id,
            body=body,
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return Note(row.id, customer_id, interaction_id, author_id, body, now)

    async def notes_of(self, customer_id: int, *, limit: int) -> list[Note]:
        """A customer's notes, newest first."""
        rows = await self._session.scalars(
            select(NoteRow)
            .where(NoteRow.customer_id == customer_id)
            .order_by(NoteRow.created_at.desc(), NoteRow.id.desc())
            .limit(limit)
        )
        return [
            Note(r.id, r.customer_id, r.interaction_id, r.author_id, r.body, r.created_at)
            for r in rows
        ]

    # -- merge suggestions -----------------------------------------------------------------

    async def suggest_merge(
        self, first: int, second: int, *, reason: str, now: datetime
    ) -> MergeSuggestion | None:
        """Suggest two customers are one; None when the pair already has an open suggestion."""
        a, b = sorted((first, second))
        existing = await self._session.scalar(
            select(MergeSuggestionRow.id).where(
                MergeSuggestionRow.customer_a_id == a,
                MergeSuggestionRow.customer_b_id == b,
                MergeSuggestionRow.status == "open",
            )
        )
        if existing is not None:
            return None
        row = MergeSuggestionRow(
            customer_a_id=a, customer_b_id=b, reason=reason, status="open", created_at=now
        )
        self._session.add(row)
        await self._session.flush()
        return _suggestion(row)

    async def profiles(
        self, customer_ids: Iterable[int], *, visible_to_principal: Principal | None = None
    ) -> dict[int, Profile]:
        """Customers with their identities and open interactions, in one statement.

        A customer has a handful of each, so one outer join of the three (a row per identity
        and open interaction) costs less than three round trips. With a principal, only the
        customers they may see.
        """
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        params: dict[str, Any] = {"ids": ids}
        shape = None
        if visible_to_principal is not None:
            shape = _visibility_shape(visible_to_principal)
            params |= {
                "vis_teams": sorted(visible_to_principal.team_ids),
                "vis_user": visible_to_principal.user_id,
            }
        found: dict[int, tuple[Customer, dict[int, Identity], dict[int, Interaction]]] = {}
        connection = await self._session.connection()  # Core: none of the ORM's machinery
        query = _PROFILES[(connection.dialect.name, shape)]
        for row in await connection.execute(query, params):
            entry = found.get(row.id)
            if entry is None:
                entry = found[row.id] = (_customer(row), {}, {})
            if row.i_id is not None and row.i_id not in entry[1]:
                entry[1][row.i_id] = _identity(_Prefixed(row, "i_"))
            if row.w_id is not None and row.w_id not in entry[2]:
                entry[2][row.w_id] = interaction_from_row(_Prefixed(row, "w_"))
        return {
            customer_id: Profile(customer, tuple(identities.values()), tuple(work.values()))
            for customer_id, (customer, identities, work) in found.items()
        }

    async def open_suggestions_of(
        self, customer_ids: Iterable[int]
    ) -> dict[int, list[MergeSuggestion]]:
        """Open merge suggestions involving each of these customers, in one query."""
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        connection = await self._session.connection()  # Core: none of the ORM's machinery
        rows = await connection.execute(_OPEN_SUGGESTIONS, {"ids": ids})
        wanted = set(ids)
        found: dict[int, list[MergeSuggestion]] = {}
        for row in rows:
            suggestion = _suggestion(row)
            for customer_id in {row.customer_a_id, row.customer_b_id} & wanted:
                found.setdefault(customer_id, []).append(suggestion)
        return found

    async def open_suggestions(self, customer_id: int) -> list[MergeSuggestion]:
        """Open merge suggestions that involve the customer."""
        return (await self.open_suggestions_of([customer_id])).get(customer_id, [])

    async def resolve_suggestions(
        self, first: int, second: int, *, status: str, by: int | None, now: datetime
    ) -> None:
        """Close the open suggestions for a pair as accepted or dismissed."""
        a, b = sorted((first, second))
        await self._session.execute(
            update(MergeSuggestionRow)
            .where(
                MergeSuggestionRow.customer_a_id == a,
                MergeSuggestionRow.customer_b_id == b,
                MergeSuggestionRow.status == "open",
            )
            .values(status=status, resolved_at=now, resolved_by=by)
        )

    async def suggestion(self, suggestion_id: int) -> MergeSuggestion | None:
        """One merge suggestion, or None."""
        row = await self._session.get(MergeSuggestionRow, suggestion_id)
        return None if row is None else _suggestion(row)

    # -- merges ----------------------------------------------------------------------------

    async def owned_ids(self, customer_id: int) -> dict[str, list[int]]:
        """The ids of every movable row a customer owns, by kind."""
        owned: dict[str, list[int]] = {}
        for name, table in MOVABLE.items():
            ids = await self._session.scalars(
                select(table.id).where(table.customer_id == customer_id).order_by(table.id)
            )
            owned[name] = list(ids)
        return owned

    async def reassign(
        self, moved: dict[str, list[int]], *, from_customer: int, to_customer: int
    ) -> None:
        """Move the listed rows (those still on from_customer) to another customer."""
        for name, ids in moved.items():
            table = MOVABLE[name]
            for start in range(0, len(ids), 500):  # keep under every driver's parameter limit
                await self._session.execute(
                    update(table)
                    .where(
                        table.id.in_(ids[start : start + 500]),
                        table.customer_id == from_customer,
                    )
                    .values(customer_id=to_customer)
                )

    async def add_merge(
        self,
        *,
        survivor_id: int,
        merged_id: int,
        moved: dict[str, Any],
        by: int | None,
        now: datetime,
    ) -> Merge:
        """Record a merge and what it moved."""
        row = MergeRow(
            survivor_id=survivor_id,
            merged_id=merged_id,
            moved=moved,
            performed_by=by,
            performed_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return _merge(row)

    async def merge(self, merge_id: int) -> Merge | None:
        """One merge record, or None."""
        row = await self._session.get(MergeRow, merge_id)
        return None if row is None else _merge(row)

    async def latest_merge_of(self, customer_id: int) -> Merge | None:
        """The newest merge not undone in which the customer was absorbed, or None."""
        row = await self._session.scalar(
            select(MergeRow)
            .where(MergeRow.merged_id == customer_id, MergeRow.undone_at.is_(None))
            .order_by(MergeRow.id.desc())
            .limit(1)
        )
        return None if row is None else _merge(row)

    async def mark_merge_undone(self, merge_id: int, *, by: int | None, now: datetime) -> None:
        """Record that a merge was undone."""
        await self._session.execute(
            update(MergeRow).where(MergeRow.id == merge_id).values(undone_at=now, undone_by=by)
        )
