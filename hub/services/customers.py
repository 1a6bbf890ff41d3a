"""Customer use cases: the unified record, search, profile, identities, notes, merge, un-merge."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.crm_store.customers import MOVABLE, Merge, Note
from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.customer import Customer, CustomerRecord, normalize_tags
from hub.domain.events import CustomerCreated, CustomersMerged, CustomersUnmerged, NoteAdded
from hub.domain.identity import (
    IdentityClaim,
    IdentityKind,
    IdentityRef,
    normalize_email,
    try_normalize_phone,
)
from hub.domain.interaction import Interaction
from hub.domain.timeline import Direction, EventKind, TimelineEvent
from hub.domain.users import Permission, Principal
from hub.errors import Conflict, InvalidIdentity, NotFound, ValidationError
from hub.services.identities import Attached, attach_identity

SEARCH_LIMIT = 50


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A customer found by search, with their identities."""

    customer: Customer
    identities: tuple[tuple[IdentityKind, str, bool], ...]


async def visible_customer(
    uow: UnitOfWork, principal: Principal, customer_id: int, *, lock: bool = False
) -> Customer:
    """The customer if the principal may see it; NotFound otherwise (no existence leak)."""
    if lock:
        customer = await uow.customers.get(customer_id, lock=True)
        if customer is not None and not await uow.customers.is_visible(customer_id, principal):
            customer = None
    else:
        customer = await uow.customers.get_visible(customer_id, principal)
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


async def lock_pair(uow: UnitOfWork, principal: Principal, first: int, second: int) -> None:
    """Lock two visible customers in id order, so concurrent merges cannot deadlock."""
    for customer_id in sorted((first, second)):
        await visible_customer(uow, principal, customer_id, lock=True)


async def unified_record(
    store: Store, principal: Principal, customer_id: int, *, events: int
) -> CustomerRecord:
    """Profile, identities, open interactions and latest events across channels, in one go
    (three statements: the customer with its identities and open work, the newest events,
    the open merge suggestions)."""
    principal.require(Permission.CUSTOMERS_READ)
    async with store.reading() as uow:
        records = await _records(uow, [customer_id], principal, events=events, visible_only=True)
    if customer_id not in records:
        raise NotFound(f"no customer {customer_id}")
    return records[customer_id]


@dataclass(frozen=True, slots=True)
class OfferedWork:
    """What an offer's screen pop shows: who it rings at, the work, its customer's record."""

    agent: Principal
    interaction: Interaction
    record: CustomerRecord


async def offered_work(
    store: Store, offers: Sequence[tuple[int, int, int]], *, events: int
) -> dict[tuple[int, int], OfferedWork]:
    """For offers (agent id, interaction id, customer id): the agent, the work and the
    customer's unified record, read together in four statements however many there are.

    The agent offered work may see its customer, whichever team the customer belongs to:
    the screen pop is what lets them decide. Keyed by (agent id, interaction id); offers
    whose agent, customer or open interaction is gone are left out.
    """
    if not offers:
        return {}
    async with store.reading() as uow:
        users = await uow.accounts.users_by_id(agent for agent, _, _ in offers)
        agents = {user_id: user.principal() for user_id, user in users.items() if user.active}
        if not agents:
            return {}
        customer_ids = [customer for agent, _, customer in offers if agent in agents]
        reader = max(agents.values(), key=lambda a: a.can(Permission.TIMELINE_READ))
        records = await _records(uow, customer_ids, reader, events=events, visible_only=False)
    found: dict[tuple[int, int], OfferedWork] = {}
    for agent_id, interaction_id, customer_id in offers:
        agent = agents.get(agent_id)
        record = records.get(customer_id)
        if agent is None or record is None or not agent.can(Permission.CUSTOMERS_READ):
            continue
        work = next((i for i in record.open_interactions if i.id == interaction_id), None)
        if work is None:
            continue
        if not agent.can(Permission.TIMELINE_READ):
            record = replace(record, latest_events=())
        found[(agent_id, interaction_id)] = OfferedWork(agent, work, record)
    return found


