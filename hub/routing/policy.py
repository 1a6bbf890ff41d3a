"""The routing policy: queues, widening steps, business hours, capacity, loaded from TOML.

`config/routing.example.toml` documents every key. Loading checks everything a running ACD
would trip over later (unknown queues, overflow cycles, expressions that do not parse, unknown
timezones) and names the line of the file in the error.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import pydantic
import tomli_w
from holidays import HolidayBase
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.domain.interaction import Channel
from hub.routing.expressions import TRUE, Expression, ExpressionError, compile_expression

AgentOrder = Literal["longest_idle", "least_occupied", "highest_proficiency"]
ClosedAction = Literal["voicemail", "callback", "message"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the line and the reason."""


# -- the file's shape -----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepFile(_Strict):
    after_seconds: int = Field(ge=0)
    target: str | None = None
    overflow: Name | None = None


class QueueFile(_Strict):
    name: Name
    team: Name
    channels: list[Channel] = Field(default_factory=list)
    priority: int = Field(default=0, ge=-1000, le=1000)
    vip_priority: int = Field(default=0, ge=0, le=1000)
    sla_seconds: int = Field(default=20, ge=1, le=86_400)
    calendar: Name | None = None
    closed_action: ClosedAction = "message"
    closed_message: str = "We are closed right now. We will get back to you."
    max_size: int | None = Field(default=None, ge=1)
    max_wait_seconds: int | None = Field(default=None, ge=1)
    overflow: Name | None = None
    sticky_seconds: int = Field(default=0, ge=0, le=3600)
    agent_order: AgentOrder | None = None
    skill: Name | None = None
    ring_seconds: int | None = Field(default=None, ge=5, le=600)
    steps: list[StepFile] = Field(default_factory=list)


class CalendarFile(_Strict):
    name: Name
    timezone: str = "UTC"
    week: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[str]] = Field(
        default_factory=dict
    )
    holidays: list[date] = Field(default_factory=list)
    holidays_country: str | None = None
    holidays_subdivision: str | None = None


class RouteFile(_Strict):
    channel: Channel
    queue: Name


class PolicyFile(_Strict):
    ring_seconds: int = Field(default=20, ge=5, le=600)
    wrap_up_seconds: int = Field(default=30, ge=0, le=3600)
    missed_on_ring_out: bool = True
    reoffer_after_seconds: int = Field(default=30, ge=0, le=3600)
    agent_order: AgentOrder = "longest_idle"
    default_queue: Name | None = None
    capacity: dict[Channel, int] = Field(default_factory=dict)
    voice_exclusive: bool = True
    calendars: list[CalendarFile] = Field(default_factory=list)
    queues: list[QueueFile] = Field(min_length=1)
    routes: list[RouteFile] = Field(default_factory=list)


# -- the policy the engine reads ------------------------------------------------------------

DEFAULT_CAPACITY: dict[Channel, int] = {
    Channel.VOICE: 1,
    Channel.SMS: 3,
    Channel.WEBCHAT: 3,
    Channel.EMAIL: 5,
    Channel.FAX: 5,
    Channel.API: 5,
}


@dataclass(frozen=True, slots=True)
class Step:
    """From after_seconds of waiting on: who may take the work, or where it overflows."""

    after_seconds: int
    target: Expression = TRUE
    overflow: str | None = None


@dataclass(frozen=True)
class Calendar:
    """Opening hours in a timezone, with holidays."""

    name: str
    timezone: ZoneInfo
    week: dict[int, tuple[tuple[time, time], ...]]
    holidays: frozenset[date]
    country: str | None = None
    subdivision: str | None = None

    @cached_property
    def _public_holidays(self) -> HolidayBase | None:
        if self.country is None:
            return None
        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    def is_open(self, now: datetime) -> bool:
        """Whether the calendar is open at the instant now."""
        local = now.astimezone(self.timezone)
        day = local.date()
        if day in self.holidays:
            return False
        public = self._public_holidays
        if public is not None and day in public:
            return False
        moment = local.time()
        return any(start <= moment < end for start, end in self.week.get(local.weekday(), ()))


