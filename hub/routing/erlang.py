"""Queueing formulas for staffing: Erlang C (callers wait forever) and Erlang A (they give up).

Definitions, used alike by the simulator so the two can be compared:

- ``p_wait``: the share of contacts that find every agent busy on arrival;
- ``service_level``: the share of all contacts answered within ``sl_seconds``
  (a contact that abandons counts as not answered in time);
- ``asa_seconds``: the mean wait of the contacts that are answered (zero waits included);
- ``abandon_rate``: the share of contacts that give up before being answered;
- ``occupancy``: the share of agent time spent handling contacts.

Erlang C: A. K. Erlang (1917); Erlang A: Palm (1943), as in Garnett, Mandelbaum & Reiman,
"Designing a call center with impatient customers" (2002). Erlang A is computed exactly from
its birth-death chain (truncated where probabilities fall below 1e-15), with the waiting-time
distribution obtained by uniformization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """What a queue with these parameters does in the long run."""

    agents: int
    p_wait: float
    service_level: float
    asa_seconds: float
    abandon_rate: float
    occupancy: float


def offered_load(arrivals_per_hour: float, aht_seconds: float) -> float:
    """Traffic in Erlangs: arrivals per second times mean handling time."""
    return arrivals_per_hour / 3600.0 * aht_seconds


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability with no waiting room (the stable recursion)."""
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(
    arrivals_per_hour: float, aht_seconds: float, agents: int, sl_seconds: float
) -> QueueMetrics:
    """Erlang C: Poisson arrivals, exponential handling, infinite patience, FCFS."""
    load = offered_load(arrivals_per_hour, aht_seconds)
    if agents <= load:
        return QueueMetrics(agents, 1.0, 0.0, math.inf, 0.0, 1.0)
    b = erlang_b(agents, load)
    p_wait = agents * b / (agents - load * (1 - b))
    mu = 1.0 / aht_seconds
    drain = agents * mu - load * mu  # s*mu - lambda
    service_level = 1.0 - p_wait * math.exp(-drain * sl_seconds)
    asa = p_wait / drain
    return QueueMetrics(agents, p_wait, service_level, asa, 0.0, load / agents)


def erlang_a(
    arrivals_per_hour: float,
    aht_seconds: float,
    agents: int,
    patience_seconds: float,
    sl_seconds: float,
) -> QueueMetrics:
    """Erlang A: as Erlang C, but each waiting contact gives up after an exponential patience."""
    lam = arrivals_per_hour / 3600.0
    mu = 1.0 / aht_seconds
    theta = 1.0 / patience_seconds
    s = agents
    # Stationary distribution of the number in system, in log space for large s.
    log_pi = [0.0]
    for n in range(1, s + 1):
        log_pi.append(log_pi[-1] + math.log(lam) - math.log(n * mu))
    n = s
    while True:
        n += 1
        log_pi.append(log_pi[-1] + math.log(lam) - math.log(s * mu + (n - s) * theta))
        if log_pi[-1] - max(log_pi) < math.log(1e-15) and n > s + 10:
            break
    top = max(log_pi)
    weights = [math.exp(v - top) for v in log_pi]
    total = sum(weights)
    pi = [w / total for w in weights]

    p_wait = sum(pi[s:])
    mean_queue = sum((k - s) * pi[k] for k in range(s + 1, len(pi)))
    abandon = theta * mean_queue / lam

    # A contact arriving with n >= s in the system waits at position j = n - s + 1. At position
    # k it moves up at rate r_k = s*mu + (k-1)*theta and gives up at rate theta; the time spent
    # at each position does not depend on how it leaves (competing exponentials).
    positions = len(pi) - s
    rates = [s * mu + (k - 1) * theta for k in range(1, positions + 1)]
    served_from = [1.0] * (positions + 1)  # P(served | at position k), k = 0..positions
    mean_from = [0.0] * (positions + 1)  # E[wait | served, start at k]
    for k in range(1, positions + 1):
        r = rates[k - 1]
        served_from[k] = served_from[k - 1] * r / (r + theta)
        mean_from[k] = mean_from[k - 1] + 1.0 / (r + theta)
    answered = sum(pi[:s])  # those who do not wait
    waited_sum = 0.0
    for j in range(1, positions + 1):
        p_start = pi[s + j - 1]
        answered += p_start * served_from[j]
        waited_sum += p_start * served_from[j] * mean_from[j]
    asa = waited_sum / answered if answered else math.inf
    within = sum(pi[:s]) + _served_within(pi[s:], rates, theta, sl_seconds)
    occupancy = lam * (1 - abandon) / (s * mu)
    return QueueMetrics(s, p_wait, within, asa, abandon, occupancy)


def _served_within(start: list[float], rates: list[float], theta: float, t: float) -> float:
    """P(a waiting arrival is served within t), by uniformization of the position chain."""
    if t <= 0:
        return 0.0
    uniform = max(r + theta for r in rates)
    stay = [1.0 - (r + theta) / uniform for r in rates]
    up = [r / uniform for r in rates]
    vector = list(start)  # mass at positions 1..J
    served = 0.0
    weight = math.exp(-uniform * t)  # Poisson(uniform * t) probability of m jumps
    result = 0.0
    m = 0
    remaining = 1.0
    while remaining > 1e-12 and m < 100_000:
        result += weight * served
        remaining -= weight
        # one jump of the uniformized chain
        moved = [0.0] * len(vector)
        served += vector[0] * up[0]
        for k in range(len(vector)):
            moved[k] += vector[k] * stay[k]
            if k > 0:
                moved[k - 1] += vector[k] * up[k]
        vector = moved
        m += 1
        weight *= uniform * t / m
    return result


def queue_metrics(
    arrivals_per_hour: float,
    aht_seconds: float,
    agents: int,
    sl_seconds: float,
    patience_seconds: float | None = None,
) -> QueueMetrics:
    """Erlang A when callers give up (a patience is given), Erlang C when they wait forever."""
    if patience_seconds is None:
        return erlang_c(arrivals_per_hour, aht_seconds, agents, sl_seconds)
    return erlang_a(arrivals_per_hour, aht_seconds, agents, patience_seconds, sl_seconds)


def agents_for_service_level(
    arrivals_per_hour: float,
    aht_seconds: float,
    target: float,
    sl_seconds: float,
    patience_seconds: float | None = None,
) -> QueueMetrics:
    """The fewest agents that meet the service-level target (80/20: target 0.8, 20 s)."""
    load = offered_load(arrivals_per_hour, aht_seconds)
    agents = max(1, math.floor(load) + (0 if patience_seconds else 1))
    while True:
        metrics = queue_metrics(
            arrivals_per_hour, aht_seconds, agents, sl_seconds, patience_seconds
        )
        if metrics.service_level >= target:
            return metrics
        agents += 1
