"""Real mail -> ParsedEmail, with the standard library's ``email`` package (policy.default).

What real mail does that a naive reader gets wrong, and what this does about it:

- Declared charsets are often too small for the text: "gb2312" mail carries GBK/GB18030
  characters, "big5" carries HKSCS, "shift_jis" carries Microsoft's cp932 extensions,
  "iso-8859-1" and "us-ascii" carry Windows-1252 quotes. Text is decoded with the superset
  (``SUPERSETS``), then the declared codec, then UTF-8, then Windows-1252 with replacement.
- Headers may be RFC 2047 encoded words in any charset, or raw 8-bit bytes (UTF-8 or GBK sent
  unencoded). Subject and display names are decoded from the raw header with the same rules.
- HTML is kept sanitized for display (nh3, Ammonia's safelist, ``cid:`` links allowed for
  inline images) and turned into text for search and quoting (inscriptis).
- Auto-replies (RFC 3834 Auto-Submitted, X-Autoreply, Exchange's X-Auto-Response-Suppress,
  out-of-office subjects), bulk and list mail (Precedence, List-Id) and bounces (RFC 3464
  delivery status reports, with the failed recipients and the bounced Message-ID) are told apart,
  so they never become work for an agent or get an automatic answer.
- A message without a Message-ID gets a stable one from a hash of its bytes, so a re-delivery
  is still recognised.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from email import policy
from email.header import decode_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from enum import StrEnum

import nh3
from inscriptis import get_text

MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# Declared charset -> the codec that reads what senders really put under that name.
SUPERSETS = {
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
}
AUTO_SUBJECTS = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[ -]?reply|auto:|autoreply|"
    r"abwesenheitsnotiz|absence|réponse automatique|respuesta automática|自动回复|自動回覆|"
    r"自動応答|不在)",
    re.IGNORECASE,
)
HTML_SCHEMES = {"http", "https", "mailto", "cid", "tel"}


class Noise(StrEnum):
    """Mail that must never become work or be answered automatically."""

    AUTO_REPLY = "auto_reply"
    BULK = "bulk"  # list and bulk mail
    BOUNCE = "bounce"


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox in a header: display name and address (lower-cased domain)."""

    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Part:
    """An attachment or an inline image."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True)
class Bounce:
    """A delivery status report: who could not be reached, and which message of ours it was."""

    recipients: tuple[str, ...]
    action: str  # failed | delayed | ...
    status: str | None
    diagnostic: str | None
    original_message_id: str | None


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """What the hub uses of one message."""

    message_id: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: Address | None
    subject: str
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str
    html: str | None
    attachments: tuple[Part, ...] = ()
    delivered_to: tuple[str, ...] = ()
    noise: Noise | None = None
    noise_reason: str | None = None
    bounce: Bounce | None = None
    charsets: tuple[str, ...] = field(default_factory=tuple)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address it was sent to (To, Cc, Delivered-To), lower-cased."""
        found = [a.email for a in (*self.to, *self.cc)] + list(self.delivered_to)
        return tuple(dict.fromkeys(address.lower() for address in found))


class UnreadableEmail(Exception):
    """A message the hub cannot take in (it goes to quarantine with this reason)."""


