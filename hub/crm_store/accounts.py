"""Users, teams, queues and API tokens."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm_store.database import in_ids
from hub.crm_store.tables import (
    AgentPresenceRow,
    AgentProfileRow,
    ApiTokenRow,
    CustomerRow,
    QueueRow,
    TeamRow,
    UserRow,
    UserTeamRow,
)
from hub.domain.users import Principal, Role

# Users with their teams, by id: built once (a build took 80 us; every screen pop reads it).
_USERS_BY_ID = (
    select(UserRow.__table__, UserTeamRow.team_id)
    .outerjoin(UserTeamRow, UserTeamRow.user_id == UserRow.id)
    .where(in_ids(UserRow.__table__.c.id))
)


@dataclass(frozen=True, slots=True)
class User:
    """A person who logs in to the hub."""

    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    password_hash: str | None
    team_ids: frozenset[int]

    def principal(self) -> Principal:
        """The user as the caller of a request."""
        return Principal(self.id, self.username, self.role, self.team_ids)


@dataclass(frozen=True, slots=True)
class Team:
    """A group of users who share customers and queues."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Queue:
    """A line of waiting work, owned by a team."""

    id: int
    name: str
    team_id: int | None


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """What routing needs to know about a user who takes work."""

    user: User
    team_names: frozenset[str]
    skills: dict[str, int]
    languages: frozenset[str]
    capacity: dict[str, int]


@dataclass(frozen=True, slots=True)
class StoredPresence:
    """An agent's presence as the store keeps it."""

    presence: str
    reason: str | None
    since: datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as an admin sees it (never the token itself)."""

    id: int
    name: str
    kind: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What a presented token stands for."""

    token_id: int
    kind: str
    expires_at: datetime | None
    last_used_at: datetime | None
    user: User


def _user_of(row: Any, team_ids: frozenset[int]) -> User:
    """A user from an ORM instance or a Core row (same attribute names) and their teams."""
    return User(
        row.id,
        row.username,
        row.display_name,
        Role(row.role),
        row.active,
        row.password_hash,
        team_ids,
    )


