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
