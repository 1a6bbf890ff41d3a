"""The core path every inbound contact takes (DESIGN.md, steps 2 and 3)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from hub.batches import Batcher
from hub.crm_store.intake import Holder, OpenInteraction, PlainWrite, Snapshot
from hub.crm_store.timeline import NewEvent
from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.events import (
    AttachmentsOwed,
    CustomerCreated,
    InteractionReceived,
    TimelineEventAdded,
)
from hub.domain.identity import IdentityRef
from hub.domain.messages import InboundMessage
from hub.domain.text import clean_text
from hub.domain.timeline import Direction, EventKind
from hub.errors import HubError, StoreConflict, ValidationError
from hub.services.identities import attach_identity

log = structlog.get_logger(__name__)

ATTEMPTS = 3  # a concurrent writer creating the same customer or event makes us re-read


@dataclass(frozen=True, slots=True)
class Received:
    """Where an inbound message landed."""

    customer_id: int
    interaction_id: int | None
    event_id: int
    duplicate: bool
    opened_interaction: bool = False
    created_customer: bool = False


async def receive(
    store: Store, message: InboundMessage, *, default_team: str, now: datetime
) -> Received:
    """Store an inbound message in one transaction; publish InteractionReceived after commit.

    Resolves the customer from the sender's identity, drops a provider's retry, continues the
    open interaction on the channel (and thread) or opens one, and appends the timeline event.
    """
    return await _receive_clean(store, clean_message(message), default_team, now)


async def _receive_clean(
    store: Store, message: InboundMessage, default_team: str, now: datetime
) -> Received:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            async with store.unit_of_work() as uow:
                received = await _receive_once(uow, message, default_team, now)
                if not received.duplicate:
                    await uow.commit()
                return received
        except StoreConflict:
            if attempt == ATTEMPTS:
                raise
            log.info("receive raced a concurrent writer; retrying", attempt=attempt)
    raise AssertionError("unreachable")


async def _receive_once(
    uow: UnitOfWork, message: InboundMessage, default_team: str, now: datetime
) -> Received:
    provider = _provider(message)
    if message.provider_ref:
        earlier = await uow.timeline.by_provider_ref(provider, message.provider_ref)
        if earlier is not None:
            return Received(earlier.customer_id, earlier.interaction_id, earlier.id, duplicate=True)

    queue_id, team_id = await _queue_and_team(uow, message.queue, default_team, now)
    customer_id, created = await _resolve_customer(uow, message, team_id, now)
    if created:
        uow.record(CustomerCreated(customer_id))

    interaction = None
    opened = False
    if message.creates_work:
        interaction = await uow.interactions.open_for(
            customer_id, message.channel, message.thread_key
        )
        opened = interaction is None
        if interaction is None:
            interaction = await uow.interactions.create(
                customer_id=customer_id,
                channel=message.channel,
                now=message.received_at,
                queue_id=queue_id,
                subject=message.subject,
                thread_key=message.thread_key,
            )
    event = await uow.timeline.append(
        customer_id=customer_id,
        interaction_id=None if interaction is None else interaction.id,
        kind=message.event_kind,
        direction=Direction.INBOUND,
        occurred_at=message.received_at,
        channel=message.channel,
        body=message.body,
        attachments=message.attachments,
        provider=provider,
        provider_ref=message.provider_ref,
        data=_event_data(message),
    )
    _owe_attachments(uow, message, customer_id, event.interaction_id, event.id)
    if message.opt_out is not None:
        await _consent(uow, message, customer_id, opted_out=message.opt_out, now=now)
    if interaction is None:
        return Received(customer_id, None, event.id, False, False, created)  # no work created
    await uow.customers.touch(customer_id, now)
    uow.record(
        InteractionReceived(
            interaction_id=interaction.id,
            customer_id=customer_id,
            event_id=event.id,
            channel=message.channel,
            queue_id=interaction.queue_id,
            opened=opened,
            opened_at=interaction.opened_at.isoformat() if opened else None,
            customer_created=created,
        )
    )
    return Received(customer_id, interaction.id, event.id, False, opened, created)


def _owe_attachments(
    uow: UnitOfWork,
    message: InboundMessage,
    customer_id: int,
    interaction_id: int | None,
    event_id: int,
) -> None:
    """Files the provider only links to are fetched after commit, by the channel: recorded
    with the message, so a crash cannot lose the fetch."""
    if any(attachment.owed for attachment in message.attachments):
        uow.record(AttachmentsOwed(customer_id, interaction_id, event_id, message.channel))


def _provider(message: InboundMessage) -> str:
    return message.provider or message.channel.value


def clean_message(message: InboundMessage) -> InboundMessage:
    """The message with only clean text in it (``hub.domain.text``), whatever the channel read."""
    return replace(
        message,
        body=clean_text(message.body),
        name=clean_text(message.name) if message.name is not None else None,
        subject=clean_text(message.subject) if message.subject is not None else None,
        attachments=tuple(replace(a, filename=clean_text(a.filename)) for a in message.attachments),
        data=_clean_data(message.data),
    )


def _clean_data(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_data(v) for v in value]
    return value


async def _consent(
    uow: UnitOfWork, message: InboundMessage, customer_id: int, *, opted_out: bool, now: datetime
) -> None:
    """The sender withdrew (or gave back) consent to the channel's messages: note it."""
    sender = message.sender
    await uow.customers.set_opt_out(sender, now if opted_out else None)
    channel = message.channel.value.upper()
    await uow.timeline.append(
        customer_id=customer_id,
        kind=EventKind.STATUS_CHANGE,
        direction=Direction.INTERNAL,
        occurred_at=now,
        channel=message.channel,
        body=f"{sender.value} {'opted out of' if opted_out else 'opted back in to'} {channel}",
        data={f"{message.channel.value}_opt_out": opted_out},
    )


