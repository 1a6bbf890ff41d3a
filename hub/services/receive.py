"""The core path every inbound contact takes (DESIGN.md, steps 2 and 3)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from hub.batches import Batcher
from hub.crm_store.intake import Holder, OpenInteraction
from hub.crm_store.timeline import NewEvent
from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.events import AttachmentsOwed, CustomerCreated, InteractionReceived
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
            async with self._store.unit_of_work() as uow:
                outcomes = await receive_batch(uow, messages, self._default_team, now)
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


async def receive_batch(
    uow: UnitOfWork, messages: Sequence[InboundMessage], default_team: str, now: datetime
) -> list[Outcome]:
    """Store clean messages in one unit of work (not committed here); an outcome for each.

    The same rules as ``receive``, with one query or insert per step for the whole batch.
    Messages needing judgement (claims to weigh, consent to change, an identity more than one
    customer holds) take the one-message path inside the same transaction.
    """
    outcomes: list[Outcome | None] = [None] * len(messages)
    seen = await uow.intake.snapshot(
        refs=[(_provider(m), m.provider_ref) for m in messages if m.provider_ref],
        senders=[m.sender for m in messages],
        queues=[m.queue for m in messages if m.queue],
        channels={m.channel for m in messages if m.creates_work},
        team=default_team,
    )
    first_of: dict[tuple[str, str], int] = {}
    repeats: dict[int, int] = {}  # a message repeated within the batch -> its first
    todo: list[int] = []
    for n, message in enumerate(messages):
        ref = (_provider(message), message.provider_ref) if message.provider_ref else None
        if ref is not None and ref in seen.earlier:
            outcomes[n] = Received(*seen.earlier[ref], duplicate=True)
        elif ref is not None and ref in first_of:
            repeats[n] = first_of[ref]
        else:
            if ref is not None:
                first_of[ref] = n
            todo.append(n)

    team_id = seen.team_id
    placed: dict[int, tuple[int | None, int]] = {}  # message -> queue, team
    for n in list(todo):
        name = messages[n].queue
        if name is not None and name not in seen.queues:
            outcomes[n] = ValidationError(f"there is no queue named {name!r}", field="queue")
            todo.remove(n)
            continue
        queue_id, queue_team = seen.queues[name] if name is not None else (None, None)
        if queue_team is None and team_id is None:
            team_id = (await uow.accounts.ensure_team(default_team, now)).id
        placed[n] = (queue_id, queue_team if queue_team is not None else team_id or 0)

    holders, known = seen.holders, seen.open
    judged = {
        messages[n].sender
        for n in todo
        if messages[n].claims
        or messages[n].opt_out is not None
        or not _plain(holders[messages[n].sender])
    }
    for n in todo:
        if messages[n].sender in judged:
            outcomes[n] = await _receive_once(uow, messages[n], default_team, now)
    plain = [n for n in todo if messages[n].sender not in judged]
    if judged and plain:
        # What those attached (a claim verified) may concern the others: look again.
        holders = await uow.intake.holders(messages[n].sender for n in plain)
        if not all(_plain(holders[messages[n].sender]) for n in plain):
            for n in plain:
                outcomes[n] = await _receive_once(uow, messages[n], default_team, now)
            plain = []
        known = await uow.intake.open_interactions(
            {h.customer_id for n in plain for h in holders[messages[n].sender]},
            {messages[n].channel for n in plain},
        )
    stored = await _store_plain(uow, messages, plain, holders, known, placed, now)
    for n, outcome in zip(plain, stored, strict=True):
        outcomes[n] = outcome
    for n, first in repeats.items():
        original = outcomes[first]
        outcomes[n] = (
            replace(original, duplicate=True) if isinstance(original, Received) else original
        )
    return [o for o in outcomes if o is not None]


def _plain(holders: list[Holder]) -> bool:
    """An identity nobody holds, or only one customer, verified: nothing to weigh."""
    return not holders or (
        len({h.customer_id for h in holders}) == 1 and any(h.verified for h in holders)
    )


async def _store_plain(
    uow: UnitOfWork,
    messages: Sequence[InboundMessage],
    indexes: list[int],
    holders: dict[IdentityRef, list[Holder]],
    known: list[OpenInteraction],
    placed: dict[int, tuple[int | None, int]],
    now: datetime,
) -> list[Received]:
    """Messages from a known customer's verified identity or from nobody known, in bulk."""
    customer_of: dict[IdentityRef, int] = {}
    newcomers: dict[IdentityRef, int] = {}  # sender -> the message that creates them
    names: dict[int, str] = {}
    for n in indexes:
        message = messages[n]
        held = holders[message.sender]
        if held:
            customer_of[message.sender] = held[0].customer_id
            if message.name and not any(h.display_name for h in held):
                names.setdefault(held[0].customer_id, message.name)
        else:
            newcomers.setdefault(message.sender, n)
    created = await uow.intake.create_customers(
        [(messages[n].name, placed[n][1]) for n in newcomers.values()], now
    )
    creator: dict[int, int] = {}  # message -> the customer it created
    for (sender, n), customer_id in zip(newcomers.items(), created, strict=True):
        customer_of[sender] = customer_id
        creator[n] = customer_id
        uow.record(CustomerCreated(customer_id))
    await uow.intake.add_verified_identities(list(zip(created, newcomers, strict=True)), now)
    await uow.intake.name_customers(names, now)

    working = [n for n in indexes if messages[n].creates_work]
    open_by: dict[tuple[int, str], list[OpenInteraction]] = {}
    for interaction in known:
        open_by.setdefault((interaction.customer_id, interaction.channel), []).append(interaction)
    continues: dict[int, OpenInteraction] = {}
    opens: list[int] = []
    for n in working:
        message = messages[n]
        customer_id = customer_of[message.sender]
        candidates = open_by.setdefault((customer_id, message.channel.value), [])
        found = next(
            (
                i
                for i in candidates
                if message.thread_key is None or i.thread_key == message.thread_key
            ),
            None,
        )
        if found is None:
            # Opened by this batch: later messages of the batch continue it (its id comes later).
            found = OpenInteraction(
                -1 - len(opens),
                customer_id,
                message.channel.value,
                message.thread_key,
                placed[n][0],
            )
            candidates.insert(0, found)
            opens.append(n)
        continues[n] = found
    new_ids = await uow.intake.create_interactions(
        [
            {
                "customer_id": customer_of[messages[n].sender],
                "channel": messages[n].channel.value,
                "queue_id": placed[n][0],
                "subject": messages[n].subject,
                "thread_key": messages[n].thread_key,
                "opened_at": messages[n].received_at,
            }
            for n in opens
        ]
    )
    opened_by = set(opens)

    def interaction_id(n: int) -> int | None:
        found = continues.get(n)
        if found is None:
            return None
        return found.id if found.id > 0 else new_ids[-1 - found.id]

    event_ids = await uow.timeline.append_many(
        [
            NewEvent(
                customer_id=customer_of[messages[n].sender],
                interaction_id=interaction_id(n),
                kind=messages[n].event_kind,
                direction=Direction.INBOUND,
                channel=messages[n].channel,
                occurred_at=messages[n].received_at,
                body=messages[n].body,
                attachments=messages[n].attachments,
                provider=_provider(messages[n]),
                provider_ref=messages[n].provider_ref,
                data=_event_data(messages[n]),
                unheld=n in opened_by,
            )
            for n in indexes
        ]
    )
    await uow.intake.touch(  # the customers created just now were made with it
        (customer_of[messages[n].sender] for n in working if messages[n].sender not in newcomers),
        now,
    )
    results = []
    for n, event_id in zip(indexes, event_ids, strict=True):
        message = messages[n]
        customer_id = customer_of[message.sender]
        work = interaction_id(n)
        _owe_attachments(uow, message, customer_id, work, event_id)
        if work is not None:
            uow.record(
                InteractionReceived(
                    interaction_id=work,
                    customer_id=customer_id,
                    event_id=event_id,
                    channel=message.channel,
                    queue_id=continues[n].queue_id,
                    opened=n in opened_by,
                    opened_at=message.received_at.isoformat() if n in opened_by else None,
                    customer_created=n in creator,
                )
            )
        results.append(Received(customer_id, work, event_id, False, n in opened_by, n in creator))
    return results
