"""Agent replies as real mail: threading headers, quoted history, signature, attachments; SMTP.

A reply carries a new Message-ID of the mailbox's domain, In-Reply-To the customer's latest
message, References that message's References plus its id (the last 20, as mail programs trim),
Reply-To the interaction's signed reply address, the mailbox's From and signature, and the
customer's message quoted below. It goes out with aiosmtplib over implicit TLS, STARTTLS (required
when asked for) or, for test servers, plain; 4xx answers and lost connections are retried with
backoff, 5xx answers are final.
"""

from __future__ import annotations

import asyncio
import html as html_lib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

import aiosmtplib

from hub.channels.email.imap import tls_context
from hub.config import MailboxSettings
from hub.errors import ChannelAuthFailed, ChannelError, ChannelNotReady

MAX_REFERENCES = 20


@dataclass(frozen=True, slots=True)
class Quoted:
    """The customer's message a reply answers."""

    message_id: str | None
    references: tuple[str, ...]
    subject: str
    text: str
    author: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """An attachment of a reply."""

    filename: str
    content_type: str
    data: bytes


def compose(
    mailbox: MailboxSettings,
    *,
    to: str,
    body: str,
    html: str | None,
    quoted: Quoted | None,
    subject: str | None,
    reply_to: str,
    now: datetime,
    files: tuple[OutgoingFile, ...] = (),
) -> EmailMessage:
    """The reply as a MIME message (multipart/alternative when there is HTML)."""
    message = EmailMessage()
    domain = mailbox.address.rpartition("@")[2]
    message["Message-ID"] = make_msgid(idstring="hub", domain=domain)
    message["Date"] = format_datetime(now)
    message["From"] = formataddr((mailbox.display_name or "", mailbox.address))
    message["To"] = to
    message["Reply-To"] = reply_to
    message["Subject"] = _subject(subject, quoted)
    if quoted is not None and quoted.message_id:
        message["In-Reply-To"] = quoted.message_id
        chain = [*quoted.references, quoted.message_id][-MAX_REFERENCES:]
        message["References"] = " ".join(chain)
    signature = f"\n\n-- \n{mailbox.signature}" if mailbox.signature else ""
    history = quoted_html = ""
    if quoted is not None and quoted.text:
        when = format_datetime(quoted.sent_at) if quoted.sent_at else "earlier"
        intro = f"On {when}, {quoted.author} wrote:"
        lines = "\n".join(f"> {line}".rstrip() for line in quoted.text.splitlines())
        history = f"\n\n{intro}\n{lines}"
        quoted_html = (
            f"<p>{html_lib.escape(intro)}</p>"
            f"<blockquote>{html_lib.escape(quoted.text)}</blockquote>"
        )
    message.set_content(body + signature + history)
    if html is not None:
        signature_html = (
            f"<p>-- <br>{html_lib.escape(mailbox.signature)}</p>" if mailbox.signature else ""
        )
        message.add_alternative(
            f"<html><body>{html}{signature_html}{quoted_html}</body></html>", subtype="html"
        )
    for file in files:
        maintype, _, subtype = file.content_type.partition("/")
        message.add_attachment(
            file.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=file.filename,
        )
    return message


def _subject(subject: str | None, quoted: Quoted | None) -> str:
    base = subject or (quoted.subject if quoted else "") or "Your message"
    return base if base.lower().startswith("re:") else f"Re: {base}"


async def send_mail(
    mailbox: MailboxSettings,
    message: EmailMessage,
    *,
    attempts: int = 4,
    backoff_seconds: float = 0.5,
) -> None:
    """Hand the message to the mailbox's SMTP server; retry what a retry can fix."""
    password = mailbox.smtp_password or mailbox.password
    username = mailbox.smtp_username or mailbox.username
    for attempt in range(1, attempts + 1):
        try:
            await aiosmtplib.send(
                message,
                hostname=mailbox.smtp_host,
                port=mailbox.smtp_port,
                use_tls=mailbox.smtp_security == "tls",
                start_tls=mailbox.smtp_security == "starttls",
                username=username,
                password=password.get_secret_value(),
                tls_context=tls_context(mailbox) if mailbox.smtp_security != "none" else None,
                timeout=30,
            )
            return
        except aiosmtplib.SMTPAuthenticationError as err:
            raise ChannelAuthFailed(f"the SMTP server refused the login: {err.message}") from err
        except aiosmtplib.SMTPRecipientsRefused as err:
            refused = ", ".join(r.recipient for r in err.recipients)
            raise ChannelError(f"the SMTP server refused {refused}") from err
        except aiosmtplib.SMTPResponseException as err:
            if err.code >= 500:
                raise ChannelError(f"the SMTP server refused the message: {err.message}") from err
            error = f"{err.code} {err.message}"
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as err:
            error = str(err) or type(err).__name__
        if attempt == attempts:
            raise ChannelNotReady(f"the SMTP server failed {attempts} times; not sent: {error}")
        await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
