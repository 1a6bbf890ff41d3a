"""Queue reports: live figures, rolling windows and fixed intervals for one queue."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from hub.domain.interaction import Interaction
from hub.routing.policy import QueuePolicy
from hub.routing.stats import intervals, live_stats, window_stats

if TYPE_CHECKING:
    from hub.routing.service import RoutingService


async def queue_report(
    service: RoutingService,
    queue: QueuePolicy,
    *,
    windows: tuple[int, ...],
    interval_minutes: int | None,
    interval_count: int,
) -> dict[str, Any]:
    """Live figures, rolling windows and (optionally) fixed intervals for one queue."""
    now = service.clock()
    waiting = await service.state.waiting(frozenset({queue.name}))
    sizes = await service.state.queue_sizes()
    agents = await service.state.agents(queue.team)
    report: dict[str, Any] = {
        "id": service.queue_id(queue.name),
        "name": queue.name,
        "team": queue.team,
        "sla_seconds": queue.sla_seconds,
        "open": queue.calendar is None or queue.calendar.is_open(now),
        "live": live_stats(waiting, sizes.get(queue.name, 0) - len(waiting), agents, now),
    }
    queue_id = service.queue_id(queue.name)
    longest = max([*windows, (interval_minutes or 0) * interval_count], default=0)
    activity: list[Interaction] = []
    if queue_id is not None and longest:
        async with service.store.unit_of_work() as uow:
            activity = await uow.interactions.queue_activity(
                queue_id, now - timedelta(minutes=longest), now
            )
    report["windows"] = {
        f"{minutes}m": window_stats(
            activity, now - timedelta(minutes=minutes), now, queue.sla_seconds, rolling=True
        ).as_dict()
        for minutes in windows
    }
    if interval_minutes:
        report["intervals"] = [
            w.as_dict()
            for w in intervals(
                activity,
                now,
                minutes=interval_minutes,
                count=interval_count,
                sla_seconds=queue.sla_seconds,
            )
        ]
    return report
