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

import base64
import binascii
import codecs
import contextlib
import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from email import policy
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
    sender_note: str | None = None  # how the sender was found when From did not say it plainly
    repairs: tuple[str, ...] = ()  # what had to be mended to read it at all

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address it was sent to (To, Cc, Delivered-To), lower-cased."""
        found = [a.email for a in (*self.to, *self.cc)] + list(self.delivered_to)
        return tuple(dict.fromkeys(address.lower() for address in found))


class UnreadableEmail(Exception):
    """A message the hub cannot take in (it goes to quarantine with this reason)."""


def parse_email(raw: bytes) -> ParsedEmail:
    """Read one RFC 5322 message; UnreadableEmail if it has no sender to answer."""
    readable, dropped = _repaired(raw)
    message = BytesParser(policy=policy.default).parsebytes(readable)
    assert isinstance(message, EmailMessage)
    null_path = _null_reverse_path(message)
    sender, sender_note = _sender(message, raw)
    if sender is None and null_path:
        sender = Address("MAILER-DAEMON", f"mailer-daemon@{_notifying_domain(message)}")
        sender_note = "no sender address: a notification from the null reverse path"
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
        sender_note=sender_note,
        repairs=(f"{dropped} header line(s) that were not headers were left out",)
        if dropped
        else (),
    )
    bounce = _bounce(message)
    if bounce is not None:
        return _with(parsed, Noise.BOUNCE, "a delivery status report", bounce)
    if null_path:
        # RFC 5321 section 4.5.5: mail from the null reverse path is a notification; it is
        # never answered and never work (a bounce of a bounce would loop).
        reason = "from the null reverse path (RFC 5321 section 4.5.5)"
        return _with(parsed, Noise.BOUNCE, reason, _plain_bounce(message, text))
    noise = _noise(message, subject, sender)
    if noise is not None:
        found = _plain_bounce(message, text) if noise[0] is Noise.BOUNCE else None
        return _with(parsed, *noise, found)
    return parsed


# -- the sender, recovered where real mail gets it wrong --------------------------------------

ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+")
BRACKETED = re.compile(r"<\s*([^<>\s@]+@[^<>\s]+?)\s*>")
BARE = re.compile(r"[^\s<>()\[\],;:\"'@]+@[^\s<>()\[\],;:\"'@]*[A-Za-z0-9]")
HEADER_LINE = re.compile(
    rb"^(From|Sender):[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)


def _sender(message: Message, raw: bytes) -> tuple[Address | None, str | None]:
    """Who the message is from, and a note when it took more than reading From.

    Real mail has From headers a strict reader rejects: a display name that looks like an
    address before the real one in brackets, two addresses without a comma, a name and an
    address without brackets, a header the parser lost after a broken line. The address is
    taken, in turn, from From (as written, then inside its brackets, then its first address),
    Sender, and Return-Path; what was done is said, so an agent can see it.
    """
    found = _first_address(message, "From")
    written = _raw_header(message, "From")
    if found is not None and written is not None:
        inside = BRACKETED.findall(_decode_words(written))
        if len(inside) == 1 and _lower_domain(inside[0]) != found.email:
            # "ann@example.com <ann@example.org>": a name that looks like an address
            return Address("", _lower_domain(inside[0])), "From: the address in <> was taken"
    if found is not None:
        return found, None
    for name in ("From", "Sender"):
        if name == "Sender":
            strict = _first_address(message, "Sender")
            if strict is not None:
                return strict, "no usable From address: the Sender header's address was used"
        headers = [str(v) for k, v in message.raw_items() if k.lower() == name.lower()]
        lost = _lost_header(raw, name)
        for text in [*headers, *([lost] if lost is not None else [])]:
            recovered = _recover(_decode_words(text))
            if recovered is not None:
                address, how = recovered
                return address, f"{name} could not be read as written: {how}"
    return_path = BRACKETED.findall(str(message.get("Return-Path", "")))
    if return_path:
        return Address("", _lower_domain(return_path[0])), "no usable From: Return-Path was used"
    return None, None


def _recover(text: str) -> tuple[Address, str] | None:
    bracketed = BRACKETED.findall(text)
    if bracketed:
        name = BRACKETED.sub("", text).strip().strip('"').strip()
        if BARE.fullmatch(name):
            name = ""  # the "name" was an address too
        return Address(name, _lower_domain(bracketed[0])), "the address in <> was taken"
    bare = BARE.findall(text)
    if bare:
        name = text.split(bare[0], 1)[0].strip().strip('"').strip()
        how = (
            "the first of several addresses was taken"
            if len(bare) > 1
            else ("the address was taken from a name without <>")
        )
        return Address(name if not BARE.search(name) else "", _lower_domain(bare[0])), how
    return None


def _lost_header(raw: bytes, name: str) -> str | None:
    """A header in the raw header block that the parser lost (after a line it could not read)."""
    block = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    for found in HEADER_LINE.finditer(block):
        if found.group(1).lower() == name.lower().encode():
            return found.group(2).decode("utf-8", "surrogateescape")
    return None


def _lower_domain(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _null_reverse_path(message: Message) -> bool:
    """Whether the message came from the null reverse path (``Return-Path: <>``)."""
    paths = [str(v).strip() for v in message.get_all("Return-Path", [])]
    if any(path.replace(" ", "") == "<>" for path in paths):
        return True
    raw_from = " ".join(str(v) for v in message.get_all("From", []))
    return bool(re.search(r"mailer-daemon", raw_from, re.IGNORECASE)) and "@" not in raw_from


def _notifying_domain(message: Message) -> str:
    """The domain a notification without an address came from, as well as it can be told."""
    for value in (message.get("Message-ID"), message.get("Reporting-MTA")):
        found = re.search(r"@([A-Za-z0-9.-]+\.[A-Za-z]{2,})", str(value or ""))
        if found:
            return found.group(1).lower()
    return "localhost"


FIELD = re.compile(rb"^[!-9;-~]+:")  # RFC 5322 section 2.2: printable ASCII but the colon


def _repaired(raw: bytes) -> tuple[bytes, int]:
    """The message without header lines that are not headers (an mbox "From " line, a line a
    broken client wrote): the parser would take the first of them for the start of the body
    and lose every header after it."""
    head, newline, body = raw.partition(b"\r\n\r\n")
    if not newline:
        head, newline, body = raw.partition(b"\n\n")
    lines = head.splitlines(keepends=True)
    kept = [
        line
        for n, line in enumerate(lines)
        if FIELD.match(line) or (n and line[:1] in (b" ", b"\t"))
    ]
    if len(kept) == len(lines) or not any(FIELD.match(line) for line in lines):
        return raw, 0
    return b"".join(kept) + newline + body, len(lines) - len(kept)


def _with(parsed: ParsedEmail, noise: Noise, reason: str, bounce: Bounce | None) -> ParsedEmail:
    return replace(parsed, noise=noise, noise_reason=reason, bounce=bounce)


def _stable_id(raw: bytes) -> str:
    """A Message-ID for a message without one: the same message, the same id."""
    return f"<sha256-{content_digest(raw)[:40]}@hub.invalid>"


def content_digest(raw: bytes) -> str:
    """A message's SHA-256, whatever line endings the server that kept it gave it."""
    return hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()


