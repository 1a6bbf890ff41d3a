"""Identities: the ways a customer can be recognised, and how raw values are normalised."""

from __future__ import annotations

import email.utils
import functools
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

from hub.errors import InvalidIdentity

MAX_IDENTITY_LENGTH = 320  # RFC 5321's longest address (64 + 1 + 255) rounded up


class IdentityKind(StrEnum):
    """What an identity value is."""

    PHONE = "phone"
    EMAIL = "email"
    CHAT_VISITOR = "chat_visitor"
    FAX = "fax"
    EXTERNAL = "external"
    # A contact whose sender is withheld (a caller hiding their number): unique to that one
    # contact ("{provider}:{its id}"), so it never matches, or merges, anybody.
    ANONYMOUS = "anonymous"


def anonymous(provider: str, contact_id: str) -> IdentityRef:
    """The identity of one contact whose sender is withheld."""
    return IdentityRef(IdentityKind.ANONYMOUS, f"{provider}:{contact_id}")


@dataclass(frozen=True, slots=True)
class IdentityRef:
    """A normalised identity value: two refs are equal exactly when they name the same thing."""

    kind: IdentityKind
    value: str


@dataclass(frozen=True, slots=True)
class IdentityClaim:
    """An identity asserted by a message; unverified claims never merge customers by themselves."""

    ref: IdentityRef
    verified: bool


def normalize_identity(kind: IdentityKind | str, raw: str, default_region: str) -> IdentityRef:
    """Turn a raw value into its canonical form, or raise InvalidIdentity saying why."""
    try:
        kind = IdentityKind(kind)
    except ValueError as err:
        known = ", ".join(k.value for k in IdentityKind)
        raise InvalidIdentity(f"unknown identity kind {kind!r}; use one of {known}") from err
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise InvalidIdentity(f"empty {kind.value}", field=kind.value)
    if len(text) > MAX_IDENTITY_LENGTH:
        raise InvalidIdentity(f"{kind.value} longer than {MAX_IDENTITY_LENGTH} characters")
    if kind in (IdentityKind.PHONE, IdentityKind.FAX):
        return IdentityRef(kind, normalize_phone(text, default_region))
    if kind is IdentityKind.EMAIL:
        return IdentityRef(kind, normalize_email(text))
    return IdentityRef(kind, text)


@functools.lru_cache(maxsize=65_536)  # the same numbers come back: phonenumbers is slow
def normalize_phone(raw: str, default_region: str) -> str:
    """Format a phone number as E.164, reading numbers without +country in the default region."""
    text = raw.removeprefix("tel:").removeprefix("whatsapp:")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as err:
        raise InvalidIdentity(f"{raw!r} is not a phone number: {err}", field="phone") from err
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity(f"{raw!r} is not a possible phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalize_phone(raw: str, default_region: str) -> str | None:
    """Return the E.164 form of raw when it reads as a phone number, else None."""
    if sum(ch.isdigit() for ch in raw) < 3:
        return None
    try:
        return normalize_phone(raw, default_region)
    except InvalidIdentity:
        return None


def normalize_email(raw: str) -> str:
    """Case-fold an address; accepts ``Name <addr>`` and ``mailto:`` forms."""
    _, address = email.utils.parseaddr(raw.removeprefix("mailto:"))
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(ch.isspace() for ch in address):
        raise InvalidIdentity(f"{raw!r} is not an email address", field="email")
    # Domains are case-insensitive (RFC 5321 2.4); local parts are in practice too.
    return address.casefold()
