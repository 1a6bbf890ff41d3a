from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.domain.interaction import Channel
from hub.routing.policy import PolicyError, load_policy, parse_policy

EXAMPLE = Path(__file__).parent.parent.parent / "config" / "routing.example.toml"


def test_the_example_policy_loads() -> None:
    policy = load_policy(EXAMPLE)
    billing = policy.queues["billing"]
    assert billing.step_at(0).target.source.startswith("agent.skills['billing'] >= 4")
    assert billing.step_at(45).target.source == "agent.skills['billing'] >= 2"
    assert billing.step_at(200).overflow == "general"
    assert policy.queue_for(Channel.VOICE, None) is billing
    assert policy.queue_for(Channel.SMS, None) is policy.queues["general"]
    assert policy.queue_for(Channel.SMS, "billing") is billing
    assert policy.capacity[Channel.SMS] == 3


def test_business_hours_with_holidays_and_timezones() -> None:
    calendar = load_policy(EXAMPLE).queues["billing"].calendar
    assert calendar is not None
    # Monday 2026-11-23, 14:00 UTC is 09:00 in New York.
    assert calendar.is_open(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    assert not calendar.is_open(datetime(2026, 11, 23, 13, 59, tzinfo=UTC))
    assert not calendar.is_open(datetime(2026, 11, 27, 17, 45, tzinfo=UTC))  # Friday lunch
    assert not calendar.is_open(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # Thanksgiving
    assert not calendar.is_open(datetime(2026, 12, 24, 15, 0, tzinfo=UTC))  # own holiday
    assert not calendar.is_open(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday


QUEUE = '[[queues]]\nname = "{name}"\nteam = "support"\n'


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("queues = [", 1, "Invalid value"),
        ("a = 1\nb = = 2\n", 2, "Invalid value"),
        ('default_queue = "nope"\n' + QUEUE.format(name="a"), 1, "unknown queue 'nope'"),
        (QUEUE.format(name="a") + 'overflow = "b"\n', 4, "unknown queue 'b'"),
        (
            QUEUE.format(name="a")
            + 'overflow = "b"\n'
            + QUEUE.format(name="b")
            + 'overflow = "a"\n',
            8,
            "overflow cycle a -> b -> a",
        ),
        (
            QUEUE.format(name="a") + "[[queues.steps]]\nafter_seconds = 0\ntarget = 'agent.x >'\n",
            6,
            "does not parse",
        ),
        (
            QUEUE.format(name="a")
            + QUEUE.format(name="b")
            + "[[queues.steps]]\nafter_seconds = 0\n[[queues.steps]]\nafter_seconds = 10\n"
            + "target = 'evil()'\n",
            11,
            "Call is not allowed",
        ),
        (QUEUE.format(name="a") + "colour = 'red'\n", 4, "Extra inputs"),
        (QUEUE.format(name="a") + "sla_seconds = -1\n", 4, "greater than or equal"),
        (
            '[[calendars]]\nname = "c"\ntimezone = "Mars/Olympus"\n' + QUEUE.format(name="a"),
            3,
            "unknown timezone",
        ),
        (
            '[[calendars]]\nname = "c"\n[calendars.week]\nmon = ["17:00-09:00"]\n'
            + QUEUE.format(name="a"),
            4,
            "not a valid range",
        ),
        (QUEUE.format(name="a") + QUEUE.format(name="a"), 5, "defined twice"),
        ("", 1, "queues"),
    ],
)
def test_a_bad_policy_is_refused_with_its_line_and_reason(
    text: str, line: int, reason: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="routing.toml")
    message = str(caught.value)
    assert message.startswith(f"routing.toml line {line}:"), message
    assert reason in message, message
