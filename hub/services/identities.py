"""Attaching identities to customers without ever merging two people silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hub.crm_store.unit_of_work import UnitOfWork
from hub.domain.events import MergeSuggested
from hub.domain.identity import IdentityRef


@dataclass(slots=True)
class Attached:
    """What attaching one identity did."""

    identity_id: int | None = None
    suggestions: list[int] = field(default_factory=list)
    refused: bool = False  # a verified identity of somebody else: not attached, only suggested


async def attach_identity(
    uow: UnitOfWork, customer_id: int, ref: IdentityRef, *, verified: bool, now: datetime
) -> Attached:
    """Attach ref to the customer; where another customer holds it, suggest a merge instead.

    A verified identity belongs to one customer only. Anything that points two customers at
    one identity (an unverified claim, a verified value held elsewhere) becomes a merge
    suggestion that a person decides on.
    """
    result = Attached()
    holders = await uow.customers.holders(ref)
    mine = [h for h in holders if h.customer_id == customer_id]
    others = [h for h in holders if h.customer_id != customer_id]
    verified_elsewhere = any(h.verified for h in others)
    if mine:
        result.identity_id = mine[0].id
        if verified and not any(h.verified for h in mine) and not verified_elsewhere:
            await uow.customers.mark_verified(mine[0].id)
    elif verified and verified_elsewhere:
        result.refused = True
    else:
        identity = await uow.customers.add_identity(
            customer_id, ref, verified=verified and not verified_elsewhere, now=now
        )
        result.identity_id = identity.id
    for other in {h.customer_id for h in others}:
        suggestion = await uow.customers.suggest_merge(
            customer_id,
            other,
            reason=f"both have {ref.kind.value} {ref.value}",
            now=now,
        )
        if suggestion is not None:
            result.suggestions.append(suggestion.id)
            uow.record(
                MergeSuggested(suggestion.id, suggestion.customer_a_id, suggestion.customer_b_id)
            )
    return result
