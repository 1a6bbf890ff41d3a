"""Bad input gets a 4xx with a reason and changes nothing; every answer has security headers."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hub.bootstrap import Hub
from hub.domain.timeline import Attachment
from tests.conftest import Team

Client = TestClient[Any, Any]


async def test_json_nested_fifty_thousand_deep_is_a_400(client: Client, team: Team) -> None:
    response = await client.post(
        "/api/v1/customers",
        data=b"[" * 50_000,
        headers={**team.headers("admin"), "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_request"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/99999999999999999999",
        "/api/v1/customers/9223372036854775808",  # 2**63: one beyond what the stores hold
        "/api/v1/interactions/99999999999999999999",
        "/api/v1/events/99999999999999999999/attachments/99999999999999999999",
        "/api/v1/email/quarantine?before=99999999999999999999",
    ],
)
async def test_ids_beyond_sixty_four_bits_are_not_found_not_a_500(
    client: Client, team: Team, path: str
) -> None:
    response = await client.get(path, headers=team.headers("admin"))
    assert response.status in (404, 422), await response.text()


async def test_an_id_beyond_sixty_four_bits_in_a_body_is_a_422(client: Client, team: Team) -> None:
    response = await client.post(
        "/api/v1/customers/1/merge",
        json={"merge_from": 2**70},
        headers=team.headers("admin"),
    )
    assert response.status == 422


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_json_bodies_must_say_they_are_json(
    client: Client, team: Team, content_type: str | None
) -> None:
    headers = team.headers("admin")
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(
        "/api/v1/customers", data=b'{"display_name": "Ada"}', headers=headers
    )
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_media_type"
    found = await client.get("/api/v1/customers?q=Ada", headers=headers)
    assert (await found.json())["customers"] == []


async def test_every_answer_carries_the_security_headers(client: Client, team: Team) -> None:
    for path, headers in (
        ("/console/", {}),
        ("/api/v1/me", team.headers("agent")),
        ("/api/v1/nowhere", {}),
        ("/healthz", {}),
    ):
        response = await client.get(path, headers=headers)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
        assert "frame-ancestors 'none'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_the_timeline_never_shows_where_the_server_keeps_files(
    hub: Hub, client: Client, team: Team, tmp_path: Any
) -> None:
    pushed = await client.post(
        "/api/v1/inbound",
        json={"from": "+14155550100", "body": "see photo", "provider_ref": "p1"},
        headers=team.headers("admin"),
    )
    created = await pushed.json()
    hub.settings.data_dir = str(tmp_path)  # files are served from under data_dir only
    kept = tmp_path / "photo.jpg"
    kept.write_bytes(b"\xff\xd8\xff")
    async with hub.store.unit_of_work() as uow:
        await uow.timeline.set_attachments(
            created["event_id"], (Attachment("photo.jpg", "image/jpeg", size=3, path=str(kept)),)
        )
        await uow.commit()
    page = await client.get(
        f"/api/v1/customers/{created['customer_id']}/timeline", headers=team.headers("agent")
    )
    text = await page.text()
    assert str(tmp_path) not in text
    shown = next(e for e in (await page.json())["events"] if e["id"] == created["event_id"])
    attachment = shown["attachments"][0]
    assert "path" not in attachment
    assert attachment["kept"] is True
    download = await client.get(attachment["download"], headers=team.headers("agent"))
    assert download.status == 200
    assert await download.read() == b"\xff\xd8\xff"