# -- text in any charset ---------------------------------------------------------------------


def decode_text(data: bytes, declared: str | None) -> str:
    """Bytes in a declared charset -> text, reading the charset as senders really use it."""
    tried: list[str] = []
    name = (declared or "").strip().strip('"').lower()
    with contextlib.suppress(LookupError):
        if codecs.lookup(name).name in ("latin-1", "iso8859-1", "ascii"):
            name = "iso-8859-1"  # any spelling of Latin-1 or ASCII: really Windows-1252
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


ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([QqBb])\?([^?]*?)\?=")


def _decode_words(raw: str) -> str:
    """RFC 2047 encoded words and raw 8-bit bytes -> text.

    Read here on the header's bytes (the parser keeps raw bytes as surrogate escapes) rather
    than by ``email.header.decode_header``, which turns a raw byte inside an encoded word
    (``=?iso-8859-1?Q?Fr<0xF6>sche?=``, seen in real mail) into the text ``\\udcf6``. Each
    word is decoded with its declared charset, read as senders use it; whitespace between
    two encoded words is not text (RFC 2047 section 6.2).
    """
    data = raw.encode("utf-8", "surrogateescape")
    pieces: list[str] = []
    position, after_word = 0, False
    for word in ENCODED_WORD.finditer(data):
        between = data[position : word.start()]
        if not (after_word and not between.strip()):
            pieces.append(_raw_text(between))
        charset = word.group(1).split(b"*", 1)[0].decode("ascii", "replace")  # RFC 2231 *lang
        pieces.append(decode_text(_word_bytes(word.group(2), word.group(3)), charset))
        position, after_word = word.end(), True
    pieces.append(_raw_text(data[position:]))
    return "".join(pieces)