async def _records(
    uow: UnitOfWork,
    customer_ids: Sequence[int],
    principal: Principal,
    *,
    events: int,
    visible_only: bool,
) -> dict[int, CustomerRecord]:
    """Unified records of these customers (of those the principal may see, if visible_only)."""
    profiles = await uow.customers.profiles(
        customer_ids, visible_to_principal=principal if visible_only else None
    )
    if not profiles:
        return {}
    latest: dict[int, list[TimelineEvent]] = {}
    if principal.can(Permission.TIMELINE_READ):
        latest = await uow.timeline.newest_of(list(profiles), limit=events)
    suggestions = await uow.customers.open_suggestions_of(profiles)
    return {
        customer_id: CustomerRecord(
            profile.customer,
            profile.identities,
            profile.open_interactions,
            tuple(latest.get(customer_id, ())),
            tuple(suggestions.get(customer_id, ())),
        )
        for customer_id, profile in profiles.items()
    }


async def search_customers(
    store: Store, principal: Principal, query: str, *, default_region: str, limit: int
) -> list[SearchHit]:
    """Find customers by name fragment, phone in any format, email, external id, or fax text."""
    principal.require(Permission.CUSTOMERS_READ)
    text = query.strip()
    if not text:
        raise ValidationError("say what to search for: q=name, phone or email", field="q")
    refs: list[IdentityRef] = [IdentityRef(IdentityKind.EXTERNAL, text)]
    phone = try_normalize_phone(text, default_region)
    if phone is not None:
        refs += [IdentityRef(IdentityKind.PHONE, phone), IdentityRef(IdentityKind.FAX, phone)]
    email_prefix = None
    if "@" in text:
        try:
            refs.append(IdentityRef(IdentityKind.EMAIL, normalize_email(text)))
        except InvalidIdentity:
            email_prefix = text.casefold()  # "jane.doe@exa" while typing
    async with store.unit_of_work() as uow:
        customers = await uow.customers.search(
            principal,
            name=text,
            identities=refs,
            email_prefix=email_prefix,
            limit=limit,
            document_text=text,
        )
        identities = await uow.customers.identities_of([c.id for c in customers])
    by_customer: dict[int, list[tuple[IdentityKind, str, bool]]] = {}
    for identity in identities:
        by_customer.setdefault(identity.customer_id, []).append(
            (identity.kind, identity.value, identity.verified)
        )
    return [SearchHit(c, tuple(by_customer.get(c.id, ()))) for c in customers]


async def create_customer(
    store: Store,
    principal: Principal,
    *,
    display_name: str | None,
    claims: list[IdentityClaim],
    custom_fields: dict[str, Any],
    tags: list[str],
    team_id: int | None,
    now: datetime,
) -> tuple[Customer, list[Attached]]:
    """Create a customer by hand; identities held by others become merge suggestions."""
    principal.require(Permission.CUSTOMERS_WRITE)
    if team_id is None:
        team_id = min(principal.team_ids) if principal.team_ids else None
    elif not principal.sees_everything and team_id not in principal.team_ids:
        raise ValidationError("you can only create customers in your own teams", field="team_id")
    async with store.unit_of_work() as uow:
        customer = await uow.customers.create(
            display_name=display_name,
            team_id=team_id,
            custom_fields=custom_fields,
            tags=normalize_tags(tags),
            now=now,
        )
        attached = [
            await attach_identity(uow, customer.id, c.ref, verified=c.verified, now=now)
            for c in claims
        ]
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="customer.create",
            entity_type="customer",
            entity_id=customer.id,
            display_name=display_name,
        )
        uow.record(CustomerCreated(customer.id))
        await uow.commit()
    return customer, attached


