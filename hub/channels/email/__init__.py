"""Email: IMAP in (IDLE, or polling), SMTP out, threading that gets real mail right."""
