"""Admins edit the routing policy over HTTP: queues, business hours, versions, on both stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from hub.agent_console.app import build_app
from hub.bootstrap import build_hub
from hub.config import Settings
from hub.routing.policy import parse_policy
from tests.agent_console.test_api import push
from tests.conftest import FrozenClock, Team
from tests.routing.test_routing_api import call

Client = TestClient[Any, Any]
OFFICE = {"timezone": "Europe/London", "week": {"mon": ["09:00-17:00"]}, "holidays": ["2026-12-25"]}


async def test_an_admin_adds_business_hours_and_a_queue_that_routes_at_once(
    client: Client, team: Team
) -> None:
    first = await call(client, team, "admin", "GET", "/api/v1/routing/policy")
    assert first["version"] == 1
    assert [q["name"] for q in first["document"]["queues"]] == ["support"]
    billing = {"team": "support", "channels": ["api"], "sla_seconds": 30, "calendar": "office"}
    refused = await call(
        client, team, "admin", "PUT", "/api/v1/routing/policy/queues/billing", 422, entry=billing
    )
    # The reason names the field, and nothing changed.
    assert "queues[1].calendar" in refused["error"]["message"]
    assert "unknown calendar 'office'" in refused["error"]["message"]
    assert (await call(client, team, "admin", "GET", "/api/v1/routing/policy"))["version"] == 1

    hours = await call(
        client, team, "admin", "PUT", "/api/v1/routing/policy/calendars/office", 201, entry=OFFICE
    )
    assert hours["version"] == 2
    added = await call(
        client,
        team,
        "admin",
        "PUT",
        "/api/v1/routing/policy/queues/billing",
        201,
        entry=billing | {"calendar": None},
        base_version=2,
    )
    assert added["version"] == 3
    board = await call(client, team, "supervisor", "GET", "/api/v1/queues")
    assert {q["name"] for q in board["queues"]} == {"support", "billing"}
    # Work sent to the new queue is routed there.
    created = await push(
        client, team, **{"from": "+14155550101", "body": "invoice", "queue": "billing"}
    )
    interaction = await call(
        client, team, "admin", "GET", f"/api/v1/interactions/{created['interaction_id']}"
    )
    assert interaction["state"] == "queued"
    board = await call(client, team, "supervisor", "GET", "/api/v1/queues")
    assert next(q for q in board["queues"] if q["name"] == "billing")["live"]["waiting"] == 1

    # Editing from a stale version is refused rather than undoing version 3.
    stale = await call(
        client,
        team,
        "admin",
        "PUT",
        "/api/v1/routing/policy/queues/billing",
        409,
        entry=billing | {"calendar": "office"},
        base_version=2,
    )
    assert "version 3" in stale["error"]["message"]
    # A queue with work waiting cannot go; a calendar in use cannot either.
    waiting = await call(
        client, team, "admin", "DELETE", "/api/v1/routing/policy/queues/billing", 409
    )
    assert "wait or ring in billing" in waiting["error"]["message"]
    await call(
        client,
        team,
        "admin",
        "PUT",
        "/api/v1/routing/policy/queues/billing",
        200,
        entry=billing,
        base_version=3,
    )
    in_use = await call(
        client, team, "admin", "DELETE", "/api/v1/routing/policy/calendars/office", 422
    )
    assert "unknown calendar" in in_use["error"]["message"]

    audit = await call(client, team, "admin", "GET", "/api/v1/audit?entity_type=routing_policy")
    assert [e["action"] for e in audit["entries"]][:3] == ["routing.policy"] * 3


async def test_who_may_read_and_edit_the_policy(client: Client, team: Team) -> None:
    await call(client, team, "supervisor", "GET", "/api/v1/routing/policy")
    await call(client, team, "supervisor", "GET", "/api/v1/routing/policy/versions")
    await call(client, team, "agent", "GET", "/api/v1/routing/policy", 403)
    for role in ("supervisor", "agent", "marketer"):
        await call(
            client, team, role, "PUT", "/api/v1/routing/policy/calendars/x", 403, entry=OFFICE
        )
    await call(client, team, "admin", "PUT", "/api/v1/routing/policy", 422, document={"queues": []})
    bad = await call(
        client,
        team,
        "admin",
        "PUT",
        "/api/v1/routing/policy",
        422,
        document={
            "queues": [
                {"name": "a", "team": "t", "steps": [{"after_seconds": 0, "target": "import os"}]}
            ]
        },
    )
    assert "queues[0].steps[0].target" in bad["error"]["message"]


async def test_versions_can_be_restored_and_exported_as_a_policy_file(
    client: Client, team: Team
) -> None:
    await call(
        client, team, "admin", "PUT", "/api/v1/routing/policy/calendars/office", 201, entry=OFFICE
    )
    versions = (await call(client, team, "admin", "GET", "/api/v1/routing/policy/versions"))[
        "versions"
    ]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["created_by"] == team.user_ids["admin"]
    assert "document" not in versions[0]
    restored = await call(
        client, team, "admin", "POST", "/api/v1/routing/policy/versions/1/restore"
    )
    assert restored["version"] == 3
    assert "calendars" not in restored["document"] or restored["document"]["calendars"] == []
    await call(client, team, "admin", "POST", "/api/v1/routing/policy/versions/3/restore", 422)
    await call(client, team, "admin", "GET", "/api/v1/routing/policy/versions/9", 404)
    for beyond in (2**31, 2**63):  # no version can be that (the store's are 32-bit): 404
        path = f"/api/v1/routing/policy/versions/{beyond}"
        await call(client, team, "admin", "GET", path, 404)
        await call(client, team, "admin", "POST", f"{path}/restore", 404)
    await call(client, team, "admin", "POST", "/api/v1/routing/policy/versions/2/restore")
    response = await client.get("/api/v1/routing/policy?format=toml", headers=team.headers("admin"))
    assert response.status == 200
    text = await response.text()
    policy = parse_policy(text)  # what an admin downloads is a policy file the hub reads
    assert policy.queues["support"].team == "support"
    assert "Europe/London" in text


async def test_a_changed_policy_file_is_imported_and_an_unchanged_one_keeps_admin_edits(
    settings: Settings, clock: FrozenClock, team: Team, client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "routing.toml"
    path.write_text('[[queues]]\nname = "support"\nteam = "support"\n')
    settings.routing_policy = str(path)

    async def restarted() -> dict[str, Any]:
        hub = await build_hub(settings, run_migrations=False, clock=clock)
        async with TestClient(TestServer(build_app(hub))) as again:
            return await call(again, team, "admin", "GET", "/api/v1/routing/policy")  # type: ignore[no-any-return]

    imported = await restarted()
    assert imported["source"].startswith("file ")
    await call(
        client, team, "admin", "PUT", "/api/v1/routing/policy/calendars/office", 201, entry=OFFICE
    )
    kept = await restarted()  # the file is as it was: the admin's edit stays in force
    assert kept["version"] == imported["version"] + 1
    assert kept["document"]["calendars"][0]["name"] == "office"
    path.write_text('[[queues]]\nname = "support"\nteam = "support"\nsla_seconds = 45\n')
    changed = await restarted()
    assert changed["version"] == kept["version"] + 1
    assert changed["document"]["queues"][0]["sla_seconds"] == 45


async def test_a_queue_whose_work_is_ringing_at_an_agent_cannot_be_removed(
    client: Client, team: Team
) -> None:
    billing = {"team": "support", "channels": ["api"]}
    await call(
        client, team, "admin", "PUT", "/api/v1/routing/policy/queues/billing", 201, entry=billing
    )
    await call(client, team, "agent", "POST", "/api/v1/me/state", state="available")
    created = await push(
        client, team, **{"from": "+14155550101", "body": "invoice", "queue": "billing"}
    )
    offers = (await call(client, team, "agent", "GET", "/api/v1/me/offers"))["offers"]
    assert [o["interaction_id"] for o in offers] == [created["interaction_id"]]  # ringing
    refused = await call(
        client, team, "admin", "DELETE", "/api/v1/routing/policy/queues/billing", 409
    )
    assert "1 interaction(s) wait or ring in billing" in refused["error"]["message"]
