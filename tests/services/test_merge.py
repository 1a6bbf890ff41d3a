"""Merging and un-merging customers, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from hub.crm_store.unit_of_work import Store
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.timeline import EventKind
from hub.domain.users import Principal, Role
from hub.errors import Conflict, Forbidden, NotFound, ValidationError
from hub.services import customers
from hub.services.receive import receive
from tests.conftest import FrozenClock


async def contact(
    store: Store,
    clock: FrozenClock,
    kind: IdentityKind,
    value: str,
    ref: str,
    name: str | None = None,
    channel: Channel = Channel.SMS,
) -> int:
    received = await receive(
        store,
        InboundMessage(
            channel=channel,
            sender=IdentityRef(kind, value),
            received_at=clock(),
            body=f"message {ref}",
            provider="test",
            provider_ref=ref,
            name=name,
        ),
        default_team="support",
        now=clock(),
    )
    clock.advance(1)
    return received.customer_id


async def admin(store: Store, clock: FrozenClock, role: Role = Role.ADMIN) -> Principal:
    async with store.unit_of_work() as uow:
        team = await uow.accounts.ensure_team("support", clock())
        user = await uow.accounts.add_user(
            username=f"u-{role}",
            display_name="U",
            role=role,
            password_hash=None,
            team_ids=frozenset({team.id}),
            now=clock(),
        )
        await uow.commit()
    return user.principal()


async def snapshot(store: Store, customer_id: int) -> dict[str, object]:
    async with store.unit_of_work() as uow:
        customer = await uow.customers.get(customer_id)
        owned = await uow.customers.owned_ids(customer_id)
    assert customer is not None
    return {
        "tags": customer.tags,
        "fields": customer.custom_fields,
        "name": customer.display_name,
        "merged_into": customer.merged_into_id,
        "identities": owned["identities"],
        "interactions": owned["interactions"],
        "notes": owned["notes"],
        "events": owned["events"],
    }


async def test_merge_moves_everything_and_unmerge_puts_it_back(
    store: Store, clock: FrozenClock
) -> None:
    me = await admin(store, clock)
    phone_customer = await contact(store, clock, IdentityKind.PHONE, "+14155550100", "s1")
    email_customer = await contact(
        store, clock, IdentityKind.EMAIL, "g@example.com", "e1", name="Grace", channel=Channel.EMAIL
    )
    await customers.update_customer(store, me, phone_customer, {"tags": ["vip"]}, clock())
    await customers.update_customer(
        store,
        me,
        email_customer,
        {"tags": ["vip", "churn-risk"], "custom_fields": {"plan": "pro"}},
        clock(),
    )
    await customers.add_note(
        store, me, email_customer, body="prefers email", interaction_id=None, now=clock()
    )
    before_survivor = await snapshot(store, phone_customer)
    before_merged = await snapshot(store, email_customer)

    merge = await customers.merge_customers(store, me, phone_customer, email_customer, clock())
    record = await customers.unified_record(store, me, phone_customer, events=50)
    assert {(i.kind, i.value) for i in record.identities} == {
        (IdentityKind.PHONE, "+14155550100"),
        (IdentityKind.EMAIL, "g@example.com"),
    }
    assert len(record.open_interactions) == 2
    assert record.customer.tags == ("vip", "churn-risk")
    assert record.customer.custom_fields == {"plan": "pro"}
    assert record.customer.display_name == "Grace"
    assert record.latest_events[0].kind is EventKind.MERGE
    merged = await snapshot(store, email_customer)
    assert merged["merged_into"] == phone_customer
    assert merged["identities"] == merged["interactions"] == merged["notes"] == []
    # The email now reaches the survivor.
    assert (
        await contact(
            store, clock, IdentityKind.EMAIL, "g@example.com", "e2", channel=Channel.EMAIL
        )
        == phone_customer
    )

    clock.advance(60)
    undone = await customers.unmerge_customers(store, me, merge.id, clock())
    assert undone.undone_at == clock()
    after_survivor = await snapshot(store, phone_customer)
    after_merged = await snapshot(store, email_customer)
    assert after_merged["merged_into"] is None
    for key in ("identities", "interactions", "notes", "tags", "fields", "name"):
        assert after_survivor[key] == before_survivor[key], key
        assert after_merged[key] == before_merged[key], key
    # Events that happened while merged stay where they happened; the moved ones go back.
    assert set(before_merged["events"]) <= set(after_merged["events"])  # type: ignore[arg-type]
    kinds = [
        e.kind
        for e in (
            await customers.unified_record(store, me, email_customer, events=50)
        ).latest_events
    ]
    assert kinds[0] is EventKind.UNMERGE
    async with store.unit_of_work() as uow:
        actions = [e.action for e in await uow.audit.latest(limit=50)]
    assert "customer.merge" in actions
    assert "customer.unmerge" in actions


async def test_merging_a_customer_with_itself_is_refused(store: Store, clock: FrozenClock) -> None:
    me = await admin(store, clock)
    one = await contact(store, clock, IdentityKind.PHONE, "+14155550100", "s1")
    with pytest.raises(ValidationError, match="itself"):
        await customers.merge_customers(store, me, one, one, clock())


async def test_merge_rules(store: Store, clock: FrozenClock) -> None:
    me = await admin(store, clock)
    a = await contact(store, clock, IdentityKind.PHONE, "+14155550100", "s1")
    b = await contact(store, clock, IdentityKind.PHONE, "+14155550101", "s2")
    c = await contact(store, clock, IdentityKind.PHONE, "+14155550102", "s3")
    first = await customers.merge_customers(store, me, a, b, clock())
    with pytest.raises(Conflict, match="already merged"):
        await customers.merge_customers(store, me, c, b, clock())
    with pytest.raises(Conflict, match="already merged"):
        await customers.merge_customers(store, me, b, c, clock())
    second = await customers.merge_customers(store, me, c, a, clock())
    with pytest.raises(Conflict, match="undo that merge first"):
        await customers.unmerge_customers(store, me, first.id, clock())
    await customers.unmerge_customers(store, me, second.id, clock())
    await customers.unmerge_customers(store, me, first.id, clock())
    with pytest.raises(Conflict, match="already undone"):
        await customers.unmerge_customers(store, me, first.id, clock())
    with pytest.raises(NotFound):
        await customers.unmerge_customers(store, me, 999, clock())
    with pytest.raises(NotFound):
        await customers.merge_customers(store, me, a, 999, clock())


async def test_agents_may_merge_but_only_supervisors_undo(store: Store, clock: FrozenClock) -> None:
    agent = await admin(store, clock, Role.AGENT)
    a = await contact(store, clock, IdentityKind.PHONE, "+14155550100", "s1")
    b = await contact(store, clock, IdentityKind.PHONE, "+14155550101", "s2")
    merge = await customers.merge_customers(store, agent, a, b, clock())
    with pytest.raises(Forbidden):
        await customers.unmerge_customers(store, agent, merge.id, clock())


async def test_accepting_a_suggestion_by_merging_closes_it(
    store: Store, clock: FrozenClock
) -> None:
    me = await admin(store, clock)
    a = await contact(
        store, clock, IdentityKind.EMAIL, "g@example.com", "e1", channel=Channel.EMAIL
    )
    b = await contact(store, clock, IdentityKind.CHAT_VISITOR, "v1", "c1", channel=Channel.WEBCHAT)
    from hub.domain.identity import IdentityClaim

    attached = await customers.add_identity(
        store,
        me,
        b,
        IdentityClaim(IdentityRef(IdentityKind.EMAIL, "g@example.com"), True),
        clock(),
    )
    assert attached.refused
    assert len(attached.suggestions) == 1
    record = await customers.unified_record(store, me, a, events=5)
    assert [s.id for s in record.merge_suggestions] == attached.suggestions
    await customers.merge_customers(store, me, a, b, clock())
    record = await customers.unified_record(store, me, a, events=5)
    assert record.merge_suggestions == ()
