from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.identity import (
    IdentityKind,
    IdentityRef,
    normalize_email,
    normalize_identity,
    normalize_phone,
    try_normalize_phone,
)
from hub.errors import InvalidIdentity


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0100", "US", "+14155550100"),
        ("+1 415-555-0100", "US", "+14155550100"),
        ("+1 415-555-0100", "CN", "+14155550100"),
        ("415.555.0100", "US", "+14155550100"),
        ("tel:+14155550100", "GB", "+14155550100"),
        ("138 0013 8000", "CN", "+8613800138000"),
        ("+8613800138000", "US", "+8613800138000"),
        ("020 7946 0018", "GB", "+442079460018"),
    ],
)
def test_phone_numbers_in_any_format_are_the_same_identity(
    raw: str, region: str, expected: str
) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["12", "abc", "", "   ", "+1 2", "555"])
def test_phone_numbers_that_cannot_be_parsed_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidIdentity) as caught:
        normalize_identity(IdentityKind.PHONE, raw, "US")
    assert caught.value.status == 422
    assert caught.value.message


def test_a_number_without_country_is_read_in_the_default_region() -> None:
    assert normalize_phone("138 0013 8000", "CN") != normalize_phone("138 0013 8000", "US")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("  jane@example.com ", "jane@example.com"),
        ("Jane Doe <JANE@example.com>", "jane@example.com"),
        ("mailto:jane@example.com", "jane@example.com"),
    ],
)
def test_emails_are_case_folded(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["jane", "jane@", "@example.com", "jane@localhost", "a b@c.d"])
def test_bad_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidIdentity):
        normalize_identity("email", raw, "US")


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(InvalidIdentity, match="unknown identity kind"):
        normalize_identity("carrier_pigeon", "coo", "US")


def test_fax_numbers_normalise_like_phones() -> None:
    assert normalize_identity("fax", "(415) 555-0199", "US") == IdentityRef(
        IdentityKind.FAX, "+14155550199"
    )


def test_search_text_that_is_not_a_phone_is_not_read_as_one() -> None:
    assert try_normalize_phone("Grace Hopper", "US") is None
    assert try_normalize_phone("(415) 555-0100", "US") == "+14155550100"


@given(st.integers(min_value=2_000_000_000, max_value=9_899_999_999))
def test_normalising_an_e164_number_again_changes_nothing(national: int) -> None:
    raw = f"+1{national}"
    normalised = try_normalize_phone(raw, "US")
    if normalised is not None:
        assert normalize_phone(normalised, "GB") == normalised
