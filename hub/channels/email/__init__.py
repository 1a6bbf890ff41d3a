"""Email: IMAP in (IDLE, or polling), SMTP out, threading that gets real mail right."""

from hub.channels.email.adapter import EmailChannel

__all__ = ["EmailChannel"]
