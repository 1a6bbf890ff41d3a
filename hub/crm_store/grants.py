"""A short-lived cache of the grants behind bearer tokens, forgotten everywhere on revocation.

Every authenticated request used to read its token and its user's teams (two statements, a
third of a unified-record GET). A grant read once is kept for ``TTL`` seconds. Revoking a token,
deactivating a user or changing their role or teams forgets their grants at once in this
process and, when the hub is scaled out, in every other process through Redis pub/sub; the TTL
bounds what a lost message (Redis restarting) could leave behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from hub.crm_store.accounts import TokenGrant
from hub.redis_connection import connect

log = structlog.get_logger(__name__)

TTL = 5.0  # seconds a grant is trusted without reading it again
MAX_GRANTS = 50_000  # beyond this, the oldest half is dropped


@dataclass(frozen=True, slots=True)
class _Kept:
    grant: TokenGrant
    until: float  # monotonic


class GrantCache:
    """Token hash -> the grant read for it, for a few seconds."""

    def __init__(self, ttl: float = TTL) -> None:
        self._ttl = ttl
        self._kept: dict[str, _Kept] = {}
        self._redis_url: str | None = None
        self._publisher: Redis | None = None
        self._channel = ""
        self._listener: asyncio.Task[None] | None = None

    def get(self, token_hash: str) -> TokenGrant | None:
        """The grant kept for this token, if it is still fresh."""
        kept = self._kept.get(token_hash)
        if kept is None:
            return None
        if kept.until <= time.monotonic():
            self._kept.pop(token_hash, None)
            return None
        return kept.grant

    def put(self, token_hash: str, grant: TokenGrant) -> None:
        """Keep a grant just read from the store."""
        if len(self._kept) >= MAX_GRANTS:
            for stale in list(self._kept)[: MAX_GRANTS // 2]:
                del self._kept[stale]
        self._kept[token_hash] = _Kept(grant, time.monotonic() + self._ttl)

    async def forget(self, *, token_ids: Iterable[int] = (), user_ids: Iterable[int] = ()) -> None:
        """Forget these tokens' and users' grants here and, scaled out, in every process."""
        tokens, users = sorted(set(token_ids)), sorted(set(user_ids))
        self._drop(tokens, users)
        if self._publisher is None:
            return
        try:
            await self._publisher.publish(self._channel, json.dumps({"t": tokens, "u": users}))
        except Exception:  # the TTL still ends the grant in the other processes
            log.exception("could not tell the other hub processes of a revocation")

    def _drop(self, tokens: Iterable[int], users: Iterable[int]) -> None:
        token_set, user_set = set(tokens), set(users)
        for token_hash, kept in list(self._kept.items()):
            if kept.grant.token_id in token_set or kept.grant.user.id in user_set:
                self._kept.pop(token_hash, None)

    async def share(self, redis_url: str, channel: str) -> None:
        """Scaled out: hear the other processes' revocations (and tell them ours)."""
        self._redis_url = redis_url
        self._publisher = connect(redis_url)
        self._channel = channel
        ready = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(ready), name="grant-revocations")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5)

    async def _listen(self, ready: asyncio.Event) -> None:
        while True:
            try:
                client = connect(self._redis_url or "")
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.subscribe(self._channel)
                    ready.set()
                    self._kept.clear()  # what was revoked while we were not listening
                    async for message in pubsub.listen():
                        told = json.loads(message["data"])
                        self._drop(told.get("t", ()), told.get("u", ()))
                finally:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("revocations from other hub processes not heard; listening again")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._publisher is not None:
            await self._publisher.aclose()
            self._publisher = None
