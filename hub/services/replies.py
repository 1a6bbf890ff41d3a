"""Agents writing back to customers, on whatever channel the interaction is on."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nh3

from hub.channels.base import Capability, ChannelAdapter, OutboundMessage
from hub.crm_store.unit_of_work import Store
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel, InteractionState
from hub.domain.timeline import Direction, EventKind, TimelineEvent
from hub.domain.users import Permission, Principal, Role
from hub.errors import Conflict, HubError, NotFound, ValidationError
from hub.services.files import keep_files
from hub.services.interactions import visible_interaction

ADDRESS_KIND = {
    Channel.SMS: IdentityKind.PHONE,
    Channel.VOICE: IdentityKind.PHONE,
    Channel.EMAIL: IdentityKind.EMAIL,
    Channel.FAX: IdentityKind.FAX,
    Channel.WEBCHAT: IdentityKind.CHAT_VISITOR,
}
REPLYABLE = frozenset({InteractionState.ASSIGNED, InteractionState.WRAP_UP})


@dataclass(frozen=True, slots=True)
class ReplyFile:
    """A file an agent attaches to a reply."""

    filename: str
    content_type: str
    data: bytes


async def reply(
    store: Store,
    channels: Mapping[Channel, ChannelAdapter],
    principal: Principal,
    interaction_id: int,
    *,
    body: str,
    now: datetime,
    html: str | None = None,
    files: tuple[ReplyFile, ...] = (),
    data_dir: str = "./data",
) -> TimelineEvent:
    """Send a reply and keep it on the timeline, with the provider's delivery status.

    The message is recorded (status ``sending``) before it goes out, so a crash while sending
    leaves a trace; a failure is recorded on it (status ``failed`` and why) and raised.
    """
    principal.require(Permission.WORK_TAKE)
    async with store.unit_of_work() as uow:
        interaction = await visible_interaction(uow, principal, interaction_id)
        if interaction.state not in REPLYABLE:
            raise Conflict(f"interaction {interaction_id} is {interaction.state}; take it first")
        supervising = principal.role in (Role.SUPERVISOR, Role.ADMIN)
        if interaction.assigned_user_id != principal.user_id and not supervising:
            raise Conflict(f"interaction {interaction_id} is not assigned to you")
        adapter = channels.get(interaction.channel)
        if adapter is None or Capability.OUTBOUND not in adapter.capabilities:
            raise ValidationError(f"the {interaction.channel} channel cannot send replies")
        if adapter.max_body is not None and len(body) > adapter.max_body:
            raise ValidationError(
                f"a {interaction.channel} reply is at most {adapter.max_body} characters",
                field="body",
            )
        if files and not adapter.sends_files:
            raise ValidationError(f"the {interaction.channel} channel cannot send attachments")
        latest = await uow.timeline.latest_inbound(interaction_id)
        if latest is not None and latest.data.get("sender_withheld"):
            raise Conflict(
                f"the customer withheld their number: interaction {interaction_id} has no way "
                "back on this channel",
                code="sender_withheld",
            )
        kind = ADDRESS_KIND.get(interaction.channel)
        address = latest.data.get("from") if latest is not None else None
        if kind is None or not isinstance(address, str):
            raise NotFound(f"no address to reply to on interaction {interaction_id}")
        event = await uow.timeline.append(
            customer_id=interaction.customer_id,
            interaction_id=interaction.id,
            kind=EventKind.MESSAGE,
            direction=Direction.OUTBOUND,
            occurred_at=now,
            channel=interaction.channel,
            body=body,
            author_id=principal.user_id,
            data={"to": address, "status": "sending"}
            | ({"html": nh3.clean(html)} if html is not None else {}),
        )
        await uow.commit()
    attachments = await asyncio.to_thread(
        keep_files, Path(data_dir) / "outbound" / str(event.id), files
    )
    if attachments:
        async with store.unit_of_work() as uow:
            await uow.timeline.set_attachments(event.id, attachments)
            await uow.commit()
    reply_from = latest.data.get("to") if latest is not None else None
    try:
        receipt = await adapter.send(
            OutboundMessage(
                interaction_id=interaction_id,
                to=IdentityRef(kind, address),
                body=body,
                reply_from=reply_from if isinstance(reply_from, str) else None,
                html=nh3.clean(html) if html is not None else None,
                attachments=attachments,
                event_id=event.id,
                author_id=principal.user_id,
            )
        )
    except HubError as err:
        async with store.unit_of_work() as uow:
            await uow.timeline.update_delivery(
                event.id, status="failed", error=err.message, error_code=err.code
            )
            await uow.commit()
        raise
    async with store.unit_of_work() as uow:
        await uow.timeline.update_delivery(
            event.id,
            provider_ref=receipt.provider_ref,
            provider=receipt.provider,
            status=receipt.status,
        )
        await uow.commit()
        sent = await uow.timeline.event(event.id)
    assert sent is not None
    return sent