async def update_customer(
    store: Store, principal: Principal, customer_id: int, changes: dict[str, Any], now: datetime
) -> Customer:
    """Change a customer's profile (name, custom fields, tags, owner, team)."""
    principal.require(Permission.CUSTOMERS_WRITE)
    if "tags" in changes:
        changes["tags"] = normalize_tags(changes["tags"])
    async with store.unit_of_work() as uow:
        customer = await visible_customer(uow, principal, customer_id, lock=True)
        if customer.merged_into_id is not None:
            raise Conflict(
                f"customer {customer_id} was merged into {customer.merged_into_id}; edit that one",
                merged_into=customer.merged_into_id,
            )
        team_id = changes.get("team_id")
        if (
            team_id is not None
            and not principal.sees_everything
            and (team_id not in principal.team_ids)
        ):
            raise ValidationError("you can only move customers to your own teams")
        owner_id = changes.get("owner_id")
        if owner_id is not None and await uow.accounts.user(owner_id) is None:
            raise ValidationError(f"there is no user {owner_id}", field="owner_id")
        await uow.customers.update(customer_id, now, **changes)
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="customer.update",
            entity_type="customer",
            entity_id=customer_id,
            changes={k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()},
        )
        await uow.commit()
        updated = await uow.customers.get(customer_id)
    assert updated is not None
    return updated


async def add_identity(
    store: Store,
    principal: Principal,
    customer_id: int,
    claim: IdentityClaim,
    now: datetime,
) -> Attached:
    """Add a phone, email or other identity to a customer, by hand."""
    principal.require(Permission.CUSTOMERS_WRITE)
    async with store.unit_of_work() as uow:
        customer = await visible_customer(uow, principal, customer_id)
        if customer.merged_into_id is not None:
            raise Conflict(f"customer {customer_id} was merged into {customer.merged_into_id}")
        attached = await attach_identity(
            uow, customer_id, claim.ref, verified=claim.verified, now=now
        )
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="identity.add",
            entity_type="customer",
            entity_id=customer_id,
            kind=claim.ref.kind.value,
            value=claim.ref.value,
            verified=claim.verified,
            refused=attached.refused,
            suggestions=attached.suggestions,
        )
        await uow.commit()
    return attached


async def timeline_page(
    store: Store,
    principal: Principal,
    customer_id: int,
    *,
    limit: int,
    before: tuple[datetime, int] | None,
) -> list[TimelineEvent]:
    """A page of the customer's timeline, newest first."""
    principal.require(Permission.TIMELINE_READ)
    async with store.unit_of_work() as uow:
        await visible_customer(uow, principal, customer_id)
        return await uow.timeline.page(customer_id, limit=limit, before=before)


async def add_note(
    store: Store,
    principal: Principal,
    customer_id: int,
    *,
    body: str,
    interaction_id: int | None,
    now: datetime,
) -> Note:
    """Write a note on a customer; it shows on the timeline too."""
    principal.require(Permission.NOTES_WRITE)
    async with store.unit_of_work() as uow:
        customer = await visible_customer(uow, principal, customer_id)
        if customer.merged_into_id is not None:
            raise Conflict(f"customer {customer_id} was merged into {customer.merged_into_id}")
        if interaction_id is not None:
            interaction = await uow.interactions.get(interaction_id)
            if interaction is None or interaction.customer_id != customer_id:
                raise ValidationError(
                    f"interaction {interaction_id} is not this customer's", field="interaction_id"
                )
        note = await uow.customers.add_note(
            customer_id,
            body=body,
            author_id=principal.user_id,
            interaction_id=interaction_id,
            now=now,
        )
        await uow.timeline.append(
            customer_id=customer_id,
            interaction_id=interaction_id,
            kind=EventKind.NOTE,
            direction=Direction.INTERNAL,
            occurred_at=now,
            body=body,
            author_id=principal.user_id,
            data={"note_id": note.id},
        )
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="note.add",
            entity_type="customer",
            entity_id=customer_id,
            note_id=note.id,
        )
        uow.record(NoteAdded(customer_id, note.id))
        await uow.commit()
    return note


async def list_notes(
    store: Store, principal: Principal, customer_id: int, *, limit: int
) -> list[Note]:
    """A customer's notes, newest first."""
    principal.require(Permission.TIMELINE_READ)
    async with store.unit_of_work() as uow:
        await visible_customer(uow, principal, customer_id)
        return await uow.customers.notes_of(customer_id, limit=limit)


