from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.domain.interaction import (
    OPEN_STATES,
    TRANSITIONS,
    Channel,
    Interaction,
    InteractionState,
    check_transition,
)
from hub.errors import IllegalTransition

S = InteractionState
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def interaction(state: InteractionState) -> Interaction:
    return Interaction(1, 1, Channel.SMS, state, T0, T0)


def test_the_usual_life_of_an_interaction() -> None:
    item = interaction(S.NEW)
    for step, target in enumerate([S.QUEUED, S.OFFERED, S.ASSIGNED, S.WRAP_UP, S.CLOSED]):
        previous = item.move_to(target, T0 + timedelta(seconds=step))
        assert item.state is target
        assert previous is not target
    assert item.closed_at == T0 + timedelta(seconds=4)
    assert not item.is_open


def test_a_declined_offer_goes_back_to_the_queue() -> None:
    item = interaction(S.OFFERED)
    item.move_to(S.QUEUED, T0)
    assert item.state is S.QUEUED
    assert item.closed_at is None


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.NEW, S.WRAP_UP),
        (S.QUEUED, S.WRAP_UP),
        (S.OFFERED, S.CLOSED),
        (S.WRAP_UP, S.ASSIGNED),
        (S.CLOSED, S.QUEUED),
        (S.ABANDONED, S.QUEUED),
        (S.CLOSED, S.CLOSED),
    ],
)
def test_illegal_transitions_are_errors_that_change_nothing(
    current: InteractionState, target: InteractionState
) -> None:
    item = interaction(current)
    with pytest.raises(IllegalTransition) as caught:
        item.move_to(target, T0 + timedelta(hours=1))
    assert item.state is current
    assert item.updated_at == T0
    assert caught.value.status == 409
    assert caught.value.details == {"current": current.value, "target": target.value}


def test_every_state_has_an_entry_and_finished_states_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(InteractionState)
    assert set(InteractionState) - OPEN_STATES == {S.CLOSED, S.ABANDONED}
    for state in OPEN_STATES:
        check_transition(state, next(iter(TRANSITIONS[state])))


def test_abandon_is_possible_only_before_an_agent_has_it() -> None:
    for state in (S.NEW, S.QUEUED, S.OFFERED):
        check_transition(state, S.ABANDONED)
    with pytest.raises(IllegalTransition):
        check_transition(S.ASSIGNED, S.ABANDONED)
