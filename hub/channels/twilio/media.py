"""Fetching MMS media from Twilio before its links go away, and keeping it under data_dir."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path

import aiohttp
import structlog

from hub.config import Settings
from hub.crm_store.unit_of_work import Store
from hub.domain.timeline import Attachment, TimelineEvent

log = structlog.get_logger(__name__)

MAX_BYTES = 20 * 1024 * 1024  # above Twilio's 5 MB MMS limit, with room for other providers
# Call recordings are fetched as MP3 (Twilio's 32 kbit/s: about 14 MB an hour; a WAV is 8 times
# that). Four hours of MP3 fit, and a longer conference is refused with a clear error.
RECORDING_MAX_BYTES = 256 * 1024 * 1024
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "video/mp4": ".mp4",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
}


RESUME_DAYS = 7  # at start, media this recent that was never fetched is fetched


def mp3(recording_url: str) -> str:
    """A Twilio recording's MP3 (its RecordingUrl alone gives a WAV, eight times the size)."""
    return recording_url if recording_url.endswith(".mp3") else recording_url + ".mp3"


class MediaError(Exception):
    """A media link that did not give us the file."""


async def fetch_one(
    session: aiohttp.ClientSession,
    url: str,
    auth: tuple[str, str] | None,
    target: Path,
    max_bytes: int = MAX_BYTES,
) -> int:
    """Download url to target (Twilio's media may need the account's basic auth); its size."""
    headers = {"Authorization": aiohttp.encode_basic_auth(*auth)} if auth else {}
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            raise MediaError(f"{url} answered {response.status}")
        size = 0
        partial = target.with_name(target.name + ".partial")
        with partial.open("wb") as out:
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    partial.unlink(missing_ok=True)
                    raise MediaError(f"{url} is larger than {max_bytes} bytes")
                out.write(chunk)
        partial.replace(target)
        return size


async def fetch_all(
    attachments: tuple[Attachment, ...],
    *,
    folder: Path,
    auth: tuple[str, str],
    auth_origin: str,
    attempts: int = 4,
    backoff_seconds: float = 1.0,
    max_bytes: int = MAX_BYTES,
    again: bool = False,
) -> tuple[Attachment, ...]:
    """Fetch every attachment with a URL, retrying with backoff; record path or error on each.

    ``again`` tries those whose earlier fetch gave up too (the provider says it is ready now).
    """
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    done: list[Attachment] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for n, attachment in enumerate(attachments):
            if (
                attachment.url is None
                or attachment.path is not None
                or (attachment.error is not None and not again)
            ):
                done.append(attachment)
                continue
            name = _SAFE.sub("_", attachment.filename) + EXTENSIONS.get(attachment.content_type, "")
            target = folder / f"{n}-{name}"
            error = "not tried"
            for attempt in range(1, attempts + 1):
                try:
                    # The account's credentials go to the account's API only, never elsewhere.
                    mine = attachment.url.startswith(auth_origin.rstrip("/") + "/")
                    size = await fetch_one(
                        session, attachment.url, auth if mine else None, target, max_bytes
                    )
                    done.append(replace(attachment, path=str(target), size=size, error=None))
                    break
                except (MediaError, aiohttp.ClientError, TimeoutError, OSError) as err:
                    error = str(err) or type(err).__name__
                    log.warning(
                        "media fetch failed", url=attachment.url, attempt=attempt, error=error
                    )
                    if attempt < attempts:
                        await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
            else:
                done.append(
                    replace(attachment, error=f"not fetched after {attempts} tries: {error}")
                )
    return tuple(done)


async def keep_media(
    store: Store,
    settings: Settings,
    event_id: int,
    media: tuple[Attachment, ...],
    *,
    backoff_seconds: float,
    attempts: int = 4,
    max_bytes: int = MAX_BYTES,
    again: bool = False,
) -> None:
    """Fetch an event's media now (Twilio's links do not last) and record where each is kept."""
    twilio = settings.twilio
    assert twilio.account_sid is not None
    assert twilio.auth_token is not None
    kept = await fetch_all(
        media,
        folder=Path(settings.data_dir) / "attachments" / str(event_id),
        auth=(twilio.account_sid, twilio.auth_token.get_secret_value()),
        auth_origin=twilio.api_base_url,
        attempts=attempts,
        backoff_seconds=backoff_seconds,
        max_bytes=max_bytes,
        again=again,
    )
    async with store.unit_of_work() as uow:
        await uow.timeline.set_attachments(event_id, kept)
        await uow.commit()


async def owed_event(store: Store, event_id: int) -> TimelineEvent | None:
    """The stored event if any of its files is still to be fetched (an outbox delivery of
    ``AttachmentsOwed`` may come again, after the files were kept)."""
    async with store.reading() as uow:
        stored = await uow.timeline.event(event_id)
    return stored if stored is not None and any(a.owed for a in stored.attachments) else None
