"""The API's JSON: what it writes for the types the hub returns, and what orjson refuses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from hub.agent_console.realtime import _Json
from hub.domain.timeline import EventKind
from hub.http import json_bytes, json_response
from hub.json_writer import json_loads

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def test_dates_sets_tuples_enums_and_keys_come_out_as_the_standard_library_wrote_them() -> None:
    data = {
        "at": datetime(2026, 12, 7, 9, 30, 1, 250, tzinfo=UTC),
        "naive": datetime(2026, 12, 7, 9, 30),
        "day": date(2026, 12, 7),
        "tags": ("vip", "续约"),
        "seen": {3},
        "kind": EventKind.MESSAGE,
        7: "a numbered key",
    }
    assert json.loads(json_bytes(data)) == {
        "at": "2026-12-07T09:30:01.000250+00:00",
        "naive": "2026-12-07T09:30:00",
        "day": "2026-12-07",
        "tags": ["vip", "续约"],
        "seen": [3],
        "kind": "message",
        "7": "a numbered key",
    }
    assert "续约".encode() in json_bytes(data)  # UTF-8 as it is, not \\u escapes


def test_an_integer_beyond_64_bits_a_client_stored_still_comes_back() -> None:
    huge = {"custom_fields": {"account": 2**70}}
    assert json.loads(json_bytes(huge)) == huge
    response = json_response(huge, status=201)
    assert response.status == 201
    assert response.content_type == "application/json"
    assert response.charset == "utf-8"


def test_socketio_packets_are_compact_and_other_options_are_honoured() -> None:
    data = {"at": datetime(2026, 12, 7, tzinfo=UTC), "ids": (1, 2)}
    assert _Json.dumps(data, separators=(",", ":")) == (
        '{"at":"2026-12-07T00:00:00+00:00","ids":[1,2]}'
    )
    assert _Json.dumps(data, indent=1).startswith("{\n")


@given(_JSON)
def test_json_read_back_from_the_store_is_what_the_standard_library_reads(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False)
    read = json_loads(text)
    assert read == json.loads(text)
    # the same types too: no integer turned into a float (2**64 == 2.0**64 is True)
    assert json.dumps(read) == json.dumps(json.loads(text))
    assert json_loads(text.encode()) == read
