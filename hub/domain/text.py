"""Text the hub stores is text: no lone surrogates, no C1 controls, no NUL.

Lone surrogates are what Python keeps of bytes it could not decode (``surrogateescape``:
U+DC80-U+DCFF stand for the bytes 0x80-0xFF), so they are read as those bytes in
Windows-1252, as undeclared 8-bit text is; PostgreSQL refuses them and NUL outright, and
browsers show them as boxes. C1 controls
(U+0080-U+009F) are almost always Windows-1252 bytes read as Latin-1: a raw 0x80 is the euro
sign, 0x93 and 0x94 are curly quotes (the WHATWG encoding standard reads "iso-8859-1" as
windows-1252 for the same reason), so they are read that way; the five bytes Windows-1252
leaves undefined become U+FFFD.
"""

from __future__ import annotations

import re

_C1 = {code: bytes([code]).decode("cp1252", errors="replace") for code in range(0x80, 0xA0)}
_BAD = re.compile("[\x00\x80-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """The text with C1 controls read as Windows-1252, lone surrogates and NUL replaced."""
    if not _BAD.search(text):
        return text
    return _BAD.sub(_replacement, text)


def _replacement(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code == 0:
        return ""
    if 0xDC80 <= code <= 0xDCFF:  # an escaped byte
        code -= 0xDC00
        return bytes([code]).decode("cp1252", errors="replace") if code >= 0xA0 else _C1[code]
    return _C1.get(code, "\ufffd")
