"""Telnyx as its documentation has it: failure reasons, partial faxes, 10-minute links, 202s."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.channels.fax.telnyx import FAILURES, TelnyxFax
from hub.config import Settings
from hub.dev.telnyx_sim import TelnyxSimulator
from tests.channels.fax.conftest import (
    CUSTOMER_FAX,
    OUR_FAX,
    channel,
    page,
    pdf_of,
)
from tests.channels.fax.test_fax import FIXTURES, eventually, fax_event, taken
from tests.conftest import FrozenClock, make_team

Client = TestClient[Any, Any]


def test_every_documented_failure_reason_is_explained_and_ranked() -> None:
    """The reasons of Telnyx's error list: the ones a later try can cure are retried."""
    retried = {reason for reason, (_, again) in FAILURES.items() if again}
    assert {"user_busy", "receiver_no_answer", "receiver_no_response",
            "receiver_call_dropped", "file_download_failed"} <= retried  # fmt: skip
    final = {"receiver_decline", "receiver_unallocated_number", "receiver_invalid_number_format",
             "file_format_invalid"}  # fmt: skip
    assert final.isdisjoint(retried)
    assert TelnyxFax.failure("receiver_no_answer") == ("nobody answered", True)
    assert TelnyxFax.failure("something_new") == ("something new", False)  # never guessed
    assert TelnyxFax.failure(None) == ("no reason given", False)


def test_a_recorded_partial_fax_parses_as_partial() -> None:
    document = json.loads((FIXTURES / "fax.received.json").read_bytes())
    document["data"]["payload"]["partial_content"] = True
    received = TelnyxFax.parse(json.dumps(document).encode())
    assert received is not None
    assert received.partial
    whole = TelnyxFax.parse((FIXTURES / "fax.received.json").read_bytes())
    assert whole is not None
    assert not whole.partial


async def reply_status(hub: Hub, event_id: int) -> dict[str, Any]:
    async with hub.store.unit_of_work() as uow:
        found = await uow.timeline.event(event_id)
    assert found is not None
    return dict(found.data)


@pytest.mark.parametrize(
    ("reason", "retried"), [("receiver_no_answer", True), ("receiver_decline", False)]
)
async def test_a_failed_fax_is_retried_only_when_a_retry_can_help_and_says_why(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator, reason: str, retried: bool
) -> None:
    team = await make_team(fax_hub, "support")
    interaction = await taken(client, team, telnyx, fax_hub)
    telnyx.outcomes[CUSTOMER_FAX] = [reason]
    response = await client.post(
        f"/api/v1/interactions/{interaction}/reply",
        json={"body": "Your invoice"},
        headers=team.headers("agent"),
    )
    assert response.status == 201
    reply = (await response.json())["id"]
    wanted = "delivered" if retried else "failed"

    async def settled() -> bool:
        return (await reply_status(fax_hub, reply)).get("status") == wanted

    await eventually(settled)
    await telnyx.settle()
    data = await reply_status(fax_hub, reply)
    assert len(telnyx.sent) == (2 if retried else 1)
    assert data["failure_reason"] == reason
    assert data["failure"] == FAILURES[reason][0]  # the agent reads why, not a code


async def test_a_fax_received_in_part_is_marked_partial(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    _, fax_id = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_of(page(["Page 1 of 3"])), partial=True
    )
    event = await fax_event(fax_hub, fax_id)
    assert (event.data["partial"], event.data["status"]) == (True, "received in part")


async def test_a_link_expired_while_the_hub_was_down_is_renewed_at_start(
    fax_hub: Hub,
    client: Client,
    telnyx: TelnyxSimulator,
    settings: Settings,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The hub dies right after the webhook's commit: the fetch it owed never runs.
    monkeypatch.setattr(channel(fax_hub), "spawn", lambda work: work.close())
    telnyx.media_seconds = -1  # and 10 minutes pass before it is back
    _, fax_id = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_of(page(["Sent at night"]))
    )
    event = await fax_event(fax_hub, fax_id)
    assert event.data["document"] == "fetching"
    telnyx.media_seconds = 600
    restarted = await build_hub(settings, run_migrations=False, clock=clock)
    async with TestClient(TestServer(build_app(restarted))):

        async def kept() -> bool:
            found = await fax_event(restarted, fax_id)
            return found is not None and found.data.get("document") == "kept"

        await eventually(kept)
    assert {"refresh": fax_id} in telnyx.requests


async def test_the_simulator_answers_202_and_wants_the_key_on_every_route(
    client: Client, telnyx: TelnyxSimulator
) -> None:
    _, fax_id = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_of(page(["x"]))
    )
    async with aiohttp.ClientSession() as session:
        for method, path in (
            ("POST", "/v2/faxes"),
            ("GET", f"/v2/faxes/{fax_id}"),
            ("POST", f"/v2/faxes/{fax_id}/actions/refresh"),
        ):
            async with session.request(method, telnyx.base + path, json={}) as response:
                assert response.status == 401, (method, path)
        sent = {"connection_id": "c", "media_url": telnyx.base + "/none", "to": "+1", "from": "+2",
                "webhook_url": telnyx.base + "/none"}  # fmt: skip
        headers = {"Authorization": f"Bearer {telnyx.api_key}"}
        async with session.post(telnyx.base + "/v2/faxes", json=sent, headers=headers) as response:
            assert response.status == 202


async def test_the_webhook_is_answered_before_the_slow_work(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    """Telnyx wants a 2xx within 2 s: the download (slower than that here) comes after."""
    telnyx.media_delay = 2.5
    status, fax_id = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_of(page(["A slow link"]))
    )
    assert status == 200  # answered within Telnyx's 2 s, or the simulator would say 0
    event = await fax_event(fax_hub, fax_id)
    assert event.data["document"] == "fetching"  # committed; the document comes after

    async def kept() -> bool:
        found = await fax_event(fax_hub, fax_id)
        return found is not None and found.data.get("document") == "kept"

    await eventually(kept)