def _event_data(message: InboundMessage) -> dict[str, Any]:
    """What the event keeps beside its body: the channel's data, the sender (where a reply
    goes, unless the channel recorded its own ``from``) and the subject."""
    data = {"from": message.sender.value, **message.data}
    if message.subject:
        data["subject"] = message.subject
    return data


async def _queue_and_team(
    uow: UnitOfWork, queue_name: str | None, default_team: str, now: datetime
) -> tuple[int | None, int]:
    if queue_name is not None:
        queue = await uow.accounts.queue_by_name(queue_name)
        if queue is None:
            raise ValidationError(f"there is no queue named {queue_name!r}", field="queue")
        if queue.team_id is not None:
            return queue.id, queue.team_id
        team = await uow.accounts.ensure_team(default_team, now)
        return queue.id, team.id
    team = await uow.accounts.ensure_team(default_team, now)
    return None, team.id


async def _resolve_customer(
    uow: UnitOfWork, message: InboundMessage, team_id: int, now: datetime
) -> tuple[int, bool]:
    """Find the customer by the sender, then by verified claims; create one if none match."""
    customer_id = await uow.customers.verified_owner(message.sender)
    for claim in message.claims:
        if customer_id is not None:
            break
        if claim.verified:
            customer_id = await uow.customers.verified_owner(claim.ref)
    created = customer_id is None
    if customer_id is None:
        customer = await uow.customers.create(display_name=message.name, team_id=team_id, now=now)
        customer_id = customer.id
    elif message.name:
        existing = await uow.customers.get(customer_id)
        if existing is not None and not existing.display_name:
            await uow.customers.update(customer_id, now, display_name=message.name)
    await attach_identity(uow, customer_id, message.sender, verified=True, now=now)
    for claim in message.claims:
        await attach_identity(uow, customer_id, claim.ref, verified=claim.verified, now=now)
    return customer_id, created


# -- group commit --------------------------------------------------------------------------------

Outcome = Received | HubError


