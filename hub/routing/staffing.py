"""Staffing answers from the Erlang formulas, and the service-level curve as a picture."""

from __future__ import annotations

import math
from pathlib import Path

from hub.routing.erlang import QueueMetrics, offered_load, queue_metrics


def curve(
    arrivals_per_hour: float,
    aht_seconds: float,
    sl_seconds: float,
    patience_seconds: float | None,
    agents: range,
) -> list[QueueMetrics]:
    """Queue metrics for each head count in agents."""
    return [
        queue_metrics(arrivals_per_hour, aht_seconds, n, sl_seconds, patience_seconds)
        for n in agents
    ]


def plot_service_level(
    path: Path,
    points: list[QueueMetrics],
    *,
    target: float,
    sl_seconds: float,
    arrivals_per_hour: float,
    aht_seconds: float,
) -> None:
    """Write a PNG of service level (and occupancy) against head count."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to the file
    import matplotlib.pyplot as plt

    agents = [p.agents for p in points]
    figure, axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    axis.plot(agents, [p.service_level * 100 for p in points], marker="o", label="service level")
    axis.plot(agents, [p.occupancy * 100 for p in points], linestyle="--", label="occupancy")
    axis.axhline(target * 100, color="grey", linewidth=1, label=f"target {target:.0%}")
    axis.set_xlabel("agents")
    axis.set_ylabel("%")
    axis.set_ylim(0, 100)
    load = offered_load(arrivals_per_hour, aht_seconds)
    axis.set_title(
        f"{arrivals_per_hour:g} contacts/h, AHT {aht_seconds:g} s ({load:.1f} Erlangs): "
        f"answered within {sl_seconds:g} s"
    )
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def curve_range(arrivals_per_hour: float, aht_seconds: float, needed: int) -> range:
    """Head counts worth drawing: from just above the load to a few past what is needed."""
    low = max(1, math.floor(offered_load(arrivals_per_hour, aht_seconds)))
    return range(low, max(needed + 5, low + 6))
