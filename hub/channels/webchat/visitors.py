"""Who a chat visitor is: a durable id the hub signs, and a site's signed identity for its users.

A visitor id is ``v_<random>.<signature>``: the widget keeps it (localStorage, so it survives
reloads and tabs) and presents it on every connect; the signature (HMAC-SHA256 with a key in
data_dir) means nobody can pick another visitor's id and read their conversation.

A site whose users log in can link them to their customer record: it renders the user's id
with ``HMAC-SHA256(site identity_secret, user id)`` in hex (the scheme Intercom and Crisp
document), and the hub checks it before trusting the id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from hub.keys import key_file

PREFIX = "v_"


class VisitorIds:
    """Issues and checks signed visitor ids."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> VisitorIds:
        """Sign with the key kept in path (made on first use)."""
        return cls(key_file(path))

    def _signature(self, raw: str) -> str:
        digest = hmac.new(self._key, raw.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def issue(self) -> str:
        """A new visitor id."""
        raw = PREFIX + secrets.token_urlsafe(18)
        return f"{raw}.{self._signature(raw)}"

    def check(self, presented: object) -> str | None:
        """The visitor id if we issued it (the part before the dot is the identity value)."""
        if not isinstance(presented, str) or len(presented) > 100 or "." not in presented:
            return None
        raw, _, signature = presented.partition(".")
        if not raw.startswith(PREFIX) or not hmac.compare_digest(signature, self._signature(raw)):
            return None
        return raw


def signed_user(secret: str, user_id: object, signature: object) -> str | None:
    """The site's user id if the site signed it with its identity secret, else None."""
    if not isinstance(user_id, str | int) or not isinstance(signature, str):
        return None
    text = str(user_id)
    if not text or len(text) > 200:
        return None
    expected = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return text if hmac.compare_digest(expected, signature.lower()) else None
