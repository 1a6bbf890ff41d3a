"""Keeping files that came with (or go out with) a message under data_dir."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from hub.domain.timeline import Attachment

_SAFE = re.compile(r"[^\w.-]+")


class File(Protocol):
    """A named blob: an email part, an uploaded reply attachment."""

    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def data(self) -> bytes: ...


def keep_files(folder: Path, files: Sequence[File]) -> tuple[Attachment, ...]:
    """Write each file into folder (blocking: run it in a thread); the attachments to record."""
    if not files:
        return ()
    folder.mkdir(parents=True, exist_ok=True)
    kept = []
    for n, file in enumerate(files):
        path = folder / f"{n}-{_SAFE.sub('_', file.filename)[:100]}"
        path.write_bytes(file.data)
        kept.append(
            Attachment(
                file.filename,
                file.content_type,
                size=len(file.data),
                path=str(path),
                content_id=getattr(file, "content_id", None),
                inline=bool(getattr(file, "inline", False)),
            )
        )
    return tuple(kept)
