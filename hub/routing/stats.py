"""Queue statistics: live figures from routing state, windows and intervals from the store.

Definitions (per queue, over a window):

- offered: contacts that entered the queue in the window;
- answered / abandoned: contacts an agent took / that left unanswered, in the window;
- service_level: answered within the queue's ``sla_seconds``, over answered + abandoned;
- asa_seconds: mean wait of the answered (from entering the line to being taken);
- aht_seconds: mean handling time (taken to closed, wrap-up included) of those closed;
- rated / csat_average: of those closed, how many the customer rated (web chat asks at the
  end), and their mean rating, 1-5;
- occupancy (live): agents with work over agents who are logged in and not away.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.domain.interaction import Interaction
from hub.routing.model import AgentActivity, AgentState, WorkItem


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What happened in one queue over one window."""

    start: datetime
    end: datetime
    offered: int
    answered: int
    abandoned: int
    answered_in_sla: int
    service_level: float | None
    asa_seconds: float | None
    aht_seconds: float | None
    rated: int = 0  # closed in the window with the customer's rating (web chat's CSAT)
    csat_average: float | None = None  # their mean rating, 1-5

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "answered_in_sla": self.answered_in_sla,
            "service_level": _round(self.service_level, 4),
            "asa_seconds": _round(self.asa_seconds, 1),
            "aht_seconds": _round(self.aht_seconds, 1),
            "rated": self.rated,
            "csat_average": _round(self.csat_average, 2),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def window_stats(
    interactions: list[Interaction],
    start: datetime,
    end: datetime,
    sla_seconds: float,
    *,
    rolling: bool = False,
) -> WindowStats:
    """Offered, answered, abandoned, service level, ASA and AHT over [start, end).

    A rolling window (the last N minutes) is (start, end]: what happened this instant counts.
    """

    def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
        if moment is None:
            return False
        return start < moment <= end if rolling else start <= moment < end

    offered = sum(_within(i.queued_at, start, end) for i in interactions)
    waits = [
        (i.answered_at - i.queued_at).total_seconds()
        for i in interactions
        if _within(i.answered_at, start, end) and i.queued_at is not None and i.answered_at
    ]
    abandoned = sum(_within(i.abandoned_at, start, end) for i in interactions)
    handled = [
        (i.closed_at - i.answered_at).total_seconds()
        for i in interactions
        if _within(i.closed_at, start, end) and i.answered_at is not None and i.closed_at
    ]
    ratings = [
        i.csat_score for i in interactions if _within(i.closed_at, start, end) and i.csat_score
    ]
    in_sla = sum(1 for w in waits if w <= sla_seconds)
    settled = len(waits) + abandoned
    return WindowStats(
        start=start,
        end=end,
        offered=offered,
        answered=len(waits),
        abandoned=abandoned,
        answered_in_sla=in_sla,
        service_level=in_sla / settled if settled else None,
        asa_seconds=sum(waits) / len(waits) if waits else None,
        aht_seconds=sum(handled) / len(handled) if handled else None,
        rated=len(ratings),
        csat_average=sum(ratings) / len(ratings) if ratings else None,
    )


def intervals(
    interactions: list[Interaction],
    end: datetime,
    *,
    minutes: int,
    count: int,
    sla_seconds: float,
) -> list[WindowStats]:
    """Consecutive fixed intervals (aligned to the clock, e.g. :00 :15 :30 :45) up to end."""
    size = timedelta(minutes=minutes)
    aligned = end.replace(second=0, microsecond=0)
    aligned -= timedelta(minutes=aligned.minute % minutes)
    if aligned < end:
        aligned += size
    starts = [aligned - size * (n + 1) for n in reversed(range(count))]
    return [window_stats(interactions, s, s + size, sla_seconds) for s in starts]


def live_stats(
    waiting: list[WorkItem], offered: int, agents: list[AgentState], now: datetime
) -> dict[str, Any]:
    """What a supervisor's board shows for one queue right now."""
    oldest = min((w.enqueued_at for w in waiting), default=None)
    activity = Counter(a.activity(now) for a in agents)
    working = activity[AgentActivity.BUSY]
    present = working + activity[AgentActivity.IDLE] + activity[AgentActivity.WRAP_UP]
    return {
        "waiting": len(waiting),
        "ringing": offered,
        "oldest_wait_seconds": None if oldest is None else round((now - oldest).total_seconds(), 1),
        "agents": {state.value: activity.get(state, 0) for state in AgentActivity},
        "occupancy": round(working / present, 4) if present else None,
    }
