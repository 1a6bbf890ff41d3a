"""Interaction use cases available before routing: reading one, closing one by hand."""

from __future__ import annotations

from datetime import datetime

from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.events import InteractionClosed
from hub.domain.interaction import Interaction, InteractionState
from hub.domain.timeline import Direction, EventKind
from hub.domain.users import Permission, Principal
from hub.errors import Conflict, Forbidden, NotFound, ValidationError
from hub.services.customers import visible_customer

MAX_DISPOSITION = 100


async def visible_interaction(
    uow: UnitOfWork, principal: Principal, interaction_id: int, *, lock: bool = False
) -> Interaction:
    """The interaction if its customer is visible to the caller; NotFound otherwise."""
    interaction = await uow.interactions.get(interaction_id, lock=lock)
    if interaction is None:
        raise NotFound(f"no interaction {interaction_id}")
    try:
        await visible_customer(uow, principal, interaction.customer_id)
    except NotFound as err:
        raise NotFound(f"no interaction {interaction_id}") from err
    return interaction


def require_handler(principal: Principal, interaction: Interaction, action: str) -> None:
    """Work someone holds is theirs: only they, or a supervisor or admin of its team, may act.

    Work nobody holds yet (new, waiting) may be closed by anyone who sees it. Call this with an
    interaction read through ``visible_interaction``: that is what limits a supervisor to the
    teams they belong to (admins see every team).
    """
    holder = interaction.assigned_user_id
    if holder is None or holder == principal.user_id or principal.can(Permission.AGENTS_MANAGE):
        return
    raise Forbidden(
        f"interaction {interaction.id} is another agent's: only they or a supervisor of its "
        f"team may {action} it",
        code="not_your_interaction",
    )


async def get_interaction(store: Store, principal: Principal, interaction_id: int) -> Interaction:
    """One interaction, if its customer is visible to the caller."""
    principal.require(Permission.CUSTOMERS_READ)
    async with store.unit_of_work() as uow:
        return await visible_interaction(uow, principal, interaction_id)


async def my_work(store: Store, principal: Principal) -> list[Interaction]:
    """The caller's open work (assigned to them, or in their wrap-up): what a console reopens."""
    principal.require(Permission.WORK_TAKE)
    async with store.unit_of_work() as uow:
        return await uow.interactions.held_by(principal.user_id)


async def close_interaction(
    store: Store,
    principal: Principal,
    interaction_id: int,
    *,
    disposition: str | None,
    now: datetime,
) -> Interaction:
    """Close an open interaction with an optional disposition; the state machine decides."""
    principal.require(Permission.NOTES_WRITE)
    if disposition is not None and not 0 < len(disposition.strip()) <= MAX_DISPOSITION:
        raise ValidationError(
            f"a disposition is 1-{MAX_DISPOSITION} characters", field="disposition"
        )
    async with store.unit_of_work() as uow:
        interaction = await visible_interaction(uow, principal, interaction_id, lock=True)
        require_handler(principal, interaction, "close")
        previous = interaction.move_to(InteractionState.CLOSED, now)
        interaction.disposition = disposition.strip() if disposition else None
        if not await uow.interactions.save_state(interaction, previous):
            raise Conflict(f"interaction {interaction_id} changed meanwhile; read it again")
        await uow.timeline.append(
            customer_id=interaction.customer_id,
            interaction_id=interaction.id,
            kind=EventKind.STATUS_CHANGE,
            direction=Direction.INTERNAL,
            occurred_at=now,
            channel=interaction.channel,
            author_id=principal.user_id,
            body=f"Closed ({interaction.disposition})" if interaction.disposition else "Closed",
            data={"from": previous.value, "to": interaction.state.value},
        )
        uow.record(
            InteractionClosed(
                interaction.id,
                interaction.customer_id,
                previous.value,
                interaction.assigned_user_id,
            )
        )
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="interaction.close",
            entity_type="interaction",
            entity_id=interaction.id,
            disposition=interaction.disposition,
        )
        await uow.commit()
    return interaction
