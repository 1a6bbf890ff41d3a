"""Log in, log out, who am I, users and teams."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.agent_console.presenters import user_json
from hub.agent_console.throttle import LoginThrottle
from hub.domain.users import Permission, Role
from hub.errors import AuthError
from hub.http import (
    HUB,
    TOKEN_ID,
    authenticated,
    json_response,
    path_id,
    principal_of,
    public,
    read_json,
    requires,
)
from hub.services import accounts

routes = web.RouteTableDef()
THROTTLE: web.AppKey[LoginThrottle] = web.AppKey("login_throttle", LoginThrottle)


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


@routes.post("/api/v1/auth/login")
@public
async def login(request: web.Request) -> web.Response:
    """Trade a username and password for a session token."""
    hub = request.app[HUB]
    throttle = request.app[THROTTLE]
    body = await read_json(request, LoginBody)
    address = request.remote or "unknown"
    await throttle.check(body.username, address)
    try:
        session = await accounts.login(
            hub.store,
            username=body.username,
            password=body.password,
            ttl=timedelta(hours=hub.settings.session_ttl_hours),
            now=hub.clock(),
        )
    except AuthError:
        await throttle.failed(body.username, address)
        raise
    await throttle.succeeded(body.username)
    return json_response(
        {"token": session.token, "expires_at": session.expires_at, "user": user_json(session.user)}
    )


@routes.post("/api/v1/auth/logout")
@authenticated
async def logout(request: web.Request) -> web.Response:
    """Revoke the token this request was made with."""
    hub = request.app[HUB]
    await accounts.logout(hub.store, request[TOKEN_ID], principal_of(request), hub.clock())
    return web.Response(status=204)


@routes.get("/api/v1/me")
@authenticated
async def me(request: web.Request) -> web.Response:
    """The caller's user record."""
    user = await accounts.current_user(request.app[HUB].store, principal_of(request))
    return json_response(user_json(user))


TeamName = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class NewUserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100)
    display_name: str | None = Field(default=None, max_length=200)
    role: Role
    teams: list[TeamName] = Field(default_factory=list, max_length=20)
    password: str = Field(min_length=8, max_length=1024)


class UserChangeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    teams: list[TeamName] | None = Field(default=None, max_length=20)


class NewTeamBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TeamName


class ActiveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool


@routes.post("/api/v1/users")
@requires(Permission.USERS_MANAGE)
async def create_user(request: web.Request) -> web.Response:
    """Create a user (admins): a role, teams (made as needed), a password of 8+ characters."""
    hub = request.app[HUB]
    body = await read_json(request, NewUserBody)
    user = await accounts.create_user(
        hub.store,
        username=body.username,
        role=body.role,
        password=body.password,
        teams=body.teams or [hub.settings.default_team],
        display_name=body.display_name,
        actor_id=principal_of(request).user_id,
        now=hub.clock(),
    )
    if hub.routing is not None:
        await hub.routing.refresh_agent(user.id)
    return json_response(user_json(user), status=201)


@routes.post(r"/api/v1/users/{username}/active")
@requires(Permission.USERS_MANAGE)
async def set_active(request: web.Request) -> web.Response:
    """Deactivate a user (their logins and tokens stop working) or reactivate them (admins)."""
    hub = request.app[HUB]
    body = await read_json(request, ActiveBody)
    user = await accounts.set_user_active(
        hub.store,
        username=request.match_info["username"],
        active=body.active,
        actor_id=principal_of(request).user_id,
        now=hub.clock(),
    )
    return json_response(user_json(user) | {"active": body.active})


@routes.get("/api/v1/users")
@requires(Permission.USERS_MANAGE)
async def users(request: web.Request) -> web.Response:
    """Every user (admins)."""
    found = await accounts.list_users(request.app[HUB].store, principal_of(request))
    return json_response({"users": [user_json(u) for u in found]})


@routes.patch(r"/api/v1/users/{username}")
@requires(Permission.USERS_MANAGE)
async def update_user(request: web.Request) -> web.Response:
    """Change a user's name, role or teams (admins; not their own role); audited."""
    hub = request.app[HUB]
    body = await read_json(request, UserChangeBody)
    user = await accounts.update_user(
        hub.store,
        username=request.match_info["username"],
        display_name=body.display_name,
        role=body.role,
        teams=body.teams,
        actor=principal_of(request),
        now=hub.clock(),
    )
    if hub.routing is not None:
        await hub.routing.refresh_agent(user.id)
    return json_response(user_json(user))


@routes.get("/api/v1/teams")
@requires(Permission.USERS_MANAGE)
async def teams(request: web.Request) -> web.Response:
    """Every team with its members and the queues of the routing policy it serves (admins)."""
    hub = request.app[HUB]
    async with hub.store.unit_of_work() as uow:
        found = await uow.accounts.teams()
        members = await uow.accounts.team_members()
    served: dict[str, list[str]] = {}
    if hub.routing is not None:
        for queue in hub.routing.policy.queues.values():
            served.setdefault(queue.team, []).append(queue.name)
    return json_response(
        {
            "teams": [
                {
                    "id": t.id,
                    "name": t.name,
                    "user_ids": sorted(members.get(t.id, [])),
                    "queues": served.get(t.name, []),
                }
                for t in found
            ]
        }
    )


@routes.post("/api/v1/teams")
@requires(Permission.USERS_MANAGE)
async def create_team(request: web.Request) -> web.Response:
    """Make a team (admins); audited."""
    hub = request.app[HUB]
    body = await read_json(request, NewTeamBody)
    team = await accounts.create_team(
        hub.store, name=body.name, actor=principal_of(request), now=hub.clock()
    )
    return json_response({"id": team.id, "name": team.name}, status=201)


@routes.delete(r"/api/v1/teams/{team_id:\d+}")
@requires(Permission.USERS_MANAGE)
async def delete_team(request: web.Request) -> web.Response:
    """Remove a team without users, customers or routed queues (admins); audited."""
    hub = request.app[HUB]
    routed = set() if hub.routing is None else {q.team for q in hub.routing.policy.queues.values()}
    await accounts.delete_team(
        hub.store,
        team_id=path_id(request, "team_id"),
        routed_by=routed,
        actor=principal_of(request),
        now=hub.clock(),
    )
    return web.Response(status=204)