class Intake:
    """Group commit: concurrent inbound messages stored by one writer, one transaction a batch.

    Each caller waits for its own message's batch to commit (a webhook still answers only
    after its message is stored). A batch that fails as a whole (a concurrent writer won a
    uniqueness race, the database hiccupped) is stored again message by message, so one bad
    message never fails the others. Waits are bounded (``hub.batches``).
    """

    def __init__(
        self,
        store: Store,
        *,
        default_team: str,
        clock: Callable[[], datetime],
        max_batch: int = 64,
        max_wait: float = 0.002,
    ) -> None:
        self._store = store
        self._default_team = default_team
        self._clock = clock
        self._writer: Batcher[InboundMessage, Received] = Batcher(
            self._write, max_batch=max_batch, max_wait=max_wait, name="intake-writer"
        )
        self.batches = 0  # batches committed in one transaction (a figure for benchmarks)

    async def receive(self, message: InboundMessage) -> Received:
        """Store one message with whatever else arrives now; its outcome once committed."""
        return await self._writer.submit(clean_message(message))

    async def stop(self) -> None:
        """Finish the batches in hand."""
        await self._writer.drain()

    async def _write(self, messages: list[InboundMessage]) -> Sequence[Outcome | BaseException]:
        now = self._clock()
        try:
            seen = None
            statements = self._store.autocommit()
            if statements is not None:  # PostgreSQL: try the batch as one statement
                async with statements as uow:
                    seen = await _snapshot(uow, messages, self._default_team, reserve=True)
                    done = await receive_in_one_statement(uow, messages, seen, now)
                if done is not None:
                    self.batches += 1
                    return done
            async with self._store.unit_of_work() as uow:
                outcomes = await receive_batch(uow, messages, self._default_team, now, seen=seen)
                await uow.commit()
            self.batches += 1
            return outcomes
        except Exception as err:
            if len(messages) > 1:
                log.info("a batch of messages failed; storing them one by one", error=str(err))
            return await asyncio.gather(
                *(_receive_clean(self._store, m, self._default_team, now) for m in messages),
                return_exceptions=True,
            )


async def _snapshot(
    uow: UnitOfWork, messages: Sequence[InboundMessage], default_team: str, *, reserve: bool
) -> Snapshot:
    return await uow.intake.snapshot(
        refs=[(_provider(m), m.provider_ref) for m in messages if m.provider_ref],
        senders=[m.sender for m in messages],
        queues=[m.queue for m in messages if m.queue],
        channels={m.channel for m in messages if m.creates_work},
        team=default_team,
        reserve=len(messages) if reserve else 0,
    )


@dataclass(slots=True)
class _Sorted:
    """A batch sorted against its snapshot: what is settled already, and what is to store."""

    outcomes: list[Outcome | None]
    repeats: dict[int, int]  # a message repeated within the batch -> its first
    todo: list[int]  # messages to store
    placed: dict[int, tuple[int | None, int | None]]  # message -> queue, team (None: default)

    def needs_team(self) -> bool:
        """Some message goes to the default team, which does not exist yet."""
        return any(team is None for _, team in self.placed.values())

    def finish(self) -> list[Outcome]:
        """Every message's outcome, a repeat's its first's (as a duplicate)."""
        outcomes = self.outcomes
        for n, first in self.repeats.items():
            original = outcomes[first]
            outcomes[n] = (
                replace(original, duplicate=True) if isinstance(original, Received) else original
            )
        return [o for o in outcomes if o is not None]


