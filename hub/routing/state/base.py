"""The routing state contract.

The engine decides from snapshots; the state applies a decision only if it still holds
(``reserve``, ``accept``), atomically. That is what keeps several hub processes sharing one
Redis from offering or assigning one interaction twice, or overfilling an agent.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from hub.domain.interaction import Channel
from hub.routing.engine import has_room, idle_order
from hub.routing.model import AgentState, Presence, WorkItem


@dataclass(frozen=True, slots=True)
class Limits:
    """The capacity rule's settings, from the policy."""

    capacity: Mapping[Channel, int] = field(default_factory=dict)
    voice_exclusive: bool = True


class RoutingState(abc.ABC):
    """Agents, waiting work and offers. Snapshots returned are not to be changed by callers."""

    limits: Limits | None = None

    # -- agents ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def put_agent(self, agent: AgentState) -> None:
        """Store an agent's profile and presence (load is kept if the agent is known)."""

    @abc.abstractmethod
    async def agent(self, agent_id: int) -> AgentState | None:
        """One agent, or None."""

    @abc.abstractmethod
    async def agents(self, team: str | None = None) -> list[AgentState]:
        """Every agent, or the agents of one team."""

    async def candidates(self, team: str, channel: Channel, now: datetime) -> Iterable[AgentState]:
        """Agents of the team who may be offered one more of the channel now (available, out
        of wrap-up, room on it), longest idle first, to be read before the caller's next await.
        A state that indexes them (memory) yields them as they are read, so a decision that
        stops at the first eligible agent reads no further; the default filters the team's
        agents."""
        limits = self.limits
        found = [
            a
            for a in await self.agents(team)
            if limits is None or has_room(a, channel, limits.capacity, limits.voice_exclusive, now)
        ]
        return sorted(found, key=idle_order)

    def use_limits(self, limits: Limits) -> None:
        """The capacity rule in force (the router's, from its policy): what ``candidates``
        counts as room."""
        self.limits = limits

    @abc.abstractmethod
    async def set_presence(
        self, agent_id: int, presence: Presence, reason: str | None, now: datetime
    ) -> AgentState | None:
        """Change presence; becoming available restarts the agent's idle time."""

    @abc.abstractmethod
    async def add_load(self, agent_id: int, channel: Channel, count: int) -> None:
        """Count interactions already assigned to an agent (used when rebuilding)."""

    @abc.abstractmethod
    async def finish(
        self, agent_id: int, channel: Channel, now: datetime, wrap_up_until: datetime | None
    ) -> None:
        """An assigned interaction is done: free its capacity, start wrap-up if given."""

    # -- work --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def add_item(self, item: WorkItem) -> bool:
        """Put work in its queue; False if that interaction is already there."""

    @abc.abstractmethod
    async def item(self, interaction_id: int) -> WorkItem | None:
        """Waiting or offered work, or None."""

    @abc.abstractmethod
    async def waiting(
        self, queues: frozenset[str] | None = None, *, limit: int | None = None
    ) -> list[WorkItem]:
        """Work not being offered, in these queues (or all), by priority and place in line.

        limit: at most that many of each queue, its first in line (a freed agent looks at the
        heads of its queues, not at the whole backlog).
        """

    @abc.abstractmethod
    async def queue_sizes(self) -> dict[str, int]:
        """How many items (waiting or offered) each queue holds."""

    @abc.abstractmethod
    async def remove_item(self, interaction_id: int) -> WorkItem | None:
        """Take work out (abandoned, closed); an offer on it is withdrawn."""

    @abc.abstractmethod
    async def move_item(
        self, interaction_id: int, queue: str, priority: int, now: datetime
    ) -> WorkItem | None:
        """Move waiting work to another queue; it keeps its place in line (enqueued_at)."""

    @abc.abstractmethod
    async def mark_closed_told(self, interaction_id: int) -> None:
        """Remember the channel was told the queue is closed."""

    # -- offers (atomic) ---------------------------------------------------------------------

    @abc.abstractmethod
    async def reserve(
        self,
        interaction_id: int,
        agent_id: int,
        expires_at: datetime,
        limits: Limits,
        now: datetime,
        *,
        again: bool = False,
    ) -> bool:
        """Offer work to an agent if it is still waiting and the agent still has room.

        An agent the work was taken from before (``excluded``) is refused unless ``again``:
        the engine decided nobody else can take it.
        """

    @abc.abstractmethod
    async def release_offer(
        self, interaction_id: int, agent_id: int, *, exclude: bool, now: datetime
    ) -> WorkItem | None:
        """Withdraw an offer (declined, rang out, agent left); the work waits again.

        exclude: the agent passed on it (declined, rang out); noted with the time, so it goes
        to others first.
        """

    @abc.abstractmethod
    async def ring(self, interaction_id: int, agent_id: int, until: datetime) -> bool:
        """The agent has been told of the offer: it rings until ``until`` (False: not theirs)."""

    @abc.abstractmethod
    async def accept(self, interaction_id: int, agent_id: int) -> WorkItem | None:
        """Turn an offer into an assignment; None unless it was offered to this agent."""

    @abc.abstractmethod
    async def expired_offers(self, now: datetime) -> list[WorkItem]:
        """Offers that have rung out."""

    # -- agents' connections -----------------------------------------------------------------

    @abc.abstractmethod
    async def seen(self, agent_ids: Collection[int], now: datetime) -> None:
        """These agents hold a console connection now (on some hub process)."""

    @abc.abstractmethod
    async def take_unseen(self, before: datetime) -> list[int]:
        """Agents last seen connected before ``before``, forgotten as they are returned.

        Each is returned to one caller only, so one hub process acts on a lost agent.
        """

    @abc.abstractmethod
    async def set_load(self, agent_id: int, channel: Channel, count: int) -> None:
        """Put an agent's load on a channel right (the reconciler, after a leak)."""

    @abc.abstractmethod
    async def claim_duty(self, name: str, seconds: float) -> bool:
        """Whether this caller does the named periodic duty now (one process per period)."""

    @abc.abstractmethod
    async def claim_rebuild(self) -> bool:
        """True once for a state that holds nothing yet: the caller rebuilds it from the store.

        A fresh state (a first start, or a Redis restarted without its data) answers True to
        one caller only, so one hub process rebuilds while the others go on.
        """

    async def start(self) -> None:  # noqa: B027  (optional hook)
        """Connect (no-op in memory)."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Disconnect (no-op in memory)."""
