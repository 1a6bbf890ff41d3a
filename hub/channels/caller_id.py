"""Caller ids as providers send them, withheld ones included (calls, faxes).

A caller who withholds their number does not arrive without a ``From``: Twilio puts a word or
a placeholder number there (https://www.twilio.com/docs/voice/twiml#request-parameters;
its changelog asks apps to expect alphanumeric ``From`` and ``To``): ``anonymous``,
``Restricted``, ``Unknown``, or the keypad spellings of those words, +266696687 (ANONYMOUS),
+7378742833 (RESTRICTED), +2562533 (BLOCKED), +86282452253 (UNAVAILABLE), +8656696 (UNKNOWN).
Fax providers send the same words for a fax from a withheld number. None of them is
anybody's number: such a caller is answered as a withheld caller, never matched to a
customer holding that "number".
"""

from __future__ import annotations

from hub.domain.identity import try_normalize_phone

WITHHELD = "withheld"  # what the event says, and agents see, for a withheld number
WITHHELD_WORDS = frozenset(
    {"anonymous", "restricted", "unknown", "private", "blocked", "unavailable", "withheld"}
)
WITHHELD_NUMBERS = frozenset({"+266696687", "+7378742833", "+2562533", "+86282452253", "+8656696"})


def caller_number(raw: str, default_region: str) -> str | None:
    """The caller's number in E.164, or None when it is withheld (or no number at all)."""
    text = raw.strip()
    if not text or text.lower().lstrip("+") in WITHHELD_WORDS or text in WITHHELD_NUMBERS:
        return None
    number = try_normalize_phone(text, default_region)
    if number is None or number in WITHHELD_NUMBERS:
        return None
    return number