def parse_email(raw: bytes) -> ParsedEmail:
    """Read one RFC 5322 message; UnreadableEmail if it has no sender to answer."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    sender = _first_address(message, "From") or _first_address(message, "Sender")
    if sender is None:
        return_path = MESSAGE_ID.findall(str(message.get("Return-Path", "")))
        if return_path and "@" in return_path[0]:
            sender = Address("", return_path[0][1:-1])
    if sender is None:
        raise UnreadableEmail("no From, Sender or Return-Path address")
    charsets: list[str] = []
    text, html = _bodies(message, charsets)
    own_id = _ids(message.get("Message-ID"))
    in_reply_to = _ids(message.get("In-Reply-To"))
    subject = header_text(message, "Subject")
    parsed = ParsedEmail(
        message_id=own_id[0] if own_id else _stable_id(raw),
        sender=sender,
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        reply_to=_first_address(message, "Reply-To"),
        subject=subject,
        date=_date(message),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=tuple(_ids(message.get("References"))),
        text=text,
        html=html,
        attachments=tuple(_attachments(message)),
        delivered_to=tuple(
            v.strip().strip("<>").lower()
            for name in ("Delivered-To", "X-Original-To")
            for v in message.get_all(name, [])
        ),
        charsets=tuple(dict.fromkeys(charsets)),
    )
    bounce = _bounce(message)
    if bounce is not None:
        return _with(parsed, Noise.BOUNCE, "a delivery status report", bounce)
    noise = _noise(message, subject, sender)
    if noise is not None:
        return _with(parsed, *noise, None)
    return parsed


def _with(parsed: ParsedEmail, noise: Noise, reason: str, bounce: Bounce | None) -> ParsedEmail:
    return replace(parsed, noise=noise, noise_reason=reason, bounce=bounce)


def _stable_id(raw: bytes) -> str:
    """A Message-ID for a message without one: the same bytes, the same id."""
    return f"<sha256-{hashlib.sha256(raw).hexdigest()[:40]}@hub.invalid>"


# -- text in any charset ---------------------------------------------------------------------


def decode_text(data: bytes, declared: str | None) -> str:
    """Bytes in a declared charset -> text, reading the charset as senders really use it."""
    tried: list[str] = []
    name = (declared or "").strip().strip('"').lower()
    for candidate in (SUPERSETS.get(name), name, "utf-8", "gb18030" if _looks_cjk(data) else None):
        if not candidate or candidate in tried:
            continue
        tried.append(candidate)
        try:
            codecs.lookup(candidate)
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


def _looks_cjk(data: bytes) -> bool:
    high = sum(1 for byte in data if byte >= 0x80)
    return high > len(data) // 4


def header_text(message: Message, name: str) -> str:
    """A header's text: encoded words in any charset, or raw 8-bit bytes, decoded; one line."""
    raw = _raw_header(message, name)
    if raw is None:
        return ""
    return " ".join(_decode_words(raw).split())