async def merge_customers(
    store: Store, principal: Principal, survivor_id: int, merged_id: int, now: datetime
) -> Merge:
    """Merge merged_id into survivor_id: its identities, interactions, events and notes move."""
    principal.require(Permission.CUSTOMERS_MERGE)
    if survivor_id == merged_id:
        raise ValidationError("a customer cannot be merged with itself", field="merge_from")
    async with store.unit_of_work() as uow:
        await lock_pair(uow, principal, survivor_id, merged_id)
        survivor = await uow.customers.get(survivor_id)
        merged = await uow.customers.get(merged_id)
        assert survivor is not None
        assert merged is not None
        for customer in (survivor, merged):
            if customer.merged_into_id is not None:
                raise Conflict(
                    f"customer {customer.id} was already merged into {customer.merged_into_id}",
                    merged_into=customer.merged_into_id,
                )
        moved: dict[str, Any] = await uow.customers.owned_ids(merged_id)
        added_tags = [t for t in merged.tags if t not in survivor.tags]
        added_fields = {
            k: v for k, v in merged.custom_fields.items() if k not in survivor.custom_fields
        }
        took_name = not survivor.display_name and bool(merged.display_name)
        await uow.customers.reassign(moved, from_customer=merged_id, to_customer=survivor_id)
        profile: dict[str, Any] = {
            "tags": (*survivor.tags, *added_tags),
            "custom_fields": {**survivor.custom_fields, **added_fields},
        }
        if took_name:
            profile["display_name"] = merged.display_name
        await uow.customers.update(survivor_id, now, **profile)
        await uow.customers.set_merged_into(merged_id, survivor_id)
        record = await uow.customers.add_merge(
            survivor_id=survivor_id,
            merged_id=merged_id,
            moved={
                **moved,
                "added_tags": added_tags,
                "added_fields": added_fields,
                "took_name": merged.display_name if took_name else None,
            },
            by=principal.user_id,
            now=now,
        )
        await uow.customers.resolve_suggestions(
            survivor_id, merged_id, status="accepted", by=principal.user_id, now=now
        )
        await uow.timeline.append(
            customer_id=survivor_id,
            kind=EventKind.MERGE,
            direction=Direction.INTERNAL,
            occurred_at=now,
            author_id=principal.user_id,
            body=f"Merged customer {merged_id} ({merged.display_name or 'no name'}) into this one",
            data={"merge_id": record.id, "merged_id": merged_id},
        )
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="customer.merge",
            entity_type="customer",
            entity_id=survivor_id,
            merge_id=record.id,
            merged_id=merged_id,
            moved={k: len(v) for k, v in moved.items()},
        )
        uow.record(CustomersMerged(record.id, survivor_id, merged_id))
        await uow.commit()
    return record


