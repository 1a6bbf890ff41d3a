"""Erlang C / Erlang A, and the simulator (driving the real router) agreeing with them."""

from __future__ import annotations

import math

import pytest

from hub.routing.erlang import agents_for_service_level, erlang_a, erlang_c
from hub.routing.simulator import simulate


def test_erlang_c_matches_published_values() -> None:
    # 100 calls/h of 180 s is 5 Erlangs; on 6 agents P(wait) = 0.5875 (standard tables).
    metrics = erlang_c(100, 180, 6, 20)
    assert metrics.p_wait == pytest.approx(0.5875, abs=1e-4)
    assert metrics.asa_seconds == pytest.approx(0.5875 * 180 / (6 - 5), rel=1e-3)
    assert metrics.service_level == pytest.approx(1 - 0.5875 * math.exp(-20 / 180), abs=1e-4)
    assert metrics.occupancy == pytest.approx(5 / 6)
    overloaded = erlang_c(100, 180, 5, 20)
    assert overloaded.p_wait == 1.0
    assert overloaded.asa_seconds == math.inf


def test_erlang_a_becomes_erlang_c_as_patience_grows() -> None:
    c = erlang_c(360, 240, 28, 20)
    a = erlang_a(360, 240, 28, 1e9, 20)
    for name in ("p_wait", "service_level", "asa_seconds", "occupancy"):
        assert getattr(a, name) == pytest.approx(getattr(c, name), rel=1e-4), name
    assert a.abandon_rate < 1e-6


def test_erlang_a_stays_finite_when_offered_more_than_the_agents_can_take() -> None:
    metrics = erlang_a(900, 200, 45, 90, 20)  # 50 Erlangs on 45 agents
    assert 0 < metrics.abandon_rate < 0.5
    assert metrics.occupancy < 1


def test_staffing_for_80_in_20() -> None:
    metrics = agents_for_service_level(300, 240, 0.8, 20)
    assert metrics.service_level >= 0.8
    assert erlang_c(300, 240, metrics.agents - 1, 20).service_level < 0.8
    with_abandon = agents_for_service_level(300, 240, 0.8, 20, patience_seconds=120)
    assert with_abandon.agents <= metrics.agents


@pytest.mark.parametrize(
    ("arrivals_per_hour", "aht", "agents", "patience"),
    [
        (300, 120, 13, None),  # Erlang C, 10 Erlangs, occupancy 0.77
        (60, 300, 7, None),  # Erlang C, small team, long calls
        (100, 180, 6, 60),  # Erlang A, impatient callers
        (900, 200, 45, 90),  # Erlang A, offered more than the agents can take
        (240, 300, 16, 180),  # Erlang A, heavy load
    ],
)
async def test_the_simulator_agrees_with_erlang(
    arrivals_per_hour: float, aht: float, agents: int, patience: float | None
) -> None:
    simulated = await simulate(
        arrivals_per_hour=arrivals_per_hour,
        aht_seconds=aht,
        agents=agents,
        contacts=50_000,
        sl_seconds=20,
        patience_seconds=patience,
        seed=11,
    )
    expected = (
        erlang_c(arrivals_per_hour, aht, agents, 20)
        if patience is None
        else erlang_a(arrivals_per_hour, aht, agents, patience, 20)
    )
    assert simulated.p_wait == pytest.approx(expected.p_wait, abs=0.03)
    assert simulated.service_level == pytest.approx(expected.service_level, abs=0.03)
    assert simulated.asa_seconds == pytest.approx(expected.asa_seconds, rel=0.15)
    assert simulated.abandon_rate == pytest.approx(expected.abandon_rate, abs=0.01)
    assert simulated.occupancy == pytest.approx(expected.occupancy, abs=0.015)
