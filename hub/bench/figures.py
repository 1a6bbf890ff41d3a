"""Small statistics the benchmarks share."""

from __future__ import annotations


def percentile(samples: list[float], fraction: float) -> float:
    """The sample at the given fraction of the sorted samples (nearest rank)."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]