@dataclass(frozen=True)
class QueuePolicy:
    """How one queue routes."""

    name: str
    team: str
    channels: frozenset[Channel]
    priority: int
    vip_priority: int
    sla_seconds: int
    calendar: Calendar | None
    closed_action: ClosedAction
    closed_message: str
    max_size: int | None
    max_wait_seconds: int | None
    overflow: str | None
    sticky_seconds: int
    agent_order: AgentOrder
    skill: str | None
    ring_seconds: int
    steps: tuple[Step, ...]

    def step_at(self, waited_seconds: float) -> Step:
        """The step in force after waiting this long (the last one whose time has come)."""
        current = self.steps[0]
        for step in self.steps:
            if waited_seconds >= step.after_seconds:
                current = step
        return current


@dataclass(frozen=True)
class Policy:
    """The whole routing policy."""

    queues: dict[str, QueuePolicy]
    routes: dict[Channel, str]
    default_queue: str | None
    capacity: dict[Channel, int]
    voice_exclusive: bool
    wrap_up_seconds: int
    # An offer that rings out puts its agent in Presence.MISSED (else they stay available).
    missed_on_ring_out: bool = True
    # An agent who declined or missed work may get it again after this long, if nobody else can.
    reoffer_after_seconds: int = 30
    source: str = field(default="", compare=False)

    def queue_for(self, channel: Channel, named: str | None) -> QueuePolicy | None:
        """The queue new work goes to: the one named, else the channel's route, else default."""
        name = named or self.routes.get(channel) or self.default_queue
        return None if name is None else self.queues.get(name)


# -- loading --------------------------------------------------------------------------------


def read_policy_file(path: Path) -> str:
    """A policy file's text, or PolicyError saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(f"{path}: cannot read: {err.strerror}") from err


def load_policy(path: Path) -> Policy:
    """Read and check a policy file, or raise PolicyError naming the line and the reason."""
    return parse_policy(read_policy_file(path), source=str(path))


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Check a policy given as TOML text."""
    return policy_from_document(_toml(text, source), source=source, text=text)


def policy_document(text: str, *, source: str = "<policy>") -> dict[str, Any]:
    """The policy TOML text as a checked document (PolicyError naming the line otherwise)."""
    document = _toml(text, source)
    policy_from_document(document, source=source, text=text)
    return document


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"at line (\d+)", str(err))
        line = int(found.group(1)) if found else max(1, len(text.splitlines()))
        raise PolicyError(f"{source} line {line}: {err}") from err


def policy_from_document(
    document: dict[str, Any], *, source: str = "<policy>", text: str | None = None
) -> Policy:
    """Check a policy document (the file's shape as data), or raise PolicyError.

    With the TOML text it came from, errors name its line; otherwise the field's path
    (``queues[2].steps[1].target``).
    """

    def where(location: tuple[str | int, ...]) -> str:
        if text is not None:
            return f"{source} line {_line_of(text, location)}"
        return f"{source}: {field_path(location)}" if location else source

    try:
        parsed = PolicyFile.model_validate(document)
    except pydantic.ValidationError as err:
        first = err.errors(include_url=False)[0]
        location = tuple(first["loc"])
        dotted = ".".join(str(p) for p in location)
        if text is None:
            raise PolicyError(f"{where(location)}: {first['msg']}") from err
        raise PolicyError(f"{where(location)}: {dotted}: {first['msg']}") from err
    return _build(parsed, where, source)


def field_path(location: tuple[str | int, ...]) -> str:
    """('queues', 2, 'steps', 1, 'target') as queues[2].steps[1].target."""
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def policy_toml(document: dict[str, Any]) -> str:
    """A policy document as TOML, in the shape config/routing.example.toml documents."""
    checked = PolicyFile.model_validate(document)
    return tomli_w.dumps(checked.model_dump(mode="json", exclude_none=True, exclude_defaults=True))


