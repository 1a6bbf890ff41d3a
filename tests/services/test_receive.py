"""The core path, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.crm_store.tables import CustomerRow, IdentityRow, InteractionRow, TimelineEventRow
from hub.crm_store.unit_of_work import Store
from hub.domain.events import InteractionReceived, MergeSuggested
from hub.domain.identity import IdentityClaim, IdentityKind, IdentityRef, normalize_identity
from hub.domain.interaction import Channel, InteractionState
from hub.domain.messages import InboundMessage
from hub.errors import ValidationError
from hub.services.receive import receive
from tests.conftest import FrozenClock

PHONE = IdentityRef(IdentityKind.PHONE, "+14155550100")
EMAIL = IdentityRef(IdentityKind.EMAIL, "grace@example.com")


def sms(body: str, clock: FrozenClock, ref: str | None = None, **kw: Any) -> InboundMessage:
    return InboundMessage(
        channel=kw.pop("channel", Channel.SMS),
        sender=kw.pop("sender", PHONE),
        received_at=clock(),
        body=body,
        provider=kw.pop("provider", "twilio"),
        provider_ref=ref,
        **kw,
    )


async def count(store: Store, table: Any) -> int:
    async with store.unit_of_work() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_first_contact_creates_the_customer_the_interaction_and_the_event(
    store: Store, clock: FrozenClock
) -> None:
    received = await receive(
        store, sms("hello", clock, "SM1", name="Grace"), default_team="support", now=clock()
    )
    assert received.created_customer
    assert received.opened_interaction
    assert not received.duplicate
    async with store.unit_of_work() as uow:
        customer = await uow.customers.get(received.customer_id)
        identities = await uow.customers.identities_of([received.customer_id])
        events = await uow.timeline.page(received.customer_id, limit=10)
        interaction = await uow.interactions.get(received.interaction_id or 0)
    assert customer is not None
    assert customer.display_name == "Grace"
    assert [(i.kind, i.value, i.verified) for i in identities] == [
        (IdentityKind.PHONE, "+14155550100", True)
    ]
    assert [(e.body, e.channel, e.provider_ref) for e in events] == [("hello", Channel.SMS, "SM1")]
    assert interaction is not None
    assert interaction.state is InteractionState.NEW


async def test_the_same_number_in_another_format_is_the_same_customer(
    store: Store, clock: FrozenClock
) -> None:
    first = await receive(store, sms("one", clock, "SM1"), default_team="support", now=clock())
    other_format = normalize_identity("phone", "(415) 555-0100", "US")
    clock.advance(60)
    second = await receive(
        store, sms("two", clock, "SM2", sender=other_format), default_team="support", now=clock()
    )
    assert second.customer_id == first.customer_id
    assert second.interaction_id == first.interaction_id
    assert not second.opened_interaction
    assert await count(store, CustomerRow) == 1


async def test_a_provider_retry_is_stored_once(store: Store, clock: FrozenClock) -> None:
    first = await receive(store, sms("hi", clock, "SM1"), default_team="support", now=clock())
    retry = await receive(store, sms("hi", clock, "SM1"), default_team="support", now=clock())
    assert retry.duplicate
    assert retry.event_id == first.event_id
    assert await count(store, TimelineEventRow) == 1


async def test_provider_refs_are_unique_per_provider_only(store: Store, clock: FrozenClock) -> None:
    await receive(store, sms("a", clock, "42"), default_team="support", now=clock())
    other = await receive(
        store, sms("b", clock, "42", provider="telnyx"), default_team="support", now=clock()
    )
    assert not other.duplicate
    assert await count(store, TimelineEventRow) == 2


async def test_concurrent_retries_and_first_contacts_never_duplicate(
    store: Store, clock: FrozenClock
) -> None:
    results = await asyncio.gather(
        *(
            receive(store, sms("burst", clock, "SM-same"), default_team="support", now=clock())
            for _ in range(6)
        )
    )
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.customer_id for r in results}) == 1
    assert await count(store, TimelineEventRow) == 1
    assert await count(store, CustomerRow) == 1
    assert await count(store, IdentityRow) == 1


async def test_events_are_published_only_after_commit(store: Store, clock: FrozenClock) -> None:
    seen: list[tuple[InteractionReceived, int]] = []

    async def handler(event: InteractionReceived) -> None:
        # A separate unit of work sees the event: the data was committed before publishing.
        async with store.unit_of_work() as uow:
            stored = await uow.timeline.page(event.customer_id, limit=5)
        seen.append((event, len(stored)))

    store.bus.subscribe(InteractionReceived, handler)
    received = await receive(store, sms("hi", clock, "SM1"), default_team="support", now=clock())
    await receive(store, sms("hi", clock, "SM1"), default_team="support", now=clock())  # retry
    assert len(seen) == 1
    event, stored = seen[0]
    assert stored == 1
    assert event.event_id == received.event_id
    assert event.opened


async def test_a_closed_interaction_is_not_continued(store: Store, clock: FrozenClock) -> None:
    first = await receive(store, sms("a", clock, "SM1"), default_team="support", now=clock())
    async with store.unit_of_work() as uow:
        interaction = await uow.interactions.get(first.interaction_id or 0)
        assert interaction is not None
        previous = interaction.move_to(InteractionState.CLOSED, clock())
        assert await uow.interactions.save_state(interaction, previous)
        await uow.commit()
    clock.advance(3600)
    second = await receive(store, sms("b", clock, "SM2"), default_team="support", now=clock())
    assert second.opened_interaction
    assert second.interaction_id != first.interaction_id


async def test_each_channel_has_its_own_interaction_but_one_timeline(
    store: Store, clock: FrozenClock
) -> None:
    sms_in = await receive(
        store,
        sms("sms", clock, "SM1", claims=(IdentityClaim(EMAIL, True),)),
        default_team="support",
        now=clock(),
    )
    clock.advance(10)
    email_in = await receive(
        store,
        sms(
            "mail",
            clock,
            "<m1@example.com>",
            channel=Channel.EMAIL,
            sender=EMAIL,
            provider="imap",
            subject="Broken mug",
        ),
        default_team="support",
        now=clock(),
    )
    assert email_in.customer_id == sms_in.customer_id
    assert email_in.interaction_id != sms_in.interaction_id
    async with store.unit_of_work() as uow:
        events = await uow.timeline.page(sms_in.customer_id, limit=10)
    assert [e.channel for e in events] == [Channel.EMAIL, Channel.SMS]


async def test_an_unverified_claim_never_merges_it_suggests(
    store: Store, clock: FrozenClock
) -> None:
    suggestions: list[MergeSuggested] = []

    async def collect(event: MergeSuggested) -> None:
        suggestions.append(event)

    store.bus.subscribe(MergeSuggested, collect)
    owner = await receive(
        store,
        sms("mail", clock, "<m1@x>", channel=Channel.EMAIL, sender=EMAIL, provider="imap"),
        default_team="support",
        now=clock(),
    )
    visitor = IdentityRef(IdentityKind.CHAT_VISITOR, "visitor-123")
    chat = await receive(
        store,
        sms(
            "I am grace",
            clock,
            None,
            channel=Channel.WEBCHAT,
            sender=visitor,
            claims=(IdentityClaim(EMAIL, False),),
        ),
        default_team="support",
        now=clock(),
    )
    assert chat.customer_id != owner.customer_id
    assert chat.created_customer
    assert [(s.customer_a_id, s.customer_b_id) for s in suggestions] == [
        (owner.customer_id, chat.customer_id)
    ]
    async with store.unit_of_work() as uow:
        # The real email still resolves to its verified owner.
        assert await uow.customers.verified_owner(EMAIL) == owner.customer_id
        visitor_ids = await uow.customers.identities_of([chat.customer_id])
    assert {(i.kind, i.verified) for i in visitor_ids} == {
        (IdentityKind.CHAT_VISITOR, True),
        (IdentityKind.EMAIL, False),
    }


async def test_a_verified_claim_resolves_the_customer(store: Store, clock: FrozenClock) -> None:
    owner = await receive(store, sms("a", clock, "SM1"), default_team="support", now=clock())
    visitor = IdentityRef(IdentityKind.CHAT_VISITOR, "v-9")
    chat = await receive(
        store,
        sms(
            "b",
            clock,
            None,
            channel=Channel.WEBCHAT,
            sender=visitor,
            claims=(IdentityClaim(PHONE, True),),
        ),
        default_team="support",
        now=clock(),
    )
    assert chat.customer_id == owner.customer_id
    assert not chat.created_customer


async def test_an_unknown_queue_is_refused_and_nothing_is_written(
    store: Store, clock: FrozenClock
) -> None:
    with pytest.raises(ValidationError, match="no queue named 'nope'"):
        await receive(
            store, sms("x", clock, "SM1", queue="nope"), default_team="support", now=clock()
        )
    assert await count(store, CustomerRow) == 0
    assert await count(store, TimelineEventRow) == 0


async def test_a_named_queue_gives_the_customer_its_team(store: Store, clock: FrozenClock) -> None:
    async with store.unit_of_work() as uow:
        sales = await uow.accounts.ensure_team("sales", clock())
        queue = await uow.accounts.ensure_queue("sales", sales.id, clock())
        await uow.commit()
    received = await receive(
        store, sms("x", clock, "SM1", queue="sales"), default_team="support", now=clock()
    )
    async with store.unit_of_work() as uow:
        customer = await uow.customers.get(received.customer_id)
        interaction = await uow.interactions.get(received.interaction_id or 0)
    assert customer is not None
    assert customer.team_id == sales.id
    assert interaction is not None
    assert interaction.queue_id == queue.id


async def test_times_come_back_as_aware_utc(store: Store, clock: FrozenClock) -> None:
    received = await receive(store, sms("x", clock, "SM1"), default_team="support", now=clock())
    async with store.unit_of_work() as uow:
        (event,) = await uow.timeline.page(received.customer_id, limit=1)
    assert event.occurred_at == clock()
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert await count(store, InteractionRow) == 1
