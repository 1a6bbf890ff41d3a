"""Keys the hub makes for itself and keeps under data_dir (signing reply tokens, visitor ids)."""

from __future__ import annotations

import secrets
from pathlib import Path


def key_file(path: Path) -> bytes:
    """The 32-byte key kept in path, made on first use and readable by the hub's user only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()