def _sort(messages: Sequence[InboundMessage], seen: Snapshot) -> _Sorted:
    """Settle retries, repeats and unknown queues; place the rest in their queues and teams."""
    outcomes: list[Outcome | None] = [None] * len(messages)
    first_of: dict[tuple[str, str], int] = {}
    repeats: dict[int, int] = {}
    todo: list[int] = []
    placed: dict[int, tuple[int | None, int | None]] = {}
    for n, message in enumerate(messages):
        ref = (_provider(message), message.provider_ref) if message.provider_ref else None
        if ref is not None and ref in seen.earlier:
            outcomes[n] = Received(*seen.earlier[ref], duplicate=True)
            continue
        if ref is not None and ref in first_of:
            repeats[n] = first_of[ref]
            continue
        name = message.queue
        if name is not None and name not in seen.queues:
            outcomes[n] = ValidationError(f"there is no queue named {name!r}", field="queue")
            continue
        if ref is not None:
            first_of[ref] = n
        queue_id, queue_team = seen.queues[name] if name is not None else (None, None)
        placed[n] = (queue_id, queue_team if queue_team is not None else seen.team_id)
        todo.append(n)
    return _Sorted(outcomes, repeats, todo, placed)


def _judged(
    messages: Sequence[InboundMessage], todo: list[int], holders: dict[IdentityRef, list[Holder]]
) -> set[IdentityRef]:
    """Senders whose messages need the one-message path: claims to weigh, consent to change,
    an identity more than one customer holds."""
    return {
        messages[n].sender
        for n in todo
        if messages[n].claims
        or messages[n].opt_out is not None
        or not _plain(holders[messages[n].sender])
    }


async def receive_batch(
    uow: UnitOfWork,
    messages: Sequence[InboundMessage],
    default_team: str,
    now: datetime,
    *,
    seen: Snapshot | None = None,
) -> list[Outcome]:
    """Store clean messages in one unit of work (not committed here); an outcome for each.

    The same rules as ``receive``, with one query or insert per step for the whole batch.
    Messages needing judgement (claims to weigh, consent to change, an identity more than one
    customer holds) take the one-message path inside the same transaction. ``seen`` is the
    batch's snapshot if it was read already.
    """
    if seen is None:
        seen = await _snapshot(uow, messages, default_team, reserve=False)
    batch = _sort(messages, seen)
    if batch.needs_team():
        team_id = (await uow.accounts.ensure_team(default_team, now)).id
        batch.placed = {n: (q, team_id if t is None else t) for n, (q, t) in batch.placed.items()}
    holders, known = seen.holders, seen.open
    judged = _judged(messages, batch.todo, holders)
    for n in batch.todo:
        if messages[n].sender in judged:
            batch.outcomes[n] = await _receive_once(uow, messages[n], default_team, now)
    plain = [n for n in batch.todo if messages[n].sender not in judged]
    if judged and plain:
        # What those attached (a claim verified) may concern the others: look again.
        holders = await uow.intake.holders(messages[n].sender for n in plain)
        if not all(_plain(holders[messages[n].sender]) for n in plain):
            for n in plain:
                batch.outcomes[n] = await _receive_once(uow, messages[n], default_team, now)
            plain = []
        known = await uow.intake.open_interactions(
            {h.customer_id for n in plain for h in holders[messages[n].sender]},
            {messages[n].channel for n in plain},
        )
    plan = _Plan.of(messages, plain, holders, known, batch.placed)
    created = await uow.intake.create_customers(
        [(messages[n].name, plan.team_of(n)) for n in plan.newcomers.values()], now
    )
    customer_of = plan.customers(created)
    await uow.intake.add_verified_identities(list(zip(created, plan.newcomers, strict=True)), now)
    await uow.intake.name_customers(plan.names, now)
    new_ids = await uow.intake.create_interactions(
        [
            {
                "customer_id": customer,
                "channel": channel,
                "queue_id": queue,
                "subject": subject,
                "thread_key": thread,
                "opened_at": opened,
            }
            for customer, channel, queue, subject, thread, opened in plan.interactions(customer_of)
        ]
    )
    event_ids = await uow.timeline.append_many(plan.events(customer_of, new_ids))
    await uow.intake.touch(plan.touched(customer_of), now)
    for n, outcome in zip(plain, plan.announce(uow, customer_of, new_ids, event_ids), strict=True):
        batch.outcomes[n] = outcome
    return batch.finish()


