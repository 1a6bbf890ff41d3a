"""Domain events as stored rows: a type name and the event's fields as JSON."""

from __future__ import annotations

import dataclasses
import enum
import functools
import typing
from collections.abc import Mapping
from typing import Any

from hub.domain import events as domain_events
from hub.domain.events import Event


@functools.cache
def event_types() -> dict[str, type[Event]]:
    """Every domain event class by name."""
    return {
        name: value
        for name, value in vars(domain_events).items()
        if isinstance(value, type) and issubclass(value, Event) and value is not Event
    }


_ENUM_FIELDS: dict[type[Event], dict[str, type[enum.Enum]]] = {}


def _enum_fields(cls: type[Event]) -> dict[str, type[enum.Enum]]:
    """The fields of an event class that hold an enum (JSON keeps only their values)."""
    known = _ENUM_FIELDS.get(cls)
    if known is not None:
        return known
    found: dict[str, type[enum.Enum]] = {}
    for name, hint in typing.get_type_hints(cls).items():
        for candidate in typing.get_args(hint) or (hint,):
            if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
                found[name] = candidate
                break
    _ENUM_FIELDS[cls] = found
    return found


def encode(event: Event) -> tuple[str, dict[str, Any]]:
    """The type name and the JSON-ready fields of an event (its outbox id is the row's own)."""
    data = {
        f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "outbox_id"
    }
    for name in _enum_fields(type(event)):
        value = data.get(name)
        if isinstance(value, enum.Enum):
            data[name] = value.value
    return type(event).__name__, data


def decode(type_name: str, data: Mapping[str, Any], *, outbox_id: int = 0) -> Event:
    """The event a row holds (KeyError, TypeError or ValueError if it is not one)."""
    cls = event_types()[type_name]
    fields = dict(data)
    for name, kind in _enum_fields(cls).items():
        if fields.get(name) is not None:
            fields[name] = kind(fields[name])
    return cls(**fields, outbox_id=outbox_id)