async def unmerge_customers(
    store: Store, principal: Principal, merge_id: int, now: datetime
) -> Merge:
    """Undo a merge: what it moved goes back, and the absorbed customer stands alone again."""
    principal.require(Permission.CUSTOMERS_UNMERGE)
    async with store.unit_of_work() as uow:
        record = await uow.customers.merge(merge_id)
        if record is None:
            raise NotFound(f"no merge {merge_id}")
        await lock_pair(uow, principal, record.survivor_id, record.merged_id)
        if record.undone_at is not None:
            raise Conflict(f"merge {merge_id} was already undone")
        survivor = await uow.customers.get(record.survivor_id)
        assert survivor is not None
        if survivor.merged_into_id is not None:
            raise Conflict(
                f"customer {survivor.id} has since been merged into {survivor.merged_into_id};"
                " undo that merge first",
                blocking_customer=survivor.merged_into_id,
            )
        moved = {k: record.moved.get(k, []) for k in MOVABLE}
        await uow.customers.reassign(
            moved, from_customer=record.survivor_id, to_customer=record.merged_id
        )
        added_tags = set(record.moved.get("added_tags", []))
        added_fields: dict[str, Any] = record.moved.get("added_fields", {})
        profile: dict[str, Any] = {
            "tags": tuple(t for t in survivor.tags if t not in added_tags),
            "custom_fields": {
                k: v
                for k, v in survivor.custom_fields.items()
                if k not in added_fields or added_fields[k] != v
            },
        }
        took_name = record.moved.get("took_name")
        if took_name and survivor.display_name == took_name:
            profile["display_name"] = None
        await uow.customers.update(record.survivor_id, now, **profile)
        await uow.customers.set_merged_into(record.merged_id, None)
        await uow.customers.mark_merge_undone(merge_id, by=principal.user_id, now=now)
        for customer_id, other in (
            (record.survivor_id, record.merged_id),
            (record.merged_id, record.survivor_id),
        ):
            await uow.timeline.append(
                customer_id=customer_id,
                kind=EventKind.UNMERGE,
                direction=Direction.INTERNAL,
                occurred_at=now,
                author_id=principal.user_id,
                body=f"Undid merge {merge_id}: customers {record.survivor_id} and "
                f"{record.merged_id} are separate again",
                data={"merge_id": merge_id, "other_customer_id": other},
            )
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="customer.unmerge",
            entity_type="customer",
            entity_id=record.survivor_id,
            merge_id=merge_id,
            restored_id=record.merged_id,
        )
        uow.record(CustomersUnmerged(merge_id, record.survivor_id, record.merged_id))
        await uow.commit()
        undone = await uow.customers.merge(merge_id)
    assert undone is not None
    return undone


async def dismiss_suggestion(
    store: Store, principal: Principal, suggestion_id: int, now: datetime
) -> None:
    """Say two suggested customers are different people."""
    principal.require(Permission.CUSTOMERS_MERGE)
    async with store.unit_of_work() as uow:
        suggestion = await uow.customers.suggestion(suggestion_id)
        if suggestion is None:
            raise NotFound(f"no merge suggestion {suggestion_id}")
        await visible_customer(uow, principal, suggestion.customer_a_id)
        await visible_customer(uow, principal, suggestion.customer_b_id)
        if suggestion.status != "open":
            raise Conflict(f"merge suggestion {suggestion_id} is already {suggestion.status}")
        await uow.customers.resolve_suggestions(
            suggestion.customer_a_id,
            suggestion.customer_b_id,
            status="dismissed",
            by=principal.user_id,
            now=now,
        )
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="merge_suggestion.dismiss",
            entity_type="merge_suggestion",
            entity_id=suggestion_id,
        )
        await uow.commit()


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A kept attachment, ready to serve."""

    path: Path
    filename: str
    content_type: str


async def attachment_file(
    store: Store, principal: Principal, event_id: int, index: int, *, data_dir: str
) -> StoredFile:
    """The file behind an event's attachment, if the caller may see the customer."""
    principal.require(Permission.TIMELINE_READ)
    async with store.unit_of_work() as uow:
        event = await uow.timeline.event(event_id)
        if event is None:
            raise NotFound(f"no event {event_id}")
        await visible_customer(uow, principal, event.customer_id)
    if not 0 <= index < len(event.attachments):
        raise NotFound(f"event {event_id} has no attachment {index}")
    attachment = event.attachments[index]
    if attachment.path is None:
        reason = attachment.error or "it has not been fetched yet"
        raise NotFound(f"attachment {index} of event {event_id} is not kept: {reason}")
    path = await asyncio.to_thread(_kept_path, attachment.path, data_dir)
    if path is None:
        raise NotFound(f"attachment {index} of event {event_id} is missing from storage")
    return StoredFile(path, path.name, attachment.content_type)


def _kept_path(stored: str, data_dir: str) -> Path | None:
    """The file, if it is inside data_dir (a record never points the server elsewhere)."""
    path = Path(stored).resolve()
    inside = path.is_relative_to(Path(data_dir).resolve())
    return path if inside and path.is_file() else None
