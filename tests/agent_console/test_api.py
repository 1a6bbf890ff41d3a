"""The REST API end to end over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from hub.agent_console.app import build_app
from hub.bootstrap import Hub
from hub.http import PUBLIC, access_of
from tests.conftest import FrozenClock, Team, make_team, settled, statements_run

Client = TestClient[Any, Any]


async def push(client: Client, team: Team, status: int = 201, **payload: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/inbound", json=payload, headers=team.headers("admin"))
    body: dict[str, Any] = await response.json()
    assert response.status == status, body
    await settled(client)  # routed
    return body


async def get(client: Client, team: Team, path: str, role: str = "agent", status: int = 200) -> Any:
    response = await client.get(path, headers=team.headers(role))
    body = await response.json()
    assert response.status == status, body
    return body


async def test_every_route_but_the_public_ones_needs_a_token(hub: Hub, client: Client) -> None:
    app = build_app(hub)
    checked = 0
    for route in app.router.routes():
        if route.method == "HEAD" or access_of(route.handler) == PUBLIC:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route.resource.canonical)  # type: ignore[union-attr]
        response = await client.request(route.method, path)
        assert response.status == 401, (route.method, path)
        assert (await response.json())["error"]["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked >= 15


async def test_login_me_logout(client: Client, team: Team) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": "agent", "password": "correct horse battery"}
    )
    assert response.status == 200
    login = await response.json()
    headers = {"Authorization": f"Bearer {login['token']}"}
    me = await (await client.get("/api/v1/me", headers=headers)).json()
    assert me["username"] == "agent"
    assert me["role"] == "agent"
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status == 204
    assert (await client.get("/api/v1/me", headers=headers)).status == 401


@pytest.mark.parametrize(
    ("username", "password"), [("agent", "wrong password"), ("nobody", "correct horse battery")]
)
async def test_a_bad_login_says_the_same_thing_either_way(
    client: Client, team: Team, username: str, password: str
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status == 401
    assert (await response.json())["error"]["message"] == "wrong username or password"


async def test_sessions_expire(client: Client, team: Team, clock: FrozenClock) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"username": "agent", "password": "correct horse battery"}
    )
    headers = {"Authorization": f"Bearer {(await response.json())['token']}"}
    clock.advance(13 * 3600)
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status == 401
    assert "expired" in (await response.json())["error"]["message"]


@pytest.mark.parametrize(
    "header", ["Bearer hub_not-a-real-token", "Bearer something-else", "Basic YTpi", "Bearer "]
)
async def test_bad_tokens_are_refused(client: Client, team: Team, header: str) -> None:
    response = await client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status == 401


async def test_roles_decide_what_a_caller_may_do(client: Client, team: Team) -> None:
    created = await push(client, team, **{"from": "+14155550100", "body": "hi"})
    customer = created["customer_id"]
    found = await get(client, team, "/api/v1/customers?q=4155550100", role="marketer")
    assert [c["id"] for c in found["customers"]] == [customer]
    await get(client, team, f"/api/v1/customers/{customer}/timeline", role="marketer", status=403)
    response = await client.post(
        "/api/v1/inbound", json={"from": "+14155550101"}, headers=team.headers("agent")
    )
    assert response.status == 403
    assert (await response.json())["error"]["details"] == {"required": "inbound:push"}
    await get(client, team, "/api/v1/audit", role="supervisor", status=403)
    await get(client, team, "/api/v1/users", role="agent", status=403)
    audit = await get(client, team, "/api/v1/audit", role="admin")
    assert "token.create" in {e["action"] for e in audit["entries"]}
    users = await get(client, team, "/api/v1/users", role="admin")
    assert {u["role"] for u in users["users"]} == {"admin", "supervisor", "agent", "marketer"}
    # The marketer finds the customer but the record carries no conversation.
    record = await get(client, team, f"/api/v1/customers/{customer}", role="marketer")
    assert record["latest_events"] == []


async def test_the_unified_record_costs_three_statements(
    hub: Hub, client: Client, team: Team
) -> None:
    """A GET of the record reads the customer with its identities and open work, the newest
    events and the open suggestions; the token's grant is kept, so a warm GET reads nothing
    else."""
    first = await push(client, team, channel="api", **{"from": "+14155550123"}, body="Hi")
    second = await push(client, team, channel="api", **{"from": "+14155550124"}, body="Yo")
    await settled(client)
    path = f"/api/v1/customers/{first['customer_id']}"
    await get(client, team, path)  # the token's grant is read once
    with statements_run(hub.store) as statements:
        record = await get(client, team, path)
    assert len(statements) == 3, statements
    assert [e["body"] for e in record["latest_events"] if e["kind"] == "message"] == ["Hi"]
    assert [i["value"] for i in record["identities"]] == ["+14155550123"]
    assert len(record["open_interactions"]) == 1
    await get(client, team, f"/api/v1/customers/{second['customer_id'] + 1000}", status=404)


async def test_a_new_role_takes_effect_at_once(client: Client, team: Team) -> None:
    assert (await get(client, team, "/api/v1/me", role="supervisor"))["role"] == "supervisor"
    changed = await client.patch(
        "/api/v1/users/supervisor", json={"role": "marketer"}, headers=team.headers("admin")
    )
    assert changed.status == 200, await changed.text()
    assert (await get(client, team, "/api/v1/me", role="supervisor"))["role"] == "marketer"


async def test_the_api_channel_stores_once_and_answers_retries(client: Client, team: Team) -> None:
    payload = {
        "channel": "api",
        "from": "(415) 555-0100",
        "body": "Please call me back",
        "name": "Grace Hopper",
        "email": "Grace@Example.com",
        "external_id": "crm-42",
        "provider_ref": "form-1",
    }
    first = await push(client, team, **payload)
    assert first["created_customer"] is True
    again = await push(client, team, status=200, **payload)
    assert again["duplicate"] is True
    assert again["event_id"] == first["event_id"]
    record = await get(client, team, f"/api/v1/customers/{first['customer_id']}")
    assert record["name"] == "Grace Hopper"
    assert {(i["kind"], i["value"], i["verified"]) for i in record["identities"]} == {
        ("phone", "+14155550100", True),
        ("external", "crm-42", True),
        ("email", "grace@example.com", False),
    }
    messages = [e["body"] for e in record["latest_events"] if e["kind"] == "message"]
    assert messages == ["Please call me back"]
    assert record["open_interactions"][0]["channel"] == "api"
    # Routing took it: nobody is available, so it waits in the default queue.
    assert record["open_interactions"][0]["state"] == "queued"
    assert record["latest_events"][0]["body"] == "Queued in support"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_request"),
        (b"", 400, "malformed_request"),
        (b"[1, 2]", 400, "malformed_request"),
        (b'{"from": "+14155550100", "colour": "blue"}', 422, "invalid_input"),
        (b'{"body": "no sender"}', 422, "invalid_input"),
        (b'{"from": "12"}', 422, "invalid_identity"),
        (b'{"from": "not an address or number"}', 422, "invalid_identity"),
        (b'{"from": "+14155550100", "email": "nope"}', 422, "invalid_identity"),
        (b'{"from": "+14155550100", "channel": "sms"}', 422, "invalid_input"),
        (b'{"from": "+14155550100", "queue": "nope"}', 422, "invalid_input"),
    ],
)
async def test_bad_input_gets_a_reason_and_writes_nothing(
    client: Client, team: Team, body: bytes, status: int, code: str
) -> None:
    response = await client.post(
        "/api/v1/inbound",
        data=body,
        headers={**team.headers("admin"), "Content-Type": "application/json"},
    )
    error = (await response.json())["error"]
    assert response.status == status, error
    assert error["code"] == code
    assert error["message"]
    found = await get(client, team, "/api/v1/customers?q=4155550100")
    assert found["customers"] == []


async def test_search_by_phone_in_any_format_by_email_and_by_name(
    client: Client, team: Team
) -> None:
    created = await push(
        client,
        team,
        **{"from": "grace@example.com", "name": "Grace Hopper", "external_id": "crm-1"},
    )
    await push(client, team, **{"from": "+14155550100", "external_id": "crm-1"})
    await push(client, team, **{"from": "+14155550199", "name": "Alan Turing"})
    for query in (
        "(415) 555-0100",
        "+1 415-555-0100",
        "4155550100",
        "GRACE@example.com",
        "grace@exa",
        "hopper",
        "Grace H",
        "crm-1",
    ):
        found = await get(client, team, f"/api/v1/customers?q={query}")
        assert [c["id"] for c in found["customers"]] == [created["customer_id"]], query
    none = await get(client, team, "/api/v1/customers?q=nobody%25")
    assert none["customers"] == []
    await get(client, team, "/api/v1/customers?q=", status=422)


async def test_agents_see_only_their_teams_customers(hub: Hub, client: Client, team: Team) -> None:
    other = await make_team(hub, "sales", suffix="-sales")
    created = await push(client, team, **{"from": "+14155550100", "name": "Grace"})
    customer = created["customer_id"]
    await get(client, other, f"/api/v1/customers/{customer}", status=404)
    await get(client, other, f"/api/v1/customers/{customer}/timeline", status=404)
    found = await get(client, other, "/api/v1/customers?q=grace")
    assert found["customers"] == []
    assert (await get(client, other, f"/api/v1/customers/{customer}", role="admin"))["id"]
    await get(client, team, f"/api/v1/customers/{customer}", role="supervisor")


async def test_the_timeline_pages_newest_first_without_gaps(
    client: Client, team: Team, clock: FrozenClock
) -> None:
    customer = None
    for n in range(120):
        clock.advance(1 if n % 3 else 0)  # some events share a timestamp
        body = await push(
            client, team, **{"from": "+14155550100", "body": f"m{n}", "provider_ref": f"r{n}"}
        )
        customer = body["customer_id"]
    seen: list[str] = []
    cursor = None
    while True:
        path = f"/api/v1/customers/{customer}/timeline?limit=50"
        page = await get(client, team, path + (f"&before={cursor}" if cursor else ""))
        seen += [e["body"] for e in page["events"] if e["kind"] == "message"]
        cursor = page["next_before"]
        if cursor is None:
            break
    assert seen == [f"m{n}" for n in reversed(range(120))]
    await get(client, team, f"/api/v1/customers/{customer}/timeline?before=garbage", status=422)
    await get(client, team, f"/api/v1/customers/{customer}/timeline?limit=0", status=422)


async def test_notes_profile_and_closing_an_interaction(client: Client, team: Team) -> None:
    created = await push(client, team, **{"from": "+14155550100", "name": "Grace"})
    customer = created["customer_id"]
    headers = team.headers("agent")
    response = await client.post(
        f"/api/v1/customers/{customer}/notes", json={"body": "<b>VIP</b> caller"}, headers=headers
    )
    assert response.status == 201
    notes = await get(client, team, f"/api/v1/customers/{customer}/notes")
    assert [n["body"] for n in notes["notes"]] == ["<b>VIP</b> caller"]
    response = await client.patch(
        f"/api/v1/customers/{customer}",
        json={
            "name": "Grace B. Hopper",
            "tags": [" VIP ", "vip", "Navy"],
            "custom_fields": {"tier": "gold", "seats": 3},
        },
        headers=headers,
    )
    assert response.status == 200
    profile = await response.json()
    assert profile["tags"] == ["vip", "navy"]
    assert profile["custom_fields"] == {"tier": "gold", "seats": 3}
    response = await client.patch(f"/api/v1/customers/{customer}", json={}, headers=headers)
    assert response.status == 422
    response = await client.patch(
        f"/api/v1/customers/{customer}",
        json={"custom_fields": {"x": {"nested": 1}}},
        headers=headers,
    )
    assert response.status == 422
    interaction = created["interaction_id"]
    response = await client.post(
        f"/api/v1/interactions/{interaction}/close",
        json={"disposition": "resolved"},
        headers=headers,
    )
    assert response.status == 200
    assert (await response.json())["state"] == "closed"
    response = await client.post(
        f"/api/v1/interactions/{interaction}/close", json={}, headers=headers
    )
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "illegal_transition"
    timeline = await get(client, team, f"/api/v1/customers/{customer}/timeline")
    assert [(e["kind"], e["body"]) for e in timeline["events"]] == [
        ("status_change", "Closed (resolved)"),
        ("note", "<b>VIP</b> caller"),
        ("status_change", "Queued in support"),
        ("message", ""),
    ]


async def test_merge_and_unmerge_over_the_api(client: Client, team: Team) -> None:
    a = (await push(client, team, **{"from": "+14155550100"}))["customer_id"]
    b = (await push(client, team, **{"from": "grace@example.com"}))["customer_id"]
    headers = team.headers("agent")
    response = await client.post(
        f"/api/v1/customers/{a}/merge", json={"merge_from": a}, headers=headers
    )
    assert response.status == 422
    response = await client.post(
        f"/api/v1/customers/{a}/merge", json={"merge_from": b}, headers=headers
    )
    assert response.status == 201
    merge = await response.json()
    assert merge["moved"]["identities"] == 1
    absorbed = await get(client, team, f"/api/v1/customers/{b}")
    assert absorbed["merged_into"] == a
    response = await client.post(f"/api/v1/merges/{merge['id']}/undo", headers=headers)
    assert response.status == 403
    response = await client.post(
        f"/api/v1/merges/{merge['id']}/undo", headers=team.headers("supervisor")
    )
    assert response.status == 200
    assert (await get(client, team, f"/api/v1/customers/{b}"))["merged_into"] is None


async def test_adding_someone_elses_verified_identity_suggests_a_merge(
    client: Client, team: Team
) -> None:
    a = (await push(client, team, **{"from": "+14155550100"}))["customer_id"]
    response = await client.post(
        "/api/v1/customers",
        json={
            "name": "Walk-in",
            "identities": [{"kind": "email", "value": "walkin@example.com", "verified": True}],
        },
        headers=team.headers("agent"),
    )
    assert response.status == 201
    b = (await response.json())["id"]
    response = await client.post(
        f"/api/v1/customers/{b}/identities",
        json={"kind": "phone", "value": "415 555 0100", "verified": True},
        headers=team.headers("agent"),
    )
    assert response.status == 409
    details = (await response.json())["error"]["details"]
    assert details["refused"] is True
    record = await get(client, team, f"/api/v1/customers/{a}")
    assert [s["customer_ids"] for s in record["merge_suggestions"]] == [[a, b]]
    suggestion = record["merge_suggestions"][0]["id"]
    response = await client.post(
        f"/api/v1/merge-suggestions/{suggestion}/dismiss", headers=team.headers("agent")
    )
    assert response.status == 204
    assert (await get(client, team, f"/api/v1/customers/{a}"))["merge_suggestions"] == []


async def test_health_metrics_and_unknown_routes(hub: Hub, client: Client, team: Team) -> None:
    assert (await (await client.get("/healthz")).json()) == {"status": "ok", "database": "ok"}
    await push(client, team, **{"from": "+14155550100"})
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=team.headers("agent"))).status == 403
    response = await client.get("/metrics", headers=team.headers("supervisor"))
    assert response.status == 200
    text = await response.text()
    assert 'hub_inbound_messages_total{channel="api",outcome="stored"} 1.0' in text
    assert "hub_http_request_duration_seconds_bucket" in text
    assert 'hub_outbox{figure="in_flight"} 0.0' in text  # settled: everything delivered
    assert 'hub_outbox{figure="lag_seconds"} 0.0' in text
    delivered = next(line for line in text.splitlines() if 'figure="delivered"' in line)
    assert float(delivered.split()[-1]) >= 3  # received, customer created, timeline, queued
    hub.settings.metrics_token = SecretStr("scrape-me")
    response = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert response.status == 200
    response = await client.get("/api/v1/nothing-here", headers=team.headers("agent"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    response = await client.delete("/healthz")
    assert response.status == 405


async def test_password_guessing_is_throttled(
    client: Client, team: Team, clock: FrozenClock
) -> None:
    async def login(password: str) -> Any:
        return await client.post(
            "/api/v1/auth/login", json={"username": "agent", "password": password}
        )

    for _ in range(5):
        assert (await login("guess")).status == 401
    response = await login("correct horse battery")  # even the right password waits now
    assert response.status == 429
    assert (await response.json())["error"]["code"] == "too_many_requests"
    assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60
    clock.advance(15 * 60 + 1)
    assert (await login("correct horse battery")).status == 200
    # Other users are not locked out by someone guessing at "agent".
    for _ in range(5):
        await login("guess")
    response = await client.post(
        "/api/v1/auth/login", json={"username": "supervisor", "password": "correct horse battery"}
    )
    assert response.status == 200