def _word_bytes(encoding: bytes, payload: bytes) -> bytes:
    """An encoded word's bytes: Q (underscores are spaces) or B (padding forgiven)."""
    if encoding in (b"Q", b"q"):
        return binascii.a2b_qp(payload, header=True)
    try:
        return base64.b64decode(payload + b"=" * (-len(payload) % 4))
    except binascii.Error:
        return payload


def _raw_text(data: bytes) -> str:
    """Unencoded header bytes: ASCII, or 8-bit text sent raw (UTF-8 first, as RFC 6532 has it)."""
    return decode_text(data, "utf-8" if _has_8bit(data) else "ascii")


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
        if not ADDRESS.fullmatch(address):
            continue  # "@example.com", "Ann ann@example.com": not an address as written
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
    local = sender.email.partition("@")[0].lower()
    if str(message.get("X-List-Administrivia", "")).strip().lower() == "yes" or (
        local in LIST_MANAGERS or local.endswith(LIST_SUFFIXES) or local.startswith("owner-")
    ):
        return Noise.BULK, f"a mailing list manager's notice (from {sender.email})"
    if AUTO_SUBJECTS.match(subject):
        return Noise.AUTO_REPLY, f"an automatic reply's subject: {subject[:60]}"
    if local in ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"):
        return Noise.BOUNCE, f"from {sender.email}"
    # A customer may well write "undeliverable" in a subject: the sender must say it too.
    if NOTICE_SENDERS.search(sender.name) or (
        NOTICE_SUBJECTS.search(subject) and (local in NOTICE_LOCALS or local.startswith("bounce"))
    ):
        return Noise.BOUNCE, f"a delivery notice: {subject[:60] or sender.name}"
    content_type = message.get_content_type()
    if content_type == "multipart/report":
        return Noise.AUTO_REPLY, "a report (read receipt or notification)"
    return None


# Mailing list managers' own addresses (Mailman, Majordomo, LISTSERV, Sympa, ezmlm, Google).
LIST_MANAGERS = frozenset(
    {"mailman", "majordomo", "listserv", "sympa", "ezmlm", "listproc", "lyris", "mailman-owner"}
)
LIST_SUFFIXES = ("-owner", "-bounces", "-request", "-admin", "-confirm", "+owner")
# Who writes delivery notices, and what they are called, by the servers and carriers that
# send most of them (Postfix, Exim, Sendmail, Exchange, Gmail, QQ, 163, NetEase).
NOTICE_SENDERS = re.compile(
    r"^(mail delivery (subsystem|system|service)|microsoft outlook|postmaster|"
    r"mail administrator|系统退信|系统邮件|邮件系统)$",
    re.IGNORECASE,
)
NOTICE_LOCALS = frozenset(
    {"noreply", "no-reply", "do-not-reply", "donotreply", "mdaemon", "mail", "notify", "system"}
)
NOTICE_SUBJECTS = re.compile(
    r"(undeliver(able|ed)|delivery (status notification|failure|failed|has failed|"
    r"notification|incomplete|delayed)|returned mail|mail delivery failed|failure notice|"
    r"non[- ]?delivery|could not (be )?deliver|message not delivered|mailbox (is )?full|"
    r"quota (exceeded|full)|over quota|warning: could not send|delayed mail|"
    r"unzustellbar|nicht zustellbar|non remis|no entregado|退信|邮件退回|投递失败|无法投递|"
    r"配信不能|未送達)",
    re.IGNORECASE,
)


def _plain_bounce(message: Message, text: str) -> Bounce | None:
    """A bounce that is not an RFC 3464 report: the Message-ID of ours it quotes, if any.

    Mail servers that write their own bounce text still quote the failed message (attached,
    or its headers pasted in the text); that is how it is matched to the reply it bounces.
    """
    original = None
    for part in message.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            original = _original_id(part)
            if original:
                break
    if original is None:
        quoted = re.findall(r"^\s*Message-ID:\s*(<[^<>\s]+>)", text, re.IGNORECASE | re.MULTILINE)
        own = _ids(message.get("Message-ID"))
        original = next((q for q in quoted if q not in own), None)
    if original is None:
        return None
    recipients = re.findall(r"<([^<>\s@]+@[^<>\s]+)>", text)[:5]
    diagnostic = next((line.strip() for line in text.splitlines() if line.strip()), None)
    return Bounce(
        tuple(dict.fromkeys(r.lower() for r in recipients)),
        "failed",
        None,
        diagnostic[:300] if diagnostic else None,
        original,
    )


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
