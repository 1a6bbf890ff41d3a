"""Admins manage users over the API: create, deactivate, reactivate."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import Team

Client = TestClient[Any, Any]


async def login(client: Client, username: str, password: str) -> int:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    return response.status


async def test_an_admin_creates_deactivates_and_reactivates_a_user(
    client: Client, team: Team
) -> None:
    admin = team.headers("admin")
    body = {
        "username": "grace",
        "display_name": "Grace Hopper",
        "role": "agent",
        "teams": ["billing"],
        "password": "long enough password",
    }
    response = await client.post("/api/v1/users", json=body, headers=admin)
    assert response.status == 201
    created = await response.json()
    assert (created["role"], created["display_name"]) == ("agent", "Grace Hopper")
    assert await login(client, "grace", "long enough password") == 200
    assert (await client.post("/api/v1/users", json=body, headers=admin)).status == 409
    short = body | {"username": "alan", "password": "short"}
    assert (await client.post("/api/v1/users", json=short, headers=admin)).status == 422
    bad_role = body | {"username": "alan", "role": "janitor"}
    assert (await client.post("/api/v1/users", json=bad_role, headers=admin)).status == 422
    response = await client.post("/api/v1/users", json=body, headers=team.headers("supervisor"))
    assert response.status == 403
    path = "/api/v1/users/grace/active"
    response = await client.post(path, json={"active": False}, headers=admin)
    assert response.status == 200
    assert (await response.json())["active"] is False
    assert await login(client, "grace", "long enough password") == 401
    await client.post(path, json={"active": True}, headers=admin)
    assert await login(client, "grace", "long enough password") == 200
    response = await client.post(
        "/api/v1/users/nobody/active", json={"active": False}, headers=admin
    )
    assert response.status == 404
    audit = await (await client.get("/api/v1/audit", headers=admin)).json()
    actions = {entry["action"] for entry in audit["entries"]}
    assert {"user.create", "user.deactivate", "user.activate"} <= actions


async def test_an_admin_manages_teams_and_moves_a_user_between_them(
    client: Client, team: Team
) -> None:
    from tests.routing.test_routing_api import call

    async def patch(username: str, status: int = 200, **body: Any) -> Any:
        response = await client.patch(
            f"/api/v1/users/{username}", json=body, headers=team.headers("admin")
        )
        assert response.status == status, await response.text()
        return await response.json()

    made = await call(client, team, "admin", "POST", "/api/v1/teams", 201, name=" billing ")
    assert made["name"] == "billing"
    await call(client, team, "admin", "POST", "/api/v1/teams", 409, name="billing")
    await call(client, team, "supervisor", "GET", "/api/v1/teams", 403)
    agent_id = team.user_ids["agent"]
    changed = await patch(
        "agent",
        display_name="Ada Lovelace",
        role="supervisor",
        teams=["support", "billing"],
    )
    assert changed["display_name"] == "Ada Lovelace"
    assert changed["role"] == "supervisor"
    listed = (await call(client, team, "admin", "GET", "/api/v1/teams"))["teams"]
    by_name = {t["name"]: t for t in listed}
    assert agent_id in by_name["billing"]["user_ids"]
    assert by_name["support"]["queues"] == ["support"]
    # The new role holds at once: a supervisor may read the board's agents.
    await call(client, team, "agent", "GET", "/api/v1/agents")
    # A team with users cannot go; once they leave, it can.
    billing = by_name["billing"]["id"]
    refused = await call(client, team, "admin", "DELETE", f"/api/v1/teams/{billing}", 409)
    assert "1 user" in refused["error"]["message"]
    await patch("agent", teams=["support"])
    await call(client, team, "admin", "DELETE", f"/api/v1/teams/{billing}", 204)
    support = by_name["support"]["id"]
    await patch("supervisor", 422, teams=[])
    await call(client, team, "admin", "DELETE", f"/api/v1/teams/{support}", 409)
    # No admin can take away their own role, nor change a user who is not there.
    own = await patch("admin", 409, role="agent")
    assert "your own role" in own["error"]["message"]
    await patch("nobody", 404, role="agent")
    await patch("agent", 422, role="janitor")
    audit = await call(client, team, "admin", "GET", "/api/v1/audit")
    actions = {e["action"] for e in audit["entries"]}
    assert {"team.create", "team.delete", "user.update"} <= actions
