"""Users, passwords (argon2id), API tokens and login sessions."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.crm_store.accounts import Team, TokenInfo, User
from hub.crm_store.audit import AuditEntry
from hub.crm_store.unit_of_work import Store, UnitOfWork
from hub.domain.users import Permission, Principal, Role
from hub.errors import AuthError, Conflict, NotFound, ValidationError

TOKEN_PREFIX = "hub_"  # noqa: S105  (a prefix, not a secret)
MIN_PASSWORD_LENGTH = 8
TOUCH_EVERY = timedelta(minutes=5)  # how stale a token's last_used_at may get before a write

_hasher = PasswordHasher()  # argon2id with the library's current (RFC 9106) parameters
# Verified against when the username is unknown, so a miss costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    """An argon2id hash of the password, after checking it is long enough.

    Hashing takes ~0.1 s of CPU by design, so it runs in a thread (argon2-cffi releases the
    GIL) and the event loop keeps serving everyone else meanwhile.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    return await asyncio.to_thread(_hasher.hash, password)


async def _password_matches(stored: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    """The stored form of a token: tokens are random, so a fast hash is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh bearer token with 256 bits of randomness."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Session:
    """A login: the token to present and when it stops working."""

    token: str
    expires_at: datetime
    user: User


async def create_user(
    store: Store,
    *,
    username: str,
    role: Role,
    password: str | None,
    teams: list[str],
    display_name: str | None,
    actor_id: int | None,
    now: datetime,
) -> User:
    """Create a user in the named teams (created as needed); audited."""
    username = username.strip()
    if not username or len(username) > 100 or any(ch.isspace() for ch in username):
        raise ValidationError("a username is 1-100 characters without spaces", field="username")
    password_hash = None if password is None else await hash_password(password)
    async with store.unit_of_work() as uow:
        if await uow.accounts.user_by_name(username) is not None:
            raise Conflict(f"there is already a user named {username!r}")
        team_ids = frozenset([(await uow.accounts.ensure_team(t, now)).id for t in teams])
        user = await uow.accounts.add_user(
            username=username,
            display_name=display_name or username,
            role=role,
            password_hash=password_hash,
            team_ids=team_ids,
            now=now,
        )
        uow.audit.add(
            at=now,
            actor_id=actor_id,
            action="user.create",
            entity_type="user",
            entity_id=user.id,
            username=username,
            role=role.value,
            teams=teams,
        )
        await uow.commit()
    return user


async def issue_token(
    store: Store,
    *,
    username: str,
    name: str,
    now: datetime,
    actor_id: int | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Create an API token for a user and return it (only its hash is kept)."""
    token = new_token()
    async with store.unit_of_work() as uow:
        user = await uow.accounts.user_by_name(username)
        if user is None:
            raise ValidationError(f"there is no user named {username!r}", field="username")
        token_id = await uow.accounts.add_token(
            user_id=user.id,
            name=name,
            kind="api",
            token_hash=hash_token(token),
            now=now,
            expires_at=expires_at,
        )
        uow.audit.add(
            at=now,
            actor_id=actor_id,
            action="token.create",
            entity_type="api_token",
            entity_id=token_id,
            user=username,
            name=name,
        )
        await uow.commit()
    return token


async def login(
    store: Store, *, username: str, password: str, ttl: timedelta, now: datetime
) -> Session:
    """Check a password and open a session; the same error whether the user or password is wrong."""
    async with store.unit_of_work() as uow:
        user = await uow.accounts.user_by_name(username)
        stored = user.password_hash if user is not None and user.active else None
        matches = await _password_matches(stored or _DUMMY_HASH, password)
        if user is None or stored is None or not matches:
            uow.audit.add(
                at=now,
                actor_id=None,
                action="auth.login_failed",
                entity_type="user",
                entity_id=None if user is None else user.id,
                username=username[:100],
            )
            await uow.commit()
            raise AuthError("wrong username or password")
        if _hasher.check_needs_rehash(stored):
            await uow.accounts.set_password_hash(user.id, await hash_password(password))
        token = new_token()
        expires_at = now + ttl
        await uow.accounts.add_token(
            user_id=user.id,
            name="login",
            kind="session",
            token_hash=hash_token(token),
            now=now,
            expires_at=expires_at,
        )
        uow.audit.add(
            at=now, actor_id=user.id, action="auth.login", entity_type="user", entity_id=user.id
        )
        await uow.commit()
    return Session(token, expires_at, user)


async def authenticate(store: Store, token: str, now: datetime) -> tuple[Principal, int]:
    """The principal a bearer token stands for, and the token's id; AuthError if none.

    A grant read from the store is kept a few seconds (``store.grants``), so most requests
    read nothing for their token; revocations forget it at once.
    """
    if not token.startswith(TOKEN_PREFIX):
        raise AuthError("that is not a hub token")
    token_hash = hash_token(token)
    grant = store.grants.get(token_hash)
    if grant is None:
        async with store.unit_of_work() as uow:
            grant = await uow.accounts.grant_for(token_hash)
            if grant is None:
                raise AuthError("unknown or revoked token")
            if grant.last_used_at is None or now - grant.last_used_at > TOUCH_EVERY:
                await uow.accounts.touch_token(grant.token_id, now)
                await uow.commit()
                grant = replace(grant, last_used_at=now)
        store.grants.put(token_hash, grant)
    if grant.expires_at is not None and grant.expires_at <= now:
        raise AuthError("the token has expired; log in again")
    if not grant.user.active:
        raise AuthError("the user is deactivated")
    return grant.user.principal(), grant.token_id


async def logout(store: Store, token_id: int, principal: Principal, now: datetime) -> None:
    """Revoke the token the caller used."""
    async with store.unit_of_work() as uow:
        await uow.accounts.revoke_token(token_id, now)
        uow.audit.add(
            at=now,
            actor_id=principal.user_id,
            action="auth.logout",
            entity_type="api_token",
            entity_id=token_id,
        )
        await uow.commit()
    await store.grants.forget(token_ids=[token_id])


async def list_users(store: Store, principal: Principal) -> list[User]:
    """Every user (admins only)."""
    principal.require(Permission.USERS_MANAGE)
    async with store.unit_of_work() as uow:
        return await uow.accounts.users()


async def current_user(store: Store, principal: Principal) -> User:
    """The caller's own user record."""
    async with store.unit_of_work() as uow:
        user = await uow.accounts.user(principal.user_id)
    if user is None:
        raise AuthError("the user behind this token no longer exists")
    return user


async def audit_log(
    store: Store,
    principal: Principal,
    *,
    limit: int,
    before_id: int | None,
    entity_type: str | None,
) -> list[AuditEntry]:
    """The newest audit entries (admins only)."""
    principal.require(Permission.AUDIT_READ)
    async with store.unit_of_work() as uow:
        return await uow.audit.latest(limit=limit, before_id=before_id, entity_type=entity_type)


async def _user_named(uow: UnitOfWork, username: str) -> User:
    user = await uow.accounts.user_by_name(username)
    if user is None:
        raise NotFound(f"there is no user named {username!r}")
    return user


async def set_user_active(
    store: Store, *, username: str, active: bool, actor_id: int | None, now: datetime
) -> User:
    """Deactivate a user (logins and every token stop working) or reactivate them; audited."""
    async with store.unit_of_work() as uow:
        user = await _user_named(uow, username)
        await uow.accounts.set_active(user.id, active)
        uow.audit.add(
            at=now,
            actor_id=actor_id,
            action="user.activate" if active else "user.deactivate",
            entity_type="user",
            entity_id=user.id,
        )
        await uow.commit()
    await store.grants.forget(user_ids=[user.id])
    return user


async def list_tokens(store: Store, *, username: str) -> list[TokenInfo]:
    """A user's tokens (ids, names, dates), newest first."""
    async with store.unit_of_work() as uow:
        user = await _user_named(uow, username)
        return await uow.accounts.tokens_of(user.id)


async def revoke_token(store: Store, *, token_id: int, actor_id: int | None, now: datetime) -> None:
    """Revoke a token by id (see list_tokens); audited."""
    async with store.unit_of_work() as uow:
        if not await uow.accounts.revoke_token(token_id, now):
            raise NotFound(f"no live token {token_id}")
        uow.audit.add(
            at=now,
            actor_id=actor_id,
            action="token.revoke",
            entity_type="api_token",
            entity_id=token_id,
        )
        await uow.commit()
    await store.grants.forget(token_ids=[token_id])


async def update_user(
    store: Store,
    *,
    username: str,
    display_name: str | None,
    role: Role | None,
    teams: list[str] | None,
    actor: Principal,
    now: datetime,
) -> User:
    """Change a user's name, role or teams (named teams are made as needed); audited.

    Admins cannot change their own role, so the last admin cannot lock everyone out.
    """
    async with store.unit_of_work() as uow:
        user = await _user_named(uow, username)
        if role is not None and role is not user.role and user.id == actor.user_id:
            raise Conflict("you cannot change your own role; ask another admin")
        team_ids = None
        if teams is not None:
            if not teams:
                raise ValidationError("a user belongs to at least one team", field="teams")
            team_ids = frozenset([(await uow.accounts.ensure_team(t, now)).id for t in teams])
        await uow.accounts.update_user(
            user.id, display_name=display_name, role=role, team_ids=team_ids
        )
        uow.audit.add(
            at=now,
            actor_id=actor.user_id,
            action="user.update",
            entity_type="user",
            entity_id=user.id,
            display_name=display_name,
            role=None if role is None else role.value,
            teams=teams,
        )
        await uow.commit()
        updated = await uow.accounts.user(user.id)
    await store.grants.forget(user_ids=[user.id])  # a new role or teams, from now on
    assert updated is not None
    return updated


async def create_team(store: Store, *, name: str, actor: Principal, now: datetime) -> Team:
    """A new team; audited."""
    async with store.unit_of_work() as uow:
        if await uow.accounts.team_by_name(name) is not None:
            raise Conflict(f"there is already a team named {name!r}")
        team = await uow.accounts.ensure_team(name, now)
        uow.audit.add(
            at=now,
            actor_id=actor.user_id,
            action="team.create",
            entity_type="team",
            entity_id=team.id,
            name=name,
        )
        await uow.commit()
    return team


async def delete_team(
    store: Store, *, team_id: int, routed_by: set[str], actor: Principal, now: datetime
) -> None:
    """Remove a team no user, customer or routed queue (routed_by: their teams) needs."""
    async with store.unit_of_work() as uow:
        names = await uow.accounts.team_names()
        if team_id not in names:
            raise NotFound(f"no team {team_id}")
        name = names[team_id]
        members = (await uow.accounts.team_members()).get(team_id, [])
        if members:
            raise Conflict(f"team {name!r} still has {len(members)} user(s); move them first")
        if name in routed_by:
            raise Conflict(f"queues of the routing policy belong to team {name!r}")
        customers = await uow.accounts.team_customers(team_id)
        if customers:
            raise Conflict(f"team {name!r} holds {customers} customer(s)")
        await uow.accounts.delete_team(team_id)
        uow.audit.add(
            at=now,
            actor_id=actor.user_id,
            action="team.delete",
            entity_type="team",
            entity_id=team_id,
            name=name,
        )
        await uow.commit()
