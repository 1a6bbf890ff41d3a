"""JSON as the hub writes it: API answers, socket.io packets, JSON parameters of statements."""

from __future__ import annotations

import json
from typing import Any

import orjson


def json_bytes(data: Any) -> bytes:
    """The API's JSON as UTF-8: dates and times as ISO 8601, sets and tuples as lists.

    orjson writes it (a unified record's 50 events: 11 us against the standard library's
    180 us, 9% of a GET); what it refuses (an integer beyond 64 bits that a client stored in
    a custom field) falls back to the standard library, so nothing it could write before
    fails now.
    """
    try:
        return orjson.dumps(data, default=json_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(data, default=json_default, ensure_ascii=False).encode()


def json_default(value: Any) -> Any:
    """JSON for what the API returns beyond JSON's types: dates, sets, tuples."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