async def receive_in_one_statement(
    uow: UnitOfWork, messages: Sequence[InboundMessage], seen: Snapshot, now: datetime
) -> list[Outcome] | None:
    """Store a batch of plain messages in one statement, on a unit of work in autocommit
    (PostgreSQL), with the ids its snapshot reserved; None (nothing written) if the batch
    needs more than that: a message to judge, the default team to create, no ids reserved."""
    reserved = seen.reserved
    batch = _sort(messages, seen)
    if reserved is None or batch.needs_team() or _judged(messages, batch.todo, seen.holders):
        return None
    plan = _Plan.of(messages, batch.todo, seen.holders, seen.open, batch.placed)
    created = reserved.customers[: len(plan.newcomers)]
    customer_of = plan.customers(created)
    interactions = plan.interactions(customer_of)
    new_ids = reserved.interactions[: len(interactions)]
    events = plan.events(customer_of, new_ids)
    event_ids = reserved.events[: len(events)]
    outcomes = plan.announce(uow, customer_of, new_ids, event_ids)
    for event, event_id in zip(events, event_ids, strict=True):
        uow.record(
            TimelineEventAdded(event.customer_id, event.interaction_id, event_id, event.unheld)
        )
    await uow.commit_plain(
        PlainWrite(
            now=now,
            customers=[
                (customer_id, messages[n].name, plan.team_of(n))
                for customer_id, n in zip(created, plan.newcomers.values(), strict=True)
            ],
            identities=list(zip(created, plan.newcomers, strict=True)),
            interactions=[(i, *row) for i, row in zip(new_ids, interactions, strict=True)],
            events=list(zip(event_ids, events, strict=True)),
            touched=frozenset(plan.touched(customer_of)),
            names=plan.names,
        )
    )
    for n, outcome in zip(batch.todo, outcomes, strict=True):
        batch.outcomes[n] = outcome
    return batch.finish()


def _plain(holders: list[Holder]) -> bool:
    """An identity nobody holds, or only one customer, verified: nothing to weigh."""
    return not holders or (
        len({h.customer_id for h in holders}) == 1 and any(h.verified for h in holders)
    )


