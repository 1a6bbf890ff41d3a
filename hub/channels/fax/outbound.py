"""Faxes out: the document a fax carries, and the signed, expiring link the provider fetches.

The provider fetches an outbound fax's PDF from the hub itself (``DOCUMENTS``): the link names
the fax's event, and an HMAC over the event and the expiry (a key kept under data_dir) makes it
good for ``LINK_SECONDS`` and for that document only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from pathlib import Path

from hub.channels.base import OutboundMessage
from hub.channels.fax import documents
from hub.errors import ValidationError
from hub.keys import key_file

DOCUMENTS = "/webhooks/fax/documents"
LINK_SECONDS = 3600  # how long the provider may fetch an outbound document


class DocumentLinks:
    """Signed links to outbound faxes' documents."""

    def __init__(self, key_path: Path) -> None:
        self._key = key_file(key_path)

    def _signature(self, event_id: int, expires: int) -> str:
        digest = hmac.new(self._key, f"{event_id}:{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()[:24]).decode()

    def link(self, public_url: str, event_id: int, now: float) -> str:
        """Where the provider fetches the fax's document: signed, for LINK_SECONDS from now."""
        expires = int(now) + LINK_SECONDS
        signature = self._signature(event_id, expires)
        return f"{public_url}{DOCUMENTS}/{event_id}?expires={expires}&sig={signature}"

    def valid(self, event_id: int, expires: str, signature: str, now: float) -> bool:
        """Whether a link's signature is ours and it has not expired."""
        if not expires.isdigit():
            return False
        good = hmac.compare_digest(signature, self._signature(event_id, int(expires)))
        return good and int(expires) >= now


async def document_of(message: OutboundMessage) -> bytes:
    """The PDF to fax: the agent's PDF, else their text rendered to one."""
    pdfs = [a for a in message.attachments if a.path and a.content_type == documents.PDF]
    if pdfs:
        data = await asyncio.to_thread(Path(str(pdfs[0].path)).read_bytes)
        if documents.kind_of(data) != documents.PDF:
            raise ValidationError("the attached file is not really a PDF")
        return data
    if message.body.strip():
        return await asyncio.to_thread(documents.render_text, message.body)
    raise ValidationError("a fax needs a PDF or some text to send")
