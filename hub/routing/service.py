"""The ACD inside the running hub: the router wired to the store, the bus and the clock.

- New work arrives as ``InteractionReceived`` on the bus (published after commit) and is routed.
- Every routing effect is persisted as an interaction state transition (with a timeline event
  where a person would want one), then announced on the bus, in that order.
- At start the routing state is rebuilt from the store: agents and their assigned work, and
  every queued, offered or never-routed interaction, at its original place in line.
- A ticker runs the router's full pass every ``routing_tick_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from hub.batches import Batcher
from hub.bus.base import EventBus
from hub.config import Settings
from hub.crm_store.accounts import AgentProfile, StoredPresence
from hub.crm_store.config_versions import ConfigVersion
from hub.crm_store.unit_of_work import Store
from hub.domain.events import (
    AgentStateChanged,
    InteractionAbandoned,
    InteractionAssigned,
    InteractionClosed,
    InteractionEnded,
    InteractionReceived,
)
from hub.domain.interaction import Channel, Interaction, InteractionState
from hub.domain.timeline import Direction, EventKind
from hub.domain.users import Permission, Principal
from hub.errors import (
    Conflict,
    HubError,
    IllegalTransition,
    NotFound,
    ValidationError,
)
from hub.routing.effects import StoreEffects
from hub.routing.model import AgentState, Presence, WorkItem
from hub.routing.policies import PolicyVersions
from hub.routing.policy import Policy, PolicyError, PolicyFile, policy_from_document
from hub.routing.router import Router
from hub.routing.state.base import RoutingState
from hub.routing.stats import window_stats
from hub.routing.upkeep import Upkeep
from hub.services.interactions import require_handler, visible_interaction

log = structlog.get_logger(__name__)
STOP_SECONDS = 4.0  # how long stopping waits for a routing pass in progress
S = InteractionState


class RoutingService:
    """Owns the router of a running hub."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        state: RoutingState,
        settings: Settings,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.bus = bus
        self.state = state
        self.settings = settings
        self.clock = clock
        self.router: Router | None = None
        self._queue_ids: dict[str, int] = {}
        self._queue_names: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.policies = PolicyVersions(store, settings, clock)
        self.upkeep = Upkeep(self)
        # New work arriving together (the outbox's lanes deliver side by side) is routed
        # together: one read of what routing needs, one transaction for the queued moves.
        self._arrivals: Batcher[InteractionReceived, None] = Batcher(
            self._route_arrivals, max_batch=128, max_wait=0, name="routing-arrivals"
        )

    # -- life cycle --------------------------------------------------------------------------

    def policy_file(self) -> Path | None:
        """The policy file in use: the setting, else config/routing.toml if it exists."""
        return self.policies.policy_file()

    async def start(self) -> None:
        """Load the policy, rebuild the state from the store, subscribe, start ticking."""
        await self.state.start()
        policy = await self.policies.load()
        self.router = Router(self.state, policy, StoreEffects(self), self.clock)
        await self._sync_queues(policy)
        # Subscribe before rebuilding: work arriving meanwhile is either in the store when the
        # rebuild reads it, or its event comes after (a repeat finds it queued and is ignored).
        self.bus.subscribe(InteractionReceived, self._on_received)
        self.bus.subscribe(InteractionClosed, self._on_closed)
        await self.state.claim_rebuild()  # every process rebuilds what it may at start
        await self.rebuild()
        self._task = asyncio.create_task(self._ticker(), name="routing-ticker")
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._reload_on_signal)

    async def stop(self) -> None:
        """Stop ticking and disconnect from the state."""
        # Let the ticker finish its pass rather than cancel it: a cancelled Redis command can
        # leave redis-py stuck (redis/redis-py#2579). Cancel only as a last resort.
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=STOP_SECONDS)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(self._task, timeout=5)
            self._task = None
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await self.state.close()

    @property
    def policy(self) -> Policy:
        """The routing policy in force (HubError before the service is started)."""
        return self._router().policy

    def _router(self) -> Router:
        if self.router is None:
            raise HubError("routing is not started")
        return self.router

    @property
    def version(self) -> ConfigVersion:
        """The stored policy version in force."""
        return self.policies.in_force

    async def reload(self, *, from_file: bool = False) -> Policy:
        """Put the newest policy in force: a changed (or, from_file, any) file is imported first.

        A bad file is refused and the policy in force stays.
        """
        path = self.policy_file()
        if from_file and path is None:
            raise ValidationError("there is no routing policy file to import (routing_policy)")
        try:
            policy = await self.policies.load(import_file=from_file)
        except PolicyError as err:
            raise ValidationError(f"policy not reloaded, the old one stays: {err}") from err
        await self._put_in_force(policy)
        return policy

    async def _put_in_force(self, policy: Policy) -> None:
        await self._sync_queues(policy)
        self._router().reload(policy)
        log.info("routing policy in force", source=policy.source, queues=len(policy.queues))
        await self._router().tick()

    async def save_policy(
        self,
        principal: Principal,
        document: dict[str, Any],
        *,
        base_version: int | None,
        source: str = "the console",
    ) -> Policy:
        """An admin's new policy: checked, kept as the next version, put in force; audited.

        base_version is the version the edit started from: if another was saved since, the
        edit is refused (409) rather than silently undoing that one. Removing a queue that
        still has work waiting is refused too.
        """
        principal.require(Permission.ROUTING_MANAGE)
        try:
            policy = policy_from_document(document, source="the new policy")
        except PolicyError as err:
            raise ValidationError(str(err)) from err
        current = await self.policies.latest()
        if base_version is not None and current is not None and current.version != base_version:
            raise Conflict(
                f"the routing policy is at version {current.version}, not {base_version}; "
                "load it again and redo the change"
            )
        removed = set(self.policy.queues) - set(policy.queues)
        # Work ringing at an agent is in its queue too: it goes back there if not taken.
        held = {q: n for q, n in (await self.state.queue_sizes()).items() if q in removed}
        if held:
            names = ", ".join(sorted(held))
            raise Conflict(
                f"{sum(held.values())} interaction(s) wait or ring in {names}: "
                "move them before removing it"
            )
        clean = PolicyFile.model_validate(document).model_dump(mode="json", exclude_none=True)
        saved = await self.policies.save(
            clean, source=source, after=current, actor_id=principal.user_id
        )
        policy = replace(policy, source=f"policy version {saved.version}")
        await self._put_in_force(policy)
        return policy

    async def policy_versions(self, limit: int = 50) -> list[ConfigVersion]:
        """The policy's history, newest first."""
        return await self.policies.history(limit)

    async def policy_version(self, version: int) -> ConfigVersion:
        """One version of the policy (NotFound if there is none)."""
        return await self.policies.get(version)

    async def _follow(self) -> None:
        """Scaled out: put in force a version another hub process saved."""
        if await self.policies.newer_saved():
            await self._put_in_force(await self.policies.load())

    def _reload_on_signal(self) -> None:
        async def go() -> None:
            try:
                await self.reload()
            except HubError as err:
                log.error("routing policy reload refused", error=err.message)

        asyncio.get_running_loop().create_task(go())

    async def _sync_queues(self, policy: Policy) -> None:
        """Every queue of the policy in the store, and their ids known here."""
        queues = await self.policies.sync_queues(policy)
        self._queue_ids, self._queue_names = queues.ids, queues.names

    async def _ticker(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=self.settings.routing_tick_seconds
                )
            if self._stopping.is_set():
                return
            try:
                if self.settings.redis_url:
                    await self._follow()
                if await self.state.claim_rebuild():
                    log.warning("routing state was empty (Redis lost its data?): rebuilding it")
                    await self.rebuild()
                await self._sign_out_lost_agents()
                await self._router().tick()
                await self.upkeep.due()
            except Exception:
                log.exception("routing tick failed")

    async def _sign_out_lost_agents(self) -> None:
        """Agents whose consoles are all gone past the grace period go offline.

        Closing the browser (or losing the network, or the hub process the socket was on)
        must not leave an agent available: offers would ring at nobody. A console that comes
        back within ``agent_disconnect_grace_seconds`` (a reload) changes nothing.
        """
        grace = timedelta(seconds=self.settings.agent_disconnect_grace_seconds)
        for agent_id in await self.state.take_unseen(self.clock() - grace):
            agent = await self.state.agent(agent_id)
            if agent is None or agent.presence is Presence.OFFLINE:
                continue
            await self.keep_presence(
                await self._router().set_presence(agent_id, Presence.OFFLINE, None)
            )
            reason = "console disconnected"
            await self.bus.publish([AgentStateChanged(agent_id, Presence.OFFLINE.value, reason)])
            log.info("agent signed out: console gone", agent_id=agent_id)

    # -- rebuilding from the store -----------------------------------------------------------

    async def rebuild(self) -> None:
        """Bring the routing state in line with the store (the store is the source of truth).

        Agents come back with the presence the store kept for them; those not offline count
        as seen now, so an agent whose console does not come back is signed out after the
        grace period, as if it had just gone.
        """
        async with self.store.unit_of_work() as uow:
            profiles = await uow.accounts.agent_profiles()
            stored = await uow.accounts.presences()
            open_work = await uow.interactions.in_states(
                frozenset({S.NEW, S.QUEUED, S.OFFERED, S.ASSIGNED})
            )
        fresh: set[int] = set()
        for profile in profiles:
            known = await self.state.agent(profile.user.id)
            if known is None:
                fresh.add(profile.user.id)
            await self.state.put_agent(
                self.agent_state(profile, known, stored.get(profile.user.id))
            )
        present = [i for i in fresh if i in stored and stored[i].presence != Presence.OFFLINE.value]
        await self.state.seen(present, self.clock())
        for interaction in open_work:
            if interaction.state is S.ASSIGNED:
                if interaction.assigned_user_id in fresh:
                    await self.state.add_load(interaction.assigned_user_id, interaction.channel, 1)
                continue
            if await self.state.item(interaction.id) is not None:
                continue  # another hub process routes it already
            # (an offer died with the process, or the Redis, that made it: back in line)
            await self.requeue_lost(interaction)

    async def requeue_lost(self, interaction: Interaction) -> None:
        """Work the store says waits that routing lost track of: back in line, routed.

        ``interaction`` may be a stale look (the reconciler's page): work taken since is left
        alone, by the compare-and-sets here and in the queued transition."""
        if interaction.state is S.OFFERED and not await self.transition(
            interaction.id, S.QUEUED, expected=S.OFFERED
        ):
            return
        await self._route(interaction)

    async def offer_lost(self, interaction_id: int) -> None:
        """The store says offered, routing says waiting: the store follows (it waits)."""
        await self.transition(interaction_id, S.QUEUED, expected=S.OFFERED)

    def agent_state(
        self, profile: AgentProfile, known: AgentState | None, stored: StoredPresence | None = None
    ) -> AgentState:
        """Routing's view of an agent: the stored profile with live presence and load if known
        (else the presence the store kept)."""
        now = self.clock()
        capacity = {}
        for channel, count in profile.capacity.items():
            with contextlib.suppress(ValueError):
                capacity[Channel(channel)] = count
        presence, since, reason = Presence.OFFLINE, now, None
        if known is not None:
            presence, since, reason = known.presence, known.presence_since, known.away_reason
        elif stored is not None:
            with contextlib.suppress(ValueError):
                presence, since, reason = Presence(stored.presence), stored.since, stored.reason
        return AgentState(
            agent_id=profile.user.id,
            teams=profile.team_names,
            presence=presence,
            presence_since=since,
            idle_since=known.idle_since if known else since,
            skills=profile.skills,
            languages=profile.languages,
            capacity=capacity,
            away_reason=reason,
            wrap_up_until=known.wrap_up_until if known else None,
            load=dict(known.load) if known else {},
        )

    async def keep_presence(self, agent: AgentState) -> None:
        """Write an agent's presence to the store, so a rebuilt routing state has it."""
        async with self.store.unit_of_work() as uow:
            await uow.accounts.keep_presence(
                agent.agent_id, agent.presence.value, agent.away_reason, agent.presence_since
            )
            await uow.commit()

    async def refresh_agent(self, user_id: int) -> None:
        """Re-read one agent's profile (teams, skills, capacity) after an admin changed it."""
        async with self.store.unit_of_work() as uow:
            profiles = await uow.accounts.agent_profiles([user_id])
        for profile in profiles:
            await self.state.put_agent(self.agent_state(profile, await self.state.agent(user_id)))

    # -- work arriving and leaving -----------------------------------------------------------

    async def _on_received(self, event: InteractionReceived) -> None:
        # Only new interactions need routing. A message continuing one that is still new
        # (its own opening not routed yet) leaves it to that opening's event, which the outbox
        # delivers at least once, or to the reconciler.
        if event.opened:
            await self._arrivals.submit(event)

    async def _route_arrivals(self, events: list[InteractionReceived]) -> list[None]:
        """Route the new interactions among these events, as one batch.

        The events say what routing needs of the interactions (the queue, when they opened);
        their customers' traits are read, and their last agents only where a queue is sticky,
        except for customers created with the message (nothing to read: no read at all when
        every arrival is a first contact).
        An event delivered again, for work no longer new, changes nothing: the queued
        transition is a compare-and-set from new.
        """
        unique = dict((e.interaction_id, e) for e in events).values()
        arrived = [self._opened(e) for e in unique if e.opened_at is not None]
        older = [e.interaction_id for e in unique if e.opened_at is None]  # events of old rows
        created = {e.customer_id for e in unique if e.customer_created}  # no traits, no history
        sticky = any(q.sticky_seconds for q in self.policy.queues.values())
        traits: dict[int, tuple[dict[str, Any], list[str]]] = {}
        last_agents: dict[int, int] = {}
        if older or any(i.customer_id not in created for i in arrived):
            async with self.store.reading() as uow:
                if older:
                    arrived += [i for i in await uow.interactions.many(older) if i.state is S.NEW]
                customers = {i.customer_id for i in arrived} - created
                traits = await uow.customers.traits(customers)
                last_agents = await uow.interactions.last_agents(customers) if sticky else {}
        items = [
            (
                self._item(i, *traits.get(i.customer_id, ({}, [])), last_agents.get(i.customer_id)),
                i.priority,
            )
            for i in arrived
        ]
        if items:
            try:
                await self._router().route_many(items)
            except HubError:
                log.exception("could not route", interactions=[i.id for i in arrived])
        return [None] * len(events)

    @staticmethod
    def _opened(event: InteractionReceived) -> Interaction:
        """The new interaction as the event that opened it tells it."""
        assert event.opened_at is not None
        opened_at = datetime.fromisoformat(event.opened_at)
        return Interaction(
            id=event.interaction_id,
            customer_id=event.customer_id,
            channel=event.channel,
            state=S.NEW,
            queue_id=event.queue_id,
            opened_at=opened_at,
            updated_at=opened_at,
        )

    async def _route(self, interaction: Interaction) -> None:
        item = await self._work_item(interaction)
        try:
            await self._router().route(item, base_priority=interaction.priority)
        except HubError:
            log.exception("could not route", interaction_id=interaction.id)

    async def _work_item(self, interaction: Interaction, **changes: Any) -> WorkItem:
        async with self.store.unit_of_work() as uow:
            customer = await uow.customers.get(interaction.customer_id)
            last_agent = await uow.interactions.last_agent_of(
                interaction.customer_id, excluding=interaction.id
            )
        fields = customer.custom_fields if customer else {}
        tags = list(customer.tags) if customer else []
        item = self._item(interaction, fields, tags, last_agent)
        for name, value in changes.items():
            setattr(item, name, value)
        return item

    def _item(
        self,
        interaction: Interaction,
        fields: dict[str, Any],
        tags: list[str],
        last_agent: int | None,
    ) -> WorkItem:
        """The work item routing decides on, from the interaction and its customer's traits."""
        placed = interaction.queued_at or interaction.opened_at
        return WorkItem(
            interaction_id=interaction.id,
            customer_id=interaction.customer_id,
            channel=interaction.channel,
            queue=self._queue_names.get(interaction.queue_id or -1, ""),
            priority=0,
            enqueued_at=placed,
            queue_entered_at=self.clock(),
            language=_text(fields.get("language")),
            vip=bool(fields.get("vip")) or "vip" in tags,
            tier=_text(fields.get("tier")),
            tags=frozenset(tags),
            last_agent_id=last_agent,
            attributes={k: v for k, v in fields.items() if isinstance(v, str | int | float | bool)},
        )

    async def _on_closed(self, event: InteractionClosed) -> None:
        previous = InteractionState(event.previous_state)
        if previous in (S.NEW, S.QUEUED, S.OFFERED):
            await self._router().abandon(event.interaction_id)
        elif previous is S.ASSIGNED and event.agent_id is not None:
            async with self.store.unit_of_work() as uow:
                interaction = await uow.interactions.get(event.interaction_id)
            if interaction is not None:
                await self._router().finish(event.agent_id, interaction.channel)

    async def abandon(self, interaction_id: int, reason: str) -> None:
        """The customer left before an agent took the work (a caller hung up while waiting)."""
        await self._router().abandon(interaction_id)
        await self.transition(
            interaction_id,
            S.ABANDONED,
            reason=f"Abandoned: {reason}",
            events=[InteractionAbandoned(interaction_id, reason)],
        )

    # -- agents ------------------------------------------------------------------------------

    async def set_presence(
        self, principal: Principal, presence: Presence, reason: str | None
    ) -> AgentState:
        """An agent goes available, away (with a reason) or offline."""
        if await self.state.agent(principal.user_id) is None:
            await self.refresh_agent(principal.user_id)
        if await self.state.agent(principal.user_id) is None:
            raise Conflict(f"a {principal.role} does not take work")
        agent = await self._router().set_presence(principal.user_id, presence, reason)
        await self.keep_presence(agent)
        await self.bus.publish([AgentStateChanged(principal.user_id, presence.value, reason)])
        return agent

    async def rang(self, interaction_id: int, agent_id: int) -> datetime | None:
        """The agent's console is being told of the offer: until when it rings (None: gone)."""
        return await self._router().rang(interaction_id, agent_id)

    async def offers_for(self, agent_id: int) -> list[WorkItem]:
        """The work ringing at an agent now."""
        return await self._router().offers_of(agent_id)

    async def accept(self, principal: Principal, interaction_id: int) -> None:
        """The agent takes the work offered to them."""
        await self._router().accept(principal.user_id, interaction_id)

    async def decline(self, principal: Principal, interaction_id: int) -> None:
        """The agent passes; the work goes to the next agent."""
        await self._router().decline(principal.user_id, interaction_id)

    async def end(self, principal: Principal, interaction_id: int) -> None:
        """The agent is done talking: the interaction goes to wrap-up, capacity is freed."""
        await self._assigned_to(principal, interaction_id, "end")
        await self.wrap_up(interaction_id, author=principal.user_id)

    async def wrap_up(
        self, interaction_id: int, *, reason: str = "Wrap-up", author: int | None = None
    ) -> bool:
        """Assigned work is over (the agent said so, or the caller hung up): free the agent."""
        async with self.store.unit_of_work() as uow:
            interaction = await uow.interactions.get(interaction_id)
        if interaction is None or interaction.assigned_user_id is None:
            return False
        ended = InteractionEnded(
            interaction.id, interaction.customer_id, interaction.assigned_user_id
        )
        if not await self.transition(
            interaction_id,
            S.WRAP_UP,
            expected=S.ASSIGNED,
            reason=reason,
            author=author,
            events=[ended],
        ):
            return False
        await self._router().finish(interaction.assigned_user_id, interaction.channel)
        return True

    async def assign_outbound(self, principal: Principal, interaction_id: int) -> None:
        """Work the agent starts (a click-to-call) is theirs at once and counts on their load."""
        if await self.state.agent(principal.user_id) is None:
            await self.refresh_agent(principal.user_id)
        if await self.state.agent(principal.user_id) is None:
            raise Conflict(f"a {principal.role} does not take work")
        async with self.store.unit_of_work() as uow:
            interaction = await uow.interactions.get(interaction_id)
        if interaction is None:
            raise NotFound(f"no interaction {interaction_id}")
        if not await self.transition(
            interaction_id,
            S.ASSIGNED,
            expected=S.NEW,
            reason="Placed by agent",
            author=principal.user_id,
            assigned_user_id=principal.user_id,
            events=[
                InteractionAssigned(interaction_id, interaction.customer_id, principal.user_id)
            ],
        ):
            raise Conflict(f"interaction {interaction_id} is already being worked")
        await self.state.add_load(principal.user_id, Channel.VOICE, 1)

    async def place_in_line(self, interaction_id: int) -> PlaceInLine | None:
        """Where waiting work stands in its queue, and about how long it will wait.

        The estimate is the standard one: rounds of agents ahead of it (its position over the
        agents signed in to the queue's team) times the queue's handling time in the last
        hour, or ``DEFAULT_HANDLE_SECONDS`` before there is one.
        """
        item = await self.state.item(interaction_id)
        if item is None:
            return None
        waiting = await self.state.waiting(frozenset({item.queue}))
        ahead = sum(1 for other in waiting if _ahead_of(other, item))
        queue = self._router().queue_of(item.channel, item.queue)
        agents = [
            a for a in await self.state.agents(queue.team) if a.presence is not Presence.OFFLINE
        ]
        handle = DEFAULT_HANDLE_SECONDS
        queue_id = self.queue_id(queue.name)
        now = self.clock()
        if queue_id is not None:
            async with self.store.unit_of_work() as uow:
                recent = await uow.interactions.queue_activity(
                    queue_id, now - timedelta(hours=1), now
                )
            figures = window_stats(
                recent, now - timedelta(hours=1), now, queue.sla_seconds, rolling=True
            )
            handle = figures.aht_seconds or handle
        position = ahead + 1
        if not agents:
            return PlaceInLine(position, len(waiting), None)
        rounds = -(-position // len(agents))  # ceiling
        return PlaceInLine(position, len(waiting), rounds * handle)

    async def transfer(
        self,
        principal: Principal,
        interaction_id: int,
        *,
        queue: str | None,
        agent_id: int | None,
    ) -> None:
        """Hand assigned work to a queue (it keeps its place in line) or to a colleague."""
        if (queue is None) == (agent_id is None):
            raise ValidationError("transfer to a queue or to an agent, one of the two")
        interaction = await self._assigned_to(principal, interaction_id, "transfer")
        holder = interaction.assigned_user_id
        assert holder is not None
        router = self._router()
        target = router.queue_of(interaction.channel, queue or None) if queue else None
        item = await self._work_item(interaction, queue=target.name if target else "")
        if not await self.transition(
            interaction_id,
            S.QUEUED,
            expected=S.ASSIGNED,
            reason="Transferred",
            author=principal.user_id,
            assigned_user_id=None,
        ):
            raise Conflict(f"interaction {interaction_id} changed meanwhile")
        if target is not None:
            await router.transfer_to_queue(holder, item, target.name)
            return
        assert agent_id is not None
        try:
            await router.transfer_to_agent(holder, item, agent_id)
        except Conflict:
            await self.transition(
                interaction_id, S.ASSIGNED, expected=S.QUEUED, assigned_user_id=holder
            )
            raise

    async def move(self, principal: Principal, interaction_id: int, queue: str) -> WorkItem:
        """A supervisor moves waiting work to another queue (noted on the timeline)."""
        if queue not in self._router().policy.queues:
            raise ValidationError(f"no queue {queue!r} in the routing policy", field="queue")
        return await self._router().move(interaction_id, queue, f"moved by {principal.username}")

    async def _assigned_to(
        self, principal: Principal, interaction_id: int, action: str
    ) -> Interaction:
        """Assigned work the caller may act on: theirs, or (supervisors) their team's."""
        async with self.store.unit_of_work() as uow:
            interaction = await visible_interaction(uow, principal, interaction_id)
        require_handler(principal, interaction, action)
        if interaction.state is not S.ASSIGNED or interaction.assigned_user_id is None:
            raise Conflict(f"interaction {interaction_id} is not assigned to anyone now")
        return interaction

    # -- persisting ----------------------------------------------------------------------------

    async def transition(
        self,
        interaction_id: int,
        target: InteractionState,
        *,
        expected: InteractionState | frozenset[InteractionState] | None = None,
        reason: str | None = None,
        author: int | None = None,
        kind: EventKind = EventKind.STATUS_CHANGE,
        events: list[Any] | None = None,
        closed_notice: bool = False,
        **changes: Any,
    ) -> bool:
        """Move an interaction along its state machine (compare-and-set), note it, announce it.

        Returns False when the interaction is gone or no longer in ``expected``.
        """
        now = self.clock()
        async with self.store.unit_of_work() as uow:
            interaction = await uow.interactions.get(interaction_id, lock=True)
            allowed = {expected} if isinstance(expected, InteractionState) else expected
            if interaction is None or (allowed is not None and interaction.state not in allowed):
                return False
            previous = interaction.state
            before = (previous, interaction.queue_id)
            try:
                interaction.move_to(target, now)
            except IllegalTransition:
                log.warning(
                    "routing transition refused",
                    interaction_id=interaction_id,
                    current=previous.value,
                    target=target.value,
                )
                return False
            for name, value in changes.items():
                setattr(interaction, name, value)
            if not await uow.interactions.save_state(interaction, previous):
                return False
            changed = before != (interaction.state, interaction.queue_id)
            if reason is not None and (changed or closed_notice):
                await uow.timeline.append(
                    customer_id=interaction.customer_id,
                    interaction_id=interaction.id,
                    kind=kind,
                    direction=Direction.INTERNAL,
                    occurred_at=now,
                    channel=interaction.channel,
                    author_id=author,
                    body=reason,
                    data={"from": previous.value, "to": target.value},
                )
            for event in events or ():
                uow.record(event)
            await uow.commit()
        return True

    def queue_id(self, name: str) -> int | None:
        """The store id of a queue of the policy."""
        return self._queue_ids.get(name)

    def queue_name(self, queue_id: int) -> str | None:
        """The name of a queue by store id."""
        return self._queue_names.get(queue_id)


DEFAULT_HANDLE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class PlaceInLine:
    """A waiting contact's position (1 = next) and estimated wait (None: nobody signed in)."""

    position: int
    waiting: int
    estimated_seconds: float | None


def _ahead_of(other: WorkItem, item: WorkItem) -> bool:
    """Whether other is served before item: higher priority, or same and earlier in line."""

    def order(work: WorkItem) -> tuple[int, datetime, int]:
        return (-work.priority, work.enqueued_at, work.interaction_id)

    return order(other) < order(item)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
