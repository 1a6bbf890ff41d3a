"""The core path, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.crm_store.tables import CustomerRow, IdentityRow, InteractionRow, TimelineEventRow
from hub.crm_store.unit_of_work import Store
from hub.domain.events import (
    AttachmentsOwed,
    CustomerCreated,
    InteractionReceived,
    MergeSuggested,
    TimelineEventAdded,
)
from hub.domain.identity import IdentityClaim, IdentityKind, IdentityRef, normalize_identity
from hub.domain.interaction import Channel, InteractionState
from hub.domain.messages import InboundMessage
from hub.domain.timeline import Attachment
from hub.errors import HubError, ValidationError
from hub.services import receive as core
from tests.conftest import FrozenClock, statements_run

Receive = Callable[..., Awaitable[core.Received]]

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


@pytest.fixture(params=["one", "batched"])
async def receive(request: pytest.FixtureRequest) -> AsyncIterator[Receive]:
    """The core path one message at a time, and through the group commit (``Intake``)."""
    if request.param == "one":
        yield core.receive
        return
    intakes: dict[int, core.Intake] = {}

    async def batched(
        store: Store, message: InboundMessage, *, default_team: str, now: Any
    ) -> core.Received:
        intake = intakes.setdefault(
            id(store), core.Intake(store, default_team=default_team, clock=lambda: now)
        )
        intake._clock = lambda: now
        return await intake.receive(message)

    yield batched
    for intake in intakes.values():
        await intake.stop()


async def count(store: Store, table: Any) -> int:
    async with store.unit_of_work() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_first_contact_creates_the_customer_the_interaction_and_the_event(
    receive: Receive, store: Store, clock: FrozenClock
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
    receive: Receive, store: Store, clock: FrozenClock
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


async def test_a_provider_retry_is_stored_once(
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
    first = await receive(store, sms("hi", clock, "SM1"), default_team="support", now=clock())
    retry = await receive(store, sms("hi", clock, "SM1"), default_team="support", now=clock())
    assert retry.duplicate
    assert retry.event_id == first.event_id
    assert await count(store, TimelineEventRow) == 1


async def test_provider_refs_are_unique_per_provider_only(
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
    await receive(store, sms("a", clock, "42"), default_team="support", now=clock())
    other = await receive(
        store, sms("b", clock, "42", provider="telnyx"), default_team="support", now=clock()
    )
    assert not other.duplicate
    assert await count(store, TimelineEventRow) == 2


async def test_concurrent_retries_and_first_contacts_never_duplicate(
    receive: Receive, store: Store, clock: FrozenClock
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


async def test_events_are_published_only_after_commit(
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
    seen: list[tuple[InteractionReceived, int]] = []

    async def handler(event: InteractionReceived) -> None:
        # A separate unit of work sees the event: the data was committed before publishing.
        async with store.unit_of_work() as uow:
            stored = await uow.timeline.page(event.customer_id, limit=5)
        seen.append((event, len(stored)))

    store.bus.subscribe(InteractionReceived, handler)
    received = await receive(store, sms("hi", clock, "SM1"), default_team="support", now=clock())
    await receive(store, sms("hi", clock, "SM1"), default_team="support", now=clock())  # retry
    await store.outbox.settle()
    assert len(seen) == 1
    event, stored = seen[0]
    assert stored == 1
    assert event.event_id == received.event_id
    assert event.opened


async def test_a_closed_interaction_is_not_continued(
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
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
    receive: Receive, store: Store, clock: FrozenClock
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
    receive: Receive, store: Store, clock: FrozenClock
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
    await store.outbox.settle()
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


async def test_a_verified_claim_resolves_the_customer(
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
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
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
    with pytest.raises(ValidationError, match="no queue named 'nope'"):
        await receive(
            store, sms("x", clock, "SM1", queue="nope"), default_team="support", now=clock()
        )
    assert await count(store, CustomerRow) == 0
    assert await count(store, TimelineEventRow) == 0


async def test_a_named_queue_gives_the_customer_its_team(
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
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


async def test_times_come_back_as_aware_utc(
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
    received = await receive(store, sms("x", clock, "SM1"), default_team="support", now=clock())
    async with store.unit_of_work() as uow:
        (event,) = await uow.timeline.page(received.customer_id, limit=1)
    assert event.occurred_at == clock()
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert await count(store, InteractionRow) == 1


async def test_a_batch_reads_what_it_needs_in_one_statement_before_it_writes(
    store: Store, clock: FrozenClock
) -> None:
    """Retries, queues, holders, their open work and the team: one read, whatever the batch
    (on PostgreSQL, two round trips in all: the read, and the writes as one statement)."""
    intake = core.Intake(store, default_team="support", clock=clock, max_wait=0.05)
    known = await intake.receive(sms("before", clock, "SM0"))
    clock.advance(5)
    with statements_run(store) as statements:
        burst = [
            sms("known again", clock, "SM1"),
            sms("a retry", clock, "SM0"),
            *(
                sms(f"new {n}", clock, f"SMn{n}", sender=IdentityRef(IdentityKind.PHONE, f"+1{n}"))
                for n in range(4415550000, 4415550005)
            ),
        ]
        outcomes = await asyncio.gather(*(intake.receive(m) for m in burst))
        await intake.stop()
    assert intake.batches == 2
    if store.dialect == "postgresql":  # the snapshot, then every write in one statement
        assert len(statements) == 2, statements
        assert "nextval" in statements[0]
        assert "INSERT INTO outbox" in statements[1]
    else:
        verbs = [statement.lstrip().split(None, 1)[0].upper() for statement in statements]
        assert verbs.count("SELECT") + verbs.count("WITH") == 1, statements
    assert outcomes[0].interaction_id == known.interaction_id
    assert outcomes[1].duplicate
    assert len({o.customer_id for o in outcomes[2:]}) == 5
    assert all(o.opened_interaction and o.created_customer for o in outcomes[2:])


async def test_a_burst_through_the_group_commit_lands_as_one_message_at_a_time_would(
    store: Store, clock: FrozenClock
) -> None:
    """New and known senders, repeats within the burst, consent and claims, a bad queue."""
    intake = core.Intake(store, default_team="support", clock=clock, max_wait=0.05)
    known = await intake.receive(sms("before", clock, "SM0"))
    clock.advance(5)
    burst = [
        sms("known again", clock, "SM1"),
        *(
            sms(
                f"new {n}",
                clock,
                f"SMn{n}",
                sender=IdentityRef(IdentityKind.PHONE, f"+1415555{n:04d}"),
            )
            for n in range(20)
        ),
        sms("new 3 again", clock, "SMn3b", sender=IdentityRef(IdentityKind.PHONE, "+14155550003")),
        sms("retry", clock, "SMn5", sender=IdentityRef(IdentityKind.PHONE, "+14155550005")),
        sms("retry of the first", clock, "SM0"),
        sms("STOP", clock, "SMstop", opt_out=True, creates_work=False),
        sms("with a claim", clock, "SMclaim", claims=(IdentityClaim(EMAIL, True),)),
        sms("nowhere", clock, "SMbad", queue="no-such-queue"),
        sms("mail", clock, "<m@x>", channel=Channel.EMAIL, sender=EMAIL, provider="imap"),
    ]
    outcomes = await asyncio.gather(*(intake.receive(m) for m in burst), return_exceptions=True)
    await intake.stop()
    assert intake.batches == 2  # the first message, then the whole burst in one transaction
    by_ref = dict(zip([m.provider_ref for m in burst], outcomes, strict=True))
    assert isinstance(by_ref["SMbad"], ValidationError)
    results = {ref: o for ref, o in by_ref.items() if isinstance(o, core.Received)}
    assert sum(isinstance(o, core.Received) for o in outcomes) == len(burst) - 1
    assert results["SM1"].customer_id == known.customer_id
    assert results["SM1"].interaction_id == known.interaction_id
    assert not results["SM1"].opened_interaction
    assert results["SM0"].duplicate
    assert results["SM0"].event_id == known.event_id
    first_n5 = outcomes[1 + 5]
    assert isinstance(first_n5, core.Received)
    assert not first_n5.duplicate
    assert results["SMn5"].duplicate
    assert results["SMn5"].event_id == first_n5.event_id
    new3, again = results["SMn3"], results["SMn3b"]
    assert new3.created_customer
    assert not again.created_customer
    assert again.customer_id == new3.customer_id
    assert again.interaction_id == new3.interaction_id
    assert new3.opened_interaction
    assert not again.opened_interaction
    assert results["SMstop"].interaction_id is None
    assert results["SMclaim"].customer_id == known.customer_id
    assert results["<m@x>"].customer_id == known.customer_id  # the claim verified the email
    assert await count(store, CustomerRow) == 21
    assert await count(store, TimelineEventRow) == 1 + 20 + 1 + 1 + 1 + 1 + 1 + 1  # + STOP note
    async with store.unit_of_work() as uow:
        assert await uow.customers.is_opted_out(PHONE)
        open_sms = await uow.interactions.open_of_customer(new3.customer_id)
    assert len(open_sms) == 1


async def test_a_message_the_database_refuses_fails_alone(store: Store, clock: FrozenClock) -> None:
    intake = core.Intake(store, default_team="support", clock=clock, max_wait=0.05)
    good = [
        sms(
            f"fine {n}",
            clock,
            f"SMg{n}",
            sender=IdentityRef(IdentityKind.PHONE, f"+1415666{n:04d}"),
        )
        for n in range(5)
    ]
    refused = sms("x", clock, "R" * 400)  # longer than a provider reference may be
    outcomes = await asyncio.gather(
        *(intake.receive(m) for m in [*good[:2], refused, *good[2:]]), return_exceptions=True
    )
    await intake.stop()
    stored = [o for o in outcomes if isinstance(o, core.Received)]
    assert len(stored) >= 5
    if store.dialect == "postgresql":  # SQLite does not enforce the column's length
        assert isinstance(outcomes[2], HubError)
    assert await count(store, TimelineEventRow) == len(stored)


async def test_files_a_provider_only_links_to_are_owed_with_the_message(
    receive: Receive, store: Store, clock: FrozenClock
) -> None:
    owed: list[AttachmentsOwed] = []

    async def collect(event: AttachmentsOwed) -> None:
        owed.append(event)

    store.bus.subscribe(AttachmentsOwed, collect)
    linked = Attachment("photo.jpg", "image/jpeg", url="https://api.twilio.com/media/ME1")
    kept = Attachment("note.txt", "text/plain", path="attachments/1/note.txt")
    with_link = await receive(
        store,
        sms("photo", clock, "MM1", attachments=(linked,)),
        default_team="support",
        now=clock(),
    )
    await receive(
        store, sms("kept", clock, "MM2", attachments=(kept,)), default_team="support", now=clock()
    )
    await store.outbox.settle()
    assert [(e.event_id, e.channel) for e in owed] == [(with_link.event_id, Channel.SMS)]


async def test_the_batch_snapshot_looks_each_key_up_in_its_index_however_long_the_timeline(
    store: Store,
) -> None:
    """Retries are found through the provider reference's unique index: a hash join over the
    whole timeline (PostgreSQL's choice for a JSON array of references) grows with every
    message ever stored (1.35 ms at 3,700 events; a second at a million)."""
    from sqlalchemy import text

    from hub.crm_store.intake import _SNAPSHOT, _STATES

    async with store.engine.begin() as connection:
        customer = await connection.scalar(
            text(
                "INSERT INTO customers (custom_fields, tags, created_at, updated_at)"
                " VALUES ('{}', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
            )
        )
        series = (
            "generate_series(1, 5000) AS g(n)"
            if store.dialect == "postgresql"
            else "(WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000)"
            " SELECT n FROM g) AS g"
        )
        events = (  # built from this test's constants; the customer is a bound parameter
            "INSERT INTO timeline_events (customer_id, kind, channel, direction, occurred_at,"  # noqa: S608
            " attachments, provider, provider_ref, data)"
            " SELECT :customer, 'message', 'sms', 'inbound', CURRENT_TIMESTAMP, '[]',"
            f" 'twilio', 'SM' || n, '{{}}' FROM {series}"
        )
        await connection.execute(text(events), {"customer": customer})
        await connection.execute(text("ANALYZE"))
    statement = _SNAPSHOT[store.dialect]
    compiled = statement.compile(dialect=store.engine.dialect)
    values = {
        "refs": json.dumps([["twilio", f"SM{n}"] for n in range(32)]),
        "senders": json.dumps([["phone", f"+1415555{n:04d}"] for n in range(32)]),
        "queues": "[]",
        "channels": '["sms"]',
        "states": _STATES,
        "team": "support",
        "reserve": 0,
    }
    positional = [values[name] for name in compiled.positiontup or ()]
    async with store.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        if store.dialect == "postgresql":
            rows = await driver.fetch(f"EXPLAIN {compiled}", *positional)
            plan = "\n".join(row[0] for row in rows)
            assert "Index Scan using uq_timeline_events_provider_ref" in plan, plan
            assert "Seq Scan on timeline_events" not in plan, plan
        else:
            cursor = await driver.execute(f"EXPLAIN QUERY PLAN {compiled}", positional)
            plan = "\n".join(str(row[-1]) for row in await cursor.fetchall())
            assert "SEARCH e USING INDEX sqlite_autoindex_timeline_events_1" in plan, plan


async def test_a_plain_burst_lands_as_one_message_at_a_time_would(
    store: Store, clock: FrozenClock
) -> None:
    """Plain messages only (on PostgreSQL the batch is written as one statement): the same
    customers, names, interactions, events, activity and announcements as one at a time."""
    announced: list[Any] = []

    async def note(event: Any) -> None:
        announced.append(event)

    for kind in (CustomerCreated, InteractionReceived, TimelineEventAdded, AttachmentsOwed):
        store.bus.subscribe(kind, note)

    def phone(prefix: str, n: int) -> IdentityRef:
        return IdentityRef(IdentityKind.PHONE, f"+1{prefix}55500{n:02d}")

    def burst(prefix: str) -> list[InboundMessage]:
        mail = IdentityRef(IdentityKind.EMAIL, f"ada-{prefix}@example.com")
        linked = Attachment("photo.jpg", "image/jpeg", url="https://api.twilio.com/media/ME1")
        return [
            sms("new", clock, f"{prefix}-1", sender=phone(prefix, 1), name="Ada"),
            sms("new again", clock, f"{prefix}-2", sender=phone(prefix, 1), name="Ada L"),
            sms("named now", clock, f"{prefix}-3", sender=phone(prefix, 2), name="Grace"),
            sms("known", clock, f"{prefix}-4", sender=phone(prefix, 3)),
            sms("photo", clock, f"{prefix}-5", sender=phone(prefix, 4), attachments=(linked,)),
            sms("auto-reply", clock, f"{prefix}-6", sender=phone(prefix, 5), creates_work=False),
            sms("retry", clock, f"{prefix}-0", sender=phone(prefix, 3)),
            sms("repeat", clock, f"{prefix}-4", sender=phone(prefix, 3)),
            sms("thread a", clock, f"<a-{prefix}>", sender=mail, channel=Channel.EMAIL,
                provider="imap", thread_key="a", subject="A"),
            sms("thread b", clock, f"<b-{prefix}>", sender=mail, channel=Channel.EMAIL,
                provider="imap", thread_key="b", subject="B"),
        ]  # fmt: skip

    async def land(prefix: str, batched: bool) -> tuple[list[Any], list[Any], list[Any], Any]:
        clock.advance(3600)
        for n, name in ((2, None), (3, "Known")):  # known customers, with open work
            first = sms("before", clock, f"{prefix}-{n}0", sender=phone(prefix, n), name=name)
            await core.receive(store, first, default_team="support", now=clock())
        await core.receive(  # an earlier message, retried in the burst
            store, sms("x", clock, f"{prefix}-0", sender=phone(prefix, 3)), default_team="support",
            now=clock(),
        )  # fmt: skip
        await store.outbox.settle()
        announced.clear()
        clock.advance(5)
        messages = burst(prefix)
        if batched:
            intake = core.Intake(store, default_team="support", clock=clock, max_wait=0.05)
            outcomes = await asyncio.gather(*(intake.receive(m) for m in messages))
            await intake.stop()
            assert intake.batches == 1
        else:
            outcomes = [
                await core.receive(store, m, default_team="support", now=clock()) for m in messages
            ]
        await store.outbox.settle()
        # Ids differ between the runs: each becomes the number of its first appearance.
        names: dict[tuple[str, int], int] = {}

        def same(kind: str, value: int | None) -> int | None:
            return None if value is None else names.setdefault((kind, value), len(names))

        results = [
            (
                same("c", o.customer_id), same("i", o.interaction_id), same("e", o.event_id),
                o.duplicate, o.opened_interaction, o.created_customer,
            )
            for o in outcomes
        ]  # fmt: skip
        async with store.unit_of_work() as uow:
            customers = []
            for o in outcomes:
                customer = await uow.customers.get(o.customer_id)
                assert customer is not None
                customers.append((customer.display_name, customer.updated_at == clock()))
        ids = {"customer_id": "c", "interaction_id": "i", "event_id": "e"}

        def plain(event: Any, name: str) -> Any:
            value = getattr(event, name)
            if name in ids:
                return same(ids[name], value)
            return value is not None if name == "opened_at" else value  # a time: set or not

        events = sorted(
            (
                type(event).__name__,
                tuple(
                    (f.name, plain(event, f.name))
                    for f in dataclasses.fields(event)
                    # unheld: one at a time says nothing (False) where a batch knows (True)
                    if f.name not in ("outbox_id", "unheld")
                ),
            )
            for event in announced
        )
        unheld = {
            same("e", e.event_id)
            for e in announced
            if isinstance(e, TimelineEventAdded) and e.unheld
        }
        return results, customers, events, unheld

    batched = await land("415", batched=True)
    alone = await land("628", batched=False)
    assert batched[0] == alone[0]
    assert batched[1] == alone[1]
    assert batched[2] == alone[2]
    assert ("CustomerCreated", (("customer_id", 0),)) in batched[2]
    # Every message that opened its interaction (event, opened, not a duplicate) is unheld.
    assert batched[3] == {r[2] for r in batched[0] if r[4] and not r[3]}
    assert len(batched[3]) == 4  # Ada's, the photo's, both email threads