def _build(
    parsed: PolicyFile, where: Callable[[tuple[str | int, ...]], str], source: str
) -> Policy:
    def fail(location: tuple[str | int, ...], reason: str) -> PolicyError:
        return PolicyError(f"{where(location)}: {reason}")

    calendars: dict[str, Calendar] = {}
    for index, cal in enumerate(parsed.calendars):
        if cal.name in calendars:
            raise fail(("calendars", index, "name"), f"calendar {cal.name!r} is defined twice")
        try:
            zone = ZoneInfo(cal.timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise fail(
                ("calendars", index, "timezone"), f"unknown timezone {cal.timezone!r}"
            ) from err
        week: dict[int, tuple[tuple[time, time], ...]] = {}
        for day, ranges in cal.week.items():
            spans = []
            for text_range in ranges:
                match = _RANGE.match(text_range.strip())
                if not match:
                    raise fail(
                        ("calendars", index, "week", day), f"{text_range!r} is not HH:MM-HH:MM"
                    )
                h1, m1, h2, m2 = (int(g) for g in match.groups())
                if (
                    h1 > 23
                    or m1 > 59
                    or m2 > 59
                    or h2 > 24
                    or (h2 == 24 and m2)
                    or (h2, m2) <= (h1, m1)
                ):
                    raise fail(
                        ("calendars", index, "week", day), f"{text_range!r} is not a valid range"
                    )
                end = time.max if h2 == 24 else time(h2, m2)
                spans.append((time(h1, m1), end))
            week[WEEKDAYS.index(day)] = tuple(spans)
        if cal.holidays_country is not None:
            try:
                holidays.country_holidays(cal.holidays_country, subdiv=cal.holidays_subdivision)
            except NotImplementedError as err:
                raise fail(("calendars", index, "holidays_country"), str(err)) from err
        calendars[cal.name] = Calendar(
            cal.name,
            zone,
            week,
            frozenset(cal.holidays),
            cal.holidays_country,
            cal.holidays_subdivision,
        )

    names = [q.name for q in parsed.queues]
    queues: dict[str, QueuePolicy] = {}
    for index, q in enumerate(parsed.queues):
        if q.name in queues:
            raise fail(("queues", index, "name"), f"queue {q.name!r} is defined twice")
        if q.calendar is not None and q.calendar not in calendars:
            raise fail(("queues", index, "calendar"), f"unknown calendar {q.calendar!r}")
        if q.overflow is not None and q.overflow not in names:
            raise fail(
                ("queues", index, "overflow"),
                f"queue {q.name!r} overflows to unknown queue {q.overflow!r}",
            )
        steps: list[Step] = []
        for s_index, step in enumerate(q.steps or [StepFile(after_seconds=0)]):
            location: tuple[str | int, ...] = ("queues", index, "steps", s_index)
            if step.target is not None and step.overflow is not None:
                raise fail(location, "a step has a target or an overflow, not both")
            if step.overflow is not None and step.overflow not in names:
                raise fail(
                    (*location, "overflow"), f"step overflows to unknown queue {step.overflow!r}"
                )
            if steps and step.after_seconds <= steps[-1].after_seconds:
                raise fail(
                    (*location, "after_seconds"), "steps must come in increasing after_seconds"
                )
            target = TRUE
            if step.target is not None:
                try:
                    target = compile_expression(step.target)
                except ExpressionError as err:
                    raise fail((*location, "target"), f"target {step.target!r}: {err}") from err
            steps.append(Step(step.after_seconds, target, step.overflow))
        if steps[0].after_seconds != 0:
            raise fail(
                ("queues", index, "steps", 0, "after_seconds"), "the first step must start at 0"
            )
        if steps[0].overflow is not None:
            raise fail(("queues", index, "steps", 0), "the first step cannot be an overflow")
        if q.agent_order == "highest_proficiency" and q.skill is None:
            raise fail(("queues", index, "skill"), "highest_proficiency ordering needs a skill")
        queues[q.name] = QueuePolicy(
            name=q.name,
            team=q.team,
            channels=frozenset(q.channels),
            priority=q.priority,
            vip_priority=q.vip_priority,
            sla_seconds=q.sla_seconds,
            calendar=calendars.get(q.calendar) if q.calendar else None,
            closed_action=q.closed_action,
            closed_message=q.closed_message,
            max_size=q.max_size,
            max_wait_seconds=q.max_wait_seconds,
            overflow=q.overflow,
            sticky_seconds=q.sticky_seconds,
            agent_order=q.agent_order or parsed.agent_order,
            skill=q.skill,
            ring_seconds=q.ring_seconds or parsed.ring_seconds,
            steps=tuple(steps),
        )
    _refuse_overflow_cycles(queues, where)

    routes: dict[Channel, str] = {}
    for index, route in enumerate(parsed.routes):
        if route.queue not in queues:
            raise fail(("routes", index, "queue"), f"route to unknown queue {route.queue!r}")
        routes[route.channel] = route.queue
    if parsed.default_queue is not None and parsed.default_queue not in queues:
        raise fail(
            ("default_queue",), f"default_queue names unknown queue {parsed.default_queue!r}"
        )
    return Policy(
        queues=queues,
        routes=routes,
        default_queue=parsed.default_queue,
        capacity={**DEFAULT_CAPACITY, **parsed.capacity},
        voice_exclusive=parsed.voice_exclusive,
        wrap_up_seconds=parsed.wrap_up_seconds,
        missed_on_ring_out=parsed.missed_on_ring_out,
        reoffer_after_seconds=parsed.reoffer_after_seconds,
        source=source,
    )


def _overflow_targets(queue: QueuePolicy) -> set[str]:
    targets = {s.overflow for s in queue.steps if s.overflow}
    if queue.overflow:
        targets.add(queue.overflow)
    return targets


def _refuse_overflow_cycles(
    queues: dict[str, QueuePolicy], where: Callable[[tuple[str | int, ...]], str]
) -> None:
    """Work that overflows must end somewhere: a cycle would bounce it between queues forever."""
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(_overflow_targets(queues[name])):
            if state.get(target) == 1:
                cycle = " -> ".join([*path[path.index(target) :], target])
                index = list(queues).index(name)
                raise PolicyError(f"{where(('queues', index, 'overflow'))}: overflow cycle {cycle}")
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in queues:
        if name not in state:
            visit(name, [name])


def _line_of(text: str, location: tuple[str | int, ...]) -> int:
    """The line of the file a validation location points at (best effort; 1 if unknown).

    Walks the TOML text tracking array-of-tables headers ([[queues]], [[queues.steps]] ...),
    so ('queues', 2, 'steps', 1, 'target') finds the target key of the second step of the
    third queue.
    """
    lines = text.splitlines()
    counters: dict[str, int] = {}
    header = ""
    best = 1
    wanted_tables: list[tuple[str, int]] = []
    keys: list[str] = []
    prefix = ""
    parts = list(location)
    while parts:
        part = parts.pop(0)
        if isinstance(part, str) and parts and isinstance(parts[0], int):
            prefix = f"{prefix}.{part}" if prefix else part
            index = parts.pop(0)
            assert isinstance(index, int)
            wanted_tables.append((prefix, index))
        elif isinstance(part, str):
            keys.append(part)
    matched = 0  # how many of wanted_tables the current position is inside
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        table = re.match(r"^\[\[\s*([\w.]+)\s*\]\]", stripped)
        plain = re.match(r"^\[\s*([\w.]+)\s*\]", stripped)
        if table:
            header = table.group(1)
            counters[header] = counters.get(header, -1) + 1
            # Entering a new parent table resets the children's counters.
            for name in list(counters):
                if name.startswith(header + "."):
                    del counters[name]
            matched = sum(
                1
                for depth, (name, wanted) in enumerate(wanted_tables)
                if counters.get(name) == wanted and (depth == 0 or matched >= depth)
            )
            if matched == len(wanted_tables) and header == (
                wanted_tables[-1][0] if wanted_tables else ""
            ):
                best = number
            continue
        if plain:
            header = plain.group(1)
            continue
        if keys and matched == len(wanted_tables):
            expected_header = ".".join([wanted_tables[-1][0]] if wanted_tables else [])
            sub = keys[:-1]
            if header == ".".join([expected_header, *sub]).strip(".") and re.match(
                rf"^{re.escape(keys[-1])}\s*=", stripped
            ):
                return number
    return best