class AccountRepository:
    """Reads and writes users, teams, queues and tokens."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _teams_of(self, user_id: int) -> frozenset[int]:
        rows = await self._session.scalars(
            select(UserTeamRow.team_id).where(UserTeamRow.user_id == user_id)
        )
        return frozenset(rows.all())

    async def _user(self, row: UserRow) -> User:
        return _user_of(row, await self._teams_of(row.id))

    async def user_by_name(self, username: str) -> User | None:
        """The user with that username, or None."""
        row = await self._session.scalar(select(UserRow).where(UserRow.username == username))
        return None if row is None else await self._user(row)

    async def user(self, user_id: int) -> User | None:
        """The user with that id, or None."""
        row = await self._session.get(UserRow, user_id)
        return None if row is None else await self._user(row)

    async def users_by_id(self, user_ids: Iterable[int]) -> dict[int, User]:
        """These users (those that exist) with their teams, in one statement."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        rows = await self._session.execute(_USERS_BY_ID, {"ids": ids})
        teams: dict[int, set[int]] = {}
        found: dict[int, Any] = {}
        for row in rows:
            found.setdefault(row.id, row)
            members = teams.setdefault(row.id, set())
            if row.team_id is not None:
                members.add(row.team_id)
        return {user_id: _user_of(row, frozenset(teams[user_id])) for user_id, row in found.items()}

    async def users(self) -> list[User]:
        """Every user, by username."""
        rows = (await self._session.scalars(select(UserRow).order_by(UserRow.username))).all()
        return [await self._user(row) for row in rows]

    async def add_user(
        self,
        *,
        username: str,
        display_name: str,
        role: Role,
        password_hash: str | None,
        team_ids: frozenset[int],
        now: datetime,
    ) -> User:
        """Create a user in the given teams."""
        row = UserRow(
            username=username,
            display_name=display_name,
            role=role.value,
            password_hash=password_hash,
            active=True,
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        self._session.add_all(UserTeamRow(user_id=row.id, team_id=t) for t in team_ids)
        await self._session.flush()
        return User(row.id, username, display_name, role, True, password_hash, team_ids)

    async def set_active(self, user_id: int, active: bool) -> None:
        """Let a user log in again, or stop them (their tokens stop working too)."""
        await self._session.execute(
            update(UserRow).where(UserRow.id == user_id).values(active=active)
        )

    async def tokens_of(self, user_id: int) -> list[TokenInfo]:
        """A user's tokens, newest first."""
        rows = await self._session.scalars(
            select(ApiTokenRow)
            .where(ApiTokenRow.user_id == user_id)
            .order_by(ApiTokenRow.id.desc())
        )
        return [
            TokenInfo(
                r.id, r.name, r.kind, r.created_at, r.expires_at, r.last_used_at, r.revoked_at
            )
            for r in rows
        ]

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace a user's password hash (after a rehash or a password change)."""
        await self._session.execute(
            update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
        )

    async def team_by_name(self, name: str) -> Team | None:
        """The team with that name, or None."""
        row = await self._session.scalar(select(TeamRow).where(TeamRow.name == name))
        return None if row is None else Team(row.id, row.name)

    async def ensure_team(self, name: str, now: datetime) -> Team:
        """The team with that name, created if it does not exist."""
        team = await self.team_by_name(name)
        if team is not None:
            return team
        row = TeamRow(name=name, created_at=now)
        self._session.add(row)
        await self._session.flush()
        return Team(row.id, row.name)

    async def teams(self) -> list[Team]:
        """Every team, by name."""
        rows = await self._session.scalars(select(TeamRow).order_by(TeamRow.name))
        return [Team(r.id, r.name) for r in rows]

    async def team_members(self) -> dict[int, list[int]]:
        """The users of each team, by team id."""
        members: dict[int, list[int]] = {}
        for row in await self._session.execute(select(UserTeamRow.team_id, UserTeamRow.user_id)):
            members.setdefault(row.team_id, []).append(row.user_id)
        return members

    async def team_customers(self, team_id: int) -> int:
        """How many customers the team holds."""
        found = await self._session.scalar(
            select(func.count()).select_from(CustomerRow).where(CustomerRow.team_id == team_id)
        )
        return int(found or 0)

    async def delete_team(self, team_id: int) -> None:
        """Remove a team (the caller made sure no one, no customer, no queue in force needs it).

        Queues it owned that are no longer routed keep their history, ownerless.
        """
        await self._session.execute(
            update(QueueRow).where(QueueRow.team_id == team_id).values(team_id=None)
        )
        await self._session.execute(delete(TeamRow).where(TeamRow.id == team_id))

    async def update_user(
        self,
        user_id: int,
        *,
        display_name: str | None = None,
        role: Role | None = None,
        team_ids: frozenset[int] | None = None,
    ) -> None:
        """Change a user's name, role or teams (what is None stays)."""
        values: dict[str, str] = {}
        if display_name is not None:
            values["display_name"] = display_name
        if role is not None:
            values["role"] = role.value
        if values:
            await self._session.execute(update(UserRow).where(UserRow.id == user_id).values(values))
        if team_ids is not None:
            await self._session.execute(delete(UserTeamRow).where(UserTeamRow.user_id == user_id))
            self._session.add_all(UserTeamRow(user_id=user_id, team_id=t) for t in team_ids)
            await self._session.flush()

    async def team_names(self) -> dict[int, str]:
        """Every team's name by id."""
        rows = await self._session.execute(select(TeamRow.id, TeamRow.name))
        return {row.id: row.name for row in rows}

    async def queues(self) -> list[Queue]:
        """Every queue, by name."""
        rows = await self._session.scalars(select(QueueRow).order_by(QueueRow.name))
        return [Queue(r.id, r.name, r.team_id) for r in rows]

    async def set_queue_team(self, queue_id: int, team_id: int) -> None:
        """Give a queue to a team (the routing policy says which)."""
        await self._session.execute(
            update(QueueRow).where(QueueRow.id == queue_id).values(team_id=team_id)
        )

    async def agent_profiles(self, user_ids: list[int] | None = None) -> list[AgentProfile]:
        """Routing profiles of active agents and supervisors (or of the users named)."""
        query = select(UserRow).where(
            UserRow.active.is_(True), UserRow.role.in_([Role.AGENT.value, Role.SUPERVISOR.value])
        )
        if user_ids is not None:
            query = query.where(UserRow.id.in_(user_ids))
        users = [await self._user(row) for row in await self._session.scalars(query)]
        names = await self.team_names()
        stored = {
            row.user_id: row
            for row in await self._session.scalars(
                select(AgentProfileRow).where(AgentProfileRow.user_id.in_([u.id for u in users]))
            )
        }
        profiles = []
        for user in users:
            row = stored.get(user.id)
            profiles.append(
                AgentProfile(
                    user=user,
                    team_names=frozenset(names[t] for t in user.team_ids if t in names),
                    skills=dict(row.skills) if row else {},
                    languages=frozenset(row.languages) if row else frozenset(),
                    capacity=dict(row.capacity) if row else {},
                )
            )
        return profiles

    async def set_agent_profile(
        self,
        user_id: int,
        *,
        skills: dict[str, int],
        languages: list[str],
        capacity: dict[str, int],
        now: datetime,
    ) -> None:
        """Replace a user's routing profile."""
        row = await self._session.get(AgentProfileRow, user_id)
        if row is None:
            row = AgentProfileRow(user_id=user_id)
            self._session.add(row)
        row.skills, row.languages, row.capacity, row.updated_at = (
            skills,
            languages,
            capacity,
            now,
        )
        await self._session.flush()

    async def queue_by_name(self, name: str) -> Queue | None:
        """The queue with that name, or None."""
        row = await self._session.scalar(select(QueueRow).where(QueueRow.name == name))
        return None if row is None else Queue(row.id, row.name, row.team_id)

    async def ensure_queue(self, name: str, team_id: int | None, now: datetime) -> Queue:
        """The queue with that name, created for the team if it does not exist."""
        queue = await self.queue_by_name(name)
        if queue is not None:
            return queue
        row = QueueRow(name=name, team_id=team_id, created_at=now)
        self._session.add(row)
        await self._session.flush()
        return Queue(row.id, row.name, row.team_id)

    async def add_token(
        self,
        *,
        user_id: int,
        name: str,
        kind: str,
        token_hash: str,
        now: datetime,
        expires_at: datetime | None,
    ) -> int:
        """Store a token's hash; return its id."""
        row = ApiTokenRow(
            user_id=user_id,
            name=name,
            kind=kind,
            token_hash=token_hash,
            created_at=now,
            expires_at=expires_at,
        )
        self._session.add(row)
        await self._session.flush()
        return row.id

    async def grant_for(self, token_hash: str) -> TokenGrant | None:
        """The live grant behind a token hash (not revoked), or None."""
        found = (
            await self._session.execute(
                select(ApiTokenRow, UserRow)
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.token_hash == token_hash, ApiTokenRow.revoked_at.is_(None))
            )
        ).first()
        if found is None:
            return None
        token, user_row = found
        user = await self._user(user_row)
        return TokenGrant(token.id, token.kind, token.expires_at, token.last_used_at, user)

    async def touch_token(self, token_id: int, now: datetime) -> None:
        """Note that a token was used."""
        await self._session.execute(
            update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now)
        )

    async def presences(self) -> dict[int, StoredPresence]:
        """Every agent's last known presence (routing rebuilds from it)."""
        rows = await self._session.execute(select(AgentPresenceRow.__table__))
        return {r.user_id: StoredPresence(r.presence, r.reason, r.since) for r in rows}

    async def keep_presence(
        self, user_id: int, presence: str, reason: str | None, since: datetime
    ) -> None:
        """Remember an agent's presence (one row per agent, replaced)."""
        await self._session.merge(
            AgentPresenceRow(user_id=user_id, presence=presence, reason=reason, since=since)
        )

    async def live_tokens(self, token_ids: Collection[int], now: datetime) -> dict[int, Role]:
        """Of these tokens, those still good now (not revoked or expired, user active): roles."""
        live: dict[int, Role] = {}
        ids = sorted(token_ids)
        for start in range(0, len(ids), 1000):
            rows = await self._session.execute(
                select(ApiTokenRow.id, UserRow.role)
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(
                    ApiTokenRow.id.in_(ids[start : start + 1000]),
                    ApiTokenRow.revoked_at.is_(None),
                    (ApiTokenRow.expires_at.is_(None)) | (ApiTokenRow.expires_at > now),
                    UserRow.active.is_(True),
                )
            )
            live.update({token_id: Role(role) for token_id, role in rows})
        return live

    async def revoke_token(self, token_id: int, now: datetime) -> bool:
        """Make a live token useless from now on; False if there was no such live token."""
        result = await self._session.execute(
            update(ApiTokenRow)
            .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
