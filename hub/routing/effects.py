"""Routing effects: what the router decides, persisted as state transitions and announced."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from hub.crm_store.timeline import NewEvent
from hub.domain.events import (
    AgentStateChanged,
    InteractionAbandoned,
    InteractionAssigned,
    InteractionQueued,
    OfferMade,
    OfferWithdrawn,
    QueueClosedNotice,
)
from hub.domain.interaction import InteractionState
from hub.domain.timeline import Direction, EventKind
from hub.routing.model import AgentState, WorkItem
from hub.routing.policy import QueuePolicy
from hub.routing.router import Enter, Requeued, Reserved

if TYPE_CHECKING:
    from hub.crm_store.unit_of_work import UnitOfWork
    from hub.routing.service import RoutingService

S = InteractionState


class StoreEffects:
    """Routing effects, persisted through the routing service and announced after commit."""

    def __init__(self, service: RoutingService) -> None:
        self._service = service

    async def queued(self, item: WorkItem) -> bool:
        service = self._service
        queue_id = service.queue_id(item.queue)
        return await service.transition(
            item.interaction_id,
            S.QUEUED,
            expected=frozenset({S.NEW, S.QUEUED}),
            reason=f"Queued in {item.queue}",
            queue_id=queue_id,
            priority=item.priority,
            queued_at=item.enqueued_at,
            events=[InteractionQueued(item.interaction_id, item.queue)],
        )

    async def queued_and_offered(
        self,
        items: Sequence[WorkItem],
        enter: Enter,
    ) -> None:
        """New work queued and offered in one transaction (compare-and-set: only what is
        still new is queued, only what is queued is offered). ``enter`` puts the queued work
        in the routing state and reserves agents for it while the rows are held; should the
        transaction fail, what it queued leaves the state again (the store says new: the
        reconciler routes it)."""
        if not items:
            return
        service = self._service
        now = service.clock()
        queued: list[WorkItem] = []
        try:
            async with service.store.unit_of_work() as uow:
                queued = await self._queue_new(uow, items, now)
                made = self._offers(await enter(queued))
                moved = await self._record_offers(uow, made, now)
                await uow.commit()
        except Exception:
            for item in queued:
                await service.state.remove_item(item.interaction_id)
            raise
        await self._offers_lost(made, moved)

    async def _queue_new(
        self, uow: UnitOfWork, items: Sequence[WorkItem], now: datetime
    ) -> list[WorkItem]:
        """Move the items still new to queued, each with its note; the items moved."""
        service = self._service
        groups: dict[tuple[int | None, int], list[int]] = {}
        for w in items:
            groups.setdefault((service.queue_id(w.queue), w.priority), []).append(w.interaction_id)
        moved: set[int] = set()
        for (queue_id, priority), ids in groups.items():
            moved.update(await uow.interactions.queue_new(ids, queue_id, priority, now))
        queued = [w for w in items if w.interaction_id in moved]
        await uow.timeline.append_many(
            [
                NewEvent(
                    customer_id=w.customer_id,
                    interaction_id=w.interaction_id,
                    kind=EventKind.STATUS_CHANGE,
                    direction=Direction.INTERNAL,
                    occurred_at=now,
                    channel=w.channel,
                    body=f"Queued in {w.queue}",
                    data={"from": S.NEW.value, "to": S.QUEUED.value},
                    unheld=True,
                )
                for w in queued
            ]
        )
        for w in queued:
            uow.record(InteractionQueued(w.interaction_id, w.queue))
        return queued

    async def offered(self, item: WorkItem, agent_id: int, expires_at: datetime) -> None:
        await self.offered_many([Reserved(item, agent_id, expires_at)])

    async def offered_many(self, offers: Sequence[Reserved]) -> None:
        """Offers recorded in one transaction (compare-and-set: only what still waits)."""
        if not offers:
            return
        made = self._offers(offers)
        async with self._service.store.unit_of_work() as uow:
            moved = await self._record_offers(uow, made, self._service.clock())
            await uow.commit()
        await self._offers_lost(made, moved)

    @staticmethod
    async def _record_offers(
        uow: UnitOfWork, made: dict[int, OfferMade], now: datetime
    ) -> set[int]:
        """Move the offered work to offered (compare-and-set from queued), recording each
        moved one's ``OfferMade``; the ids moved."""
        moved = set(await uow.interactions.offer_queued(list(made), now))
        for interaction_id in moved:
            uow.record(made[interaction_id])
        return moved

    @staticmethod
    def _offers(offers: Sequence[Reserved]) -> dict[int, OfferMade]:
        return {
            o.item.interaction_id: OfferMade(
                o.item.interaction_id, o.item.customer_id, o.agent_id, o.expires_at.isoformat()
            )
            for o in offers
        }

    async def _offers_lost(self, made: dict[int, OfferMade], moved: set[int]) -> None:
        """Offers whose compare-and-set found the work no longer waiting."""
        lost = [i for i in made if i not in moved]
        if not lost:
            return
        service = self._service
        # Read under lock, so a transaction of another process still queuing the work (its
        # routing batch: the work enters the routing state before that commits, and the
        # compare-and-set above saw it new) is waited for. Queued now: the offer is recorded
        # late. Still OFFERED (an earlier offer's requeue has not landed yet): this offer
        # stands. Moved on (closed, taken): withdraw it. Still new: its routing transaction
        # died; the offer rings out and the reconciler routes the work.
        async with service.store.unit_of_work() as uow:
            current = {i.id: i for i in await uow.interactions.many(lost, lock=True)}
            late = {i: made[i] for i in lost if i in current and current[i].state is S.QUEUED}
            recorded = await self._record_offers(uow, late, service.clock()) if late else set()
            await uow.commit()
        for interaction_id in lost:
            found = current.get(interaction_id)
            if interaction_id in recorded or (found is not None and found.state is S.NEW):
                continue
            if found is not None and found.state is S.OFFERED:
                await service.bus.publish([made[interaction_id]])
            else:
                await service.state.remove_item(interaction_id)

    async def requeued(self, item: WorkItem, agent_id: int, reason: str) -> None:
        await self.requeued_many([Requeued(item, agent_id, reason)])

    async def requeued_many(self, released: Sequence[Requeued]) -> None:
        """Withdrawn offers back in line in one transaction (compare-and-set from offered),
        each with its ``OfferWithdrawn``. Work offered again meanwhile (perhaps by another
        process) stays offered in the store: its withdrawal is only announced."""
        if not released:
            return
        service = self._service
        again: list[OfferWithdrawn] = []
        back: list[OfferWithdrawn] = []
        for each in released:
            event = OfferWithdrawn(each.item.interaction_id, each.agent_id, each.reason)
            routed = await service.state.item(each.item.interaction_id)
            (again if routed is not None and routed.offered_to is not None else back).append(event)
        if again:
            await service.bus.publish(again)
        if not back:
            return
        async with service.store.unit_of_work() as uow:
            moved = set(
                await uow.interactions.requeue_offered(
                    [e.interaction_id for e in back], service.clock()
                )
            )
            for event in back:
                if event.interaction_id in moved:
                    uow.record(event)
            await uow.commit()

    async def assigned(self, item: WorkItem, agent_id: int) -> bool:
        async with self._service.store.unit_of_work() as uow:
            user = await uow.accounts.user(agent_id)
        name = user.display_name if user else f"agent {agent_id}"
        # From QUEUED too: the agent may accept before the offer's own write has landed.
        return await self._service.transition(
            item.interaction_id,
            S.ASSIGNED,
            expected=frozenset({S.OFFERED, S.QUEUED}),
            reason=f"Assigned to {name}",
            kind=EventKind.ASSIGNMENT,
            author=agent_id,
            assigned_user_id=agent_id,
            events=[InteractionAssigned(item.interaction_id, item.customer_id, agent_id)],
        )

    async def overflowed(self, item: WorkItem, from_queue: str, reason: str) -> None:
        await self._service.transition(
            item.interaction_id,
            S.QUEUED,
            expected=S.QUEUED,
            reason=f"Moved from {from_queue} to {item.queue} ({reason})",
            queue_id=self._service.queue_id(item.queue),
            priority=item.priority,
            events=[InteractionQueued(item.interaction_id, item.queue)],
        )

    async def closed(self, item: WorkItem, queue: QueuePolicy) -> None:
        await self._service.transition(
            item.interaction_id,
            S.QUEUED,
            expected=S.QUEUED,
            reason=f"{queue.name} is closed: {queue.closed_action}",
            closed_notice=True,
            events=[
                QueueClosedNotice(
                    item.interaction_id, queue.name, queue.closed_action, queue.closed_message
                )
            ],
        )

    async def presence_changed(self, agent: AgentState, reason: str) -> None:
        await self._service.keep_presence(agent)
        event = AgentStateChanged(agent.agent_id, agent.presence.value, reason)
        await self._service.bus.publish([event])

    async def gave_up(self, item: WorkItem, reason: str) -> None:
        await self._service.transition(
            item.interaction_id,
            S.ABANDONED,
            reason=f"Not answered: {reason}",
            events=[InteractionAbandoned(item.interaction_id, reason)],
        )
