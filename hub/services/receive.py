"""The core path every inbound contact takes (DESIGN.md, steps 2 and 3)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.events import CustomerCreated, InteractionReceived
from hub.domain.messages import InboundMessage
from hub.domain.text import clean_text
from hub.domain.timeline import Direction, EventKind
from hub.errors import StoreConflict, ValidationError
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
    message = clean_message(message)
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
    provider = message.provider or message.channel.value
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
        )
    )
    return Received(customer_id, interaction.id, event.id, False, opened, created)


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
