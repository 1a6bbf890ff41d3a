"""The routing policy's versions in the store, the policy file, and the queues they name.

The store keeps every version (admins edit the policy from the console). The policy file, when
there is one, is imported as a new version whenever its text differs from the file the version
in force descends from, so editing the file still takes effect. Without a file or an admin's
edit, the policy is made from the store's queues and follows them. Processes starting together
race to import the same file or create the same queue: the loser reads what the winner saved
and decides again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from hub.config import Settings
from hub.crm_store.config_versions import ConfigVersion
from hub.crm_store.unit_of_work import Store
from hub.errors import Conflict, HubError, NotFound, StoreConflict
from hub.routing.policy import Policy, policy_document, policy_from_document, read_policy_file

log = structlog.get_logger(__name__)
RACE_ATTEMPTS = 3  # a start-up write that loses a race with another process: tried again
DEFAULT_POLICY_FILE = Path("config/routing.toml")
POLICY = "routing_policy"  # its kind among the config versions
FROM_QUEUES = "the queues in the store"  # the source of a policy made without a file


@dataclass(frozen=True, slots=True)
class QueueNames:
    """The store's ids of the policy's queues, both ways."""

    ids: dict[str, int]
    names: dict[int, str]


class PolicyVersions:
    """Loads, saves and lists the routing policy's versions; keeps the version in force."""

    def __init__(self, store: Store, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._in_force: ConfigVersion | None = None

    def policy_file(self) -> Path | None:
        """The policy file in use: the setting, else config/routing.toml if it exists."""
        if self._settings.routing_policy:
            return Path(self._settings.routing_policy)
        return DEFAULT_POLICY_FILE if DEFAULT_POLICY_FILE.is_file() else None

    @property
    def in_force(self) -> ConfigVersion:
        """The stored policy version in force."""
        if self._in_force is None:
            raise HubError("routing is not started")
        return self._in_force

    async def load(self, *, import_file: bool = False) -> Policy:
        """The policy to put in force: the store's newest version, after importing a changed
        file (``import_file``: whatever its text)."""
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                return await self._load_once(import_file=import_file)
            except Conflict:
                if attempt == RACE_ATTEMPTS:
                    raise
                log.info("routing policy saved by another process meanwhile; reading it again")
        raise AssertionError("unreachable")

    async def _load_once(self, *, import_file: bool) -> Policy:
        path = self.policy_file()
        latest = await self.latest()
        if path is not None:
            text = read_policy_file(path)
            digest = hashlib.sha256(text.encode()).hexdigest()
            if import_file or latest is None or latest.file_digest != digest:
                document = policy_document(text, source=str(path))
                latest = await self._save(
                    document, source=f"file {path}", file_digest=digest, after=latest
                )
                log.info("routing policy file imported", source=str(path), version=latest.version)
        elif latest is None or latest.source == FROM_QUEUES:
            # Until an admin edits it, a policy made from the store's queues follows them.
            document = await self._document_from_queues()
            if latest is None or latest.document != document:
                latest = await self._save(document, source=FROM_QUEUES, after=latest)
        assert latest is not None
        self._in_force = latest
        return policy_from_document(latest.document, source=f"policy version {latest.version}")

    async def _document_from_queues(self) -> dict[str, Any]:
        """Without a policy: one queue per queue in the store, each served by its team."""
        async with self._store.reading() as uow:
            queues = await uow.accounts.queues()
            teams = await uow.accounts.team_names()
        default = self._settings.default_team
        pairs = [(default, default)] + [
            (q.name, teams.get(q.team_id or -1, default)) for q in queues if q.name != default
        ]
        return {
            "default_queue": default,
            "queues": [{"name": name, "team": team} for name, team in pairs],
        }

    async def save(
        self,
        document: dict[str, Any],
        *,
        source: str,
        after: ConfigVersion | None,
        actor_id: int,
    ) -> ConfigVersion:
        """An admin's version after ``after``, audited; it is the version in force from now."""
        self._in_force = await self._save(document, source=source, after=after, actor_id=actor_id)
        return self._in_force

    async def _save(
        self,
        document: dict[str, Any],
        *,
        source: str,
        after: ConfigVersion | None,
        file_digest: str | None = None,
        actor_id: int | None = None,
    ) -> ConfigVersion:
        """Save the version after ``after``; Conflict if someone saved one meanwhile."""
        now = self._clock()
        try:
            async with self._store.unit_of_work() as uow:
                saved = await uow.config.add(
                    POLICY,
                    version=(after.version if after else 0) + 1,
                    document=document,
                    source=source,
                    file_digest=file_digest or (after.file_digest if after else None),
                    created_by=actor_id,
                    now=now,
                )
                if actor_id is not None:
                    uow.audit.add(
                        at=now,
                        actor_id=actor_id,
                        action="routing.policy",
                        entity_type="routing_policy",
                        entity_id=saved.version,
                        source=source,
                    )
                await uow.commit()
        except StoreConflict as err:
            raise Conflict(
                "the routing policy was changed meanwhile; load it again and redo the change"
            ) from err
        return saved

    async def latest(self) -> ConfigVersion | None:
        async with self._store.reading() as uow:
            return await uow.config.latest(POLICY)

    async def newer_saved(self) -> bool:
        """Whether another process saved a version newer than the one in force here."""
        async with self._store.reading() as uow:
            newest = await uow.config.latest_number(POLICY)
        return self._in_force is not None and newest > self._in_force.version

    async def history(self, limit: int = 50) -> list[ConfigVersion]:
        """The policy's versions, newest first."""
        async with self._store.reading() as uow:
            return await uow.config.history(POLICY, limit=limit)

    async def get(self, version: int) -> ConfigVersion:
        """One version of the policy (NotFound if there is none)."""
        async with self._store.reading() as uow:
            found = await uow.config.get(POLICY, version)
        if found is None:
            raise NotFound(f"no routing policy version {version}")
        return found

    async def sync_queues(self, policy: Policy) -> QueueNames:
        """Make sure every queue of the policy exists in the store, owned by its team.

        Another process may create the same team or queue at the same moment: the loser
        finds the winner's rows when it tries again.
        """
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                async with self._store.unit_of_work() as uow:
                    now = self._clock()
                    for queue in policy.queues.values():
                        team = await uow.accounts.ensure_team(queue.team, now)
                        stored = await uow.accounts.ensure_queue(queue.name, team.id, now)
                        if stored.team_id != team.id:
                            await uow.accounts.set_queue_team(stored.id, team.id)
                    stored_queues = await uow.accounts.queues()
                    await uow.commit()
                break
            except StoreConflict:
                if attempt == RACE_ATTEMPTS:
                    raise
                log.info("queues created by another process meanwhile; reading them again")
        return QueueNames(
            {q.name: q.id for q in stored_queues}, {q.id: q.name for q in stored_queues}
        )