@dataclass(slots=True)
class _Plan:
    """What plain messages (from a known customer's verified identity or from nobody known)
    write, before the new rows have ids: a new interaction is known by ``-1 - k``, the k-th
    the batch opens, until its id is given."""

    messages: Sequence[InboundMessage]
    indexes: list[int]  # the messages planned, in order
    placed: dict[int, tuple[int | None, int | None]]
    known: dict[IdentityRef, int]  # senders already held -> their customer
    newcomers: dict[IdentityRef, int]  # sender -> the message that creates them
    names: dict[int, str]  # nameless known customers -> the name their message carried
    continues: dict[int, OpenInteraction]  # message -> the interaction it goes on
    opens: list[int]  # messages opening an interaction, in order

    @classmethod
    def of(
        cls,
        messages: Sequence[InboundMessage],
        indexes: list[int],
        holders: dict[IdentityRef, list[Holder]],
        known: list[OpenInteraction],
        placed: dict[int, tuple[int | None, int | None]],
    ) -> _Plan:
        """Who is new, who gets a name, which interaction each message goes on or opens."""
        plan = cls(messages, indexes, placed, {}, {}, {}, {}, [])
        owner: dict[IdentityRef, int | IdentityRef] = {}  # a customer, or a newcomer's sender
        for n in indexes:
            message = messages[n]
            held = holders[message.sender]
            if held:
                plan.known[message.sender] = owner[message.sender] = held[0].customer_id
                if message.name and not any(h.display_name for h in held):
                    plan.names.setdefault(held[0].customer_id, message.name)
            else:
                plan.newcomers.setdefault(message.sender, n)
                owner[message.sender] = message.sender
        open_by: dict[tuple[int | IdentityRef, str], list[OpenInteraction]] = {}
        for interaction in known:
            key = (interaction.customer_id, interaction.channel)
            open_by.setdefault(key, []).append(interaction)
        for n in indexes:
            message = messages[n]
            if not message.creates_work:
                continue
            candidates = open_by.setdefault((owner[message.sender], message.channel.value), [])
            found = next(
                (
                    i
                    for i in candidates
                    if message.thread_key is None or i.thread_key == message.thread_key
                ),
                None,
            )
            if found is None:
                # Opened by this batch: later messages of the batch continue it.
                found = OpenInteraction(
                    -1 - len(plan.opens), 0, message.channel.value, message.thread_key, placed[n][0]
                )
                candidates.insert(0, found)
                plan.opens.append(n)
            plan.continues[n] = found
        return plan

    def team_of(self, n: int) -> int:
        team = self.placed[n][1]
        assert team is not None, "placed in the default team before planning"
        return team

    def customers(self, created: Sequence[int]) -> dict[IdentityRef, int]:
        """Every sender's customer, given the new customers' ids (in ``newcomers`` order)."""
        return {**self.known, **dict(zip(self.newcomers, created, strict=True))}

    def interactions(
        self, customer_of: dict[IdentityRef, int]
    ) -> list[tuple[int, str, int | None, str | None, str | None, datetime]]:
        """The interactions to open (customer, channel, queue, subject, thread, opened at)."""
        rows = []
        for n in self.opens:
            m = self.messages[n]
            rows.append(
                (
                    customer_of[m.sender],
                    m.channel.value,
                    self.placed[n][0],
                    m.subject,
                    m.thread_key,
                    m.received_at,
                )
            )
        return rows

    def interaction_of(self, n: int, new_ids: Sequence[int]) -> int | None:
        found = self.continues.get(n)
        if found is None:
            return None
        return found.id if found.id > 0 else new_ids[-1 - found.id]

    def events(self, customer_of: dict[IdentityRef, int], new_ids: Sequence[int]) -> list[NewEvent]:
        """The messages' timeline events, in order."""
        opened = set(self.opens)
        return [
            NewEvent(
                customer_id=customer_of[m.sender],
                interaction_id=self.interaction_of(n, new_ids),
                kind=m.event_kind,
                direction=Direction.INBOUND,
                channel=m.channel,
                occurred_at=m.received_at,
                body=m.body,
                attachments=m.attachments,
                provider=_provider(m),
                provider_ref=m.provider_ref,
                data=_event_data(m),
                unheld=n in opened,
            )
            for n, m in ((n, self.messages[n]) for n in self.indexes)
        ]

    def touched(self, customer_of: dict[IdentityRef, int]) -> list[int]:
        """Known customers with new work (the ones created now were made with it)."""
        return sorted(
            {
                customer_of[self.messages[n].sender]
                for n in self.continues
                if self.messages[n].sender not in self.newcomers
            }
        )

    def announce(
        self,
        uow: UnitOfWork,
        customer_of: dict[IdentityRef, int],
        new_ids: Sequence[int],
        event_ids: Sequence[int],
    ) -> list[Received]:
        """Record what the batch's rows say happened (delivered after commit); the outcomes."""
        creators = set(self.newcomers.values())
        opened = set(self.opens)
        for n in sorted(creators):
            uow.record(CustomerCreated(customer_of[self.messages[n].sender]))
        results = []
        for n, event_id in zip(self.indexes, event_ids, strict=True):
            message = self.messages[n]
            customer_id = customer_of[message.sender]
            work = self.interaction_of(n, new_ids)
            _owe_attachments(uow, message, customer_id, work, event_id)
            if work is not None:
                uow.record(
                    InteractionReceived(
                        interaction_id=work,
                        customer_id=customer_id,
                        event_id=event_id,
                        channel=message.channel,
                        queue_id=self.continues[n].queue_id,
                        opened=n in opened,
                        opened_at=message.received_at.isoformat() if n in opened else None,
                        customer_created=n in creators,
                    )
                )
            results.append(Received(customer_id, work, event_id, False, n in opened, n in creators))
        return results