def _raw_header(message: Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _decode_words(raw: str) -> str:
    """RFC 2047 words and raw bytes (kept by the parser as surrogate escapes) -> text."""
    pieces: list[str] = []
    for chunk, charset in decode_header(raw):
        data = chunk.encode("utf-8", "surrogateescape") if isinstance(chunk, str) else chunk
        pieces.append(decode_text(data, charset or ("utf-8" if _has_8bit(data) else "ascii")))
    return "".join(pieces)


def _has_8bit(data: bytes) -> bool:
    return any(byte >= 0x80 for byte in data)


# -- addresses, ids, dates -------------------------------------------------------------------


def _addresses(message: Message, name: str) -> tuple[Address, ...]:
    raw = _raw_header(message, name)
    if raw is None:
        return ()
    found = []
    # Split first, decode after: an encoded display name may hide a comma ("Müller, Hans").
    for display, address in getaddresses([raw]):
        display, address = _decode_words(display), _decode_words(address).strip()
        if "@" not in address:
            continue
        local, _, domain = address.rpartition("@")
        found.append(Address(" ".join(display.split()), f"{local}@{domain.lower()}"))
    return tuple(found)


def _first_address(message: Message, name: str) -> Address | None:
    found = _addresses(message, name)
    return found[0] if found else None


def _ids(value: object) -> list[str]:
    """Message-IDs in a header (In-Reply-To and References come back as plain strings)."""
    return MESSAGE_ID.findall(str(value)) if value else []


def _date(message: Message) -> datetime | None:
    value = message.get("Date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None


# -- bodies and attachments ------------------------------------------------------------------


def _bodies(message: EmailMessage, charsets: list[str]) -> tuple[str, str | None]:
    """The text body (or the HTML's text), and the HTML sanitized for display."""
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    text = _part_text(plain, charsets) if plain is not None else None
    html = None
    if rich is not None:
        html = nh3.clean(_part_text(rich, charsets), url_schemes=HTML_SCHEMES)
    if text is None:
        text = get_text(html).strip() if html else ""
    return text.replace("\r\n", "\n").strip(), html


def _part_text(part: Message, charsets: list[str]) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset()
    if charset:
        charsets.append(charset)
    return decode_text(data, charset)


def _attachments(message: EmailMessage) -> list[Part]:
    found = []
    for n, part in enumerate(message.iter_attachments()):
        if part.get_content_type() in ("message/delivery-status", "text/rfc822-headers"):
            continue
        data = part.get_payload(decode=True)
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            data = first.as_bytes() if isinstance(first, Message) else b""
        if not isinstance(data, bytes):
            continue
        filename = part.get_filename()
        if filename:
            filename = " ".join(_decode_words(filename).split())
        content_id = _ids(part.get("Content-ID"))
        found.append(
            Part(
                filename=filename or f"attachment-{n + 1}",
                content_type=part.get_content_type(),
                data=data,
                content_id=content_id[0][1:-1] if content_id else None,
                inline=part.get_content_disposition() == "inline" or bool(content_id),
            )
        )
    # Inline images of an HTML body are related parts, not attachments, to iter_attachments.
    for part in message.walk():
        content_id = _ids(part.get("Content-ID"))
        if (
            content_id
            and part.get_content_maintype() == "image"
            and not any(p.content_id == content_id[0][1:-1] for p in found)
        ):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                found.append(
                    Part(
                        filename=part.get_filename() or content_id[0][1:-1],
                        content_type=part.get_content_type(),
                        data=data,
                        content_id=content_id[0][1:-1],
                        inline=True,
                    )
                )
    return found


# -- noise -----------------------------------------------------------------------------------


def _noise(message: Message, subject: str, sender: Address) -> tuple[Noise, str] | None:
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto and auto != "no":
        return Noise.AUTO_REPLY, f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress"):
        if message.get(name):
            return Noise.AUTO_REPLY, f"{name}: {message.get(name)}"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence == "auto_reply":
        return Noise.AUTO_REPLY, "Precedence: auto_reply"
    if precedence in ("bulk", "junk", "list"):
        return Noise.BULK, f"Precedence: {precedence}"
    if message.get("List-Id") or message.get("List-Unsubscribe"):
        return Noise.BULK, "mailing-list mail (List-Id)"
    if AUTO_SUBJECTS.match(subject):
        return Noise.AUTO_REPLY, f"an automatic reply's subject: {subject[:60]}"
    local = sender.email.partition("@")[0].lower()
    if local in ("mailer-daemon", "postmaster"):
        return Noise.BOUNCE, f"from {sender.email}"
    content_type = message.get_content_type()
    if content_type == "multipart/report":
        return Noise.AUTO_REPLY, "a report (read receipt or notification)"
    return None


def _bounce(message: Message) -> Bounce | None:
    """An RFC 3464 delivery status report's failed recipients and the message they were for."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != "delivery-status":
        return None
    recipients: list[str] = []
    action, status, diagnostic, original = "failed", None, None, None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload():
                if not isinstance(block, Message):
                    continue
                final = block.get("Final-Recipient") or block.get("Original-Recipient")
                if final:
                    recipients.append(str(final).split(";", 1)[-1].strip().strip("<>").lower())
                action = str(block.get("Action", action)).strip().lower()
                status = str(block.get("Status")).strip() if block.get("Status") else status
                if block.get("Diagnostic-Code"):
                    diagnostic = " ".join(str(block["Diagnostic-Code"]).split())
        elif kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            original = original or _original_id(part)
    return Bounce(tuple(dict.fromkeys(recipients)), action, status, diagnostic, original)


def _original_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        ids = _ids(payload[0].get("Message-ID"))
        return ids[0] if ids else None
    text = part.get_payload(decode=True)
    if isinstance(text, bytes):
        found = re.search(rb"^Message-ID:\s*(<[^<>\s]+>)", text, re.IGNORECASE | re.MULTILINE)
        return found.group(1).decode("ascii", "replace") if found else None
    return None


def normalize_subject(subject: str) -> str:
    """A subject without reply and forward prefixes, in any language, for comparing threads."""
    current = " ".join(subject.split())
    while True:
        stripped = SUBJECT_PREFIX.sub("", current, count=1).strip()
        if stripped == current:
            return current.casefold()
        current = stripped


SUBJECT_PREFIX = re.compile(
    r"^\s*(\[[^\]]{1,40}\]\s*)?"  # a list tag, [support]
    r"(re|fw|fwd|aw|wg|sv|vs|vl|antw|doorst|tr|rv|odp|pd|ynt|ilt|vá|enc|res|"
    r"回复|答复|转发|回覆|轉寄|轉發|返信|転送)"
    r"(\[\d+\]|\(\d+\))?\s*[:：]",
    re.IGNORECASE,
)
