"""Faxes in and out through a wire-level Telnyx, documents read by Tesseract, on both stores."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.channels.fax.documents import page_count
from hub.channels.fax.telnyx import TelnyxFax
from hub.config import Settings
from hub.dev.telnyx_sim import TelnyxSimulator
from hub.domain.identity import IdentityKind, IdentityRef
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.timeline import Attachment
from hub.errors import MalformedRequest
from tests.channels.fax.conftest import (
    CUSTOMER_FAX,
    OUR_FAX,
    channel,
    needs_tesseract,
    page,
    pdf_of,
    tiff_of,
)
from tests.conftest import FrozenClock, Team, make_team

Client = TestClient[Any, Any]
FIXTURES = Path(__file__).parent / "fixtures"


async def eventually(check: Callable[[], Awaitable[bool]], *, seconds: float = 30) -> None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("it did not happen in time")


async def fax_event(hub: Hub, fax_id: str) -> Any:
    async with hub.store.unit_of_work() as uow:
        return await uow.timeline.by_provider_ref("telnyx", fax_id)


async def read_event(hub: Hub, fax_id: str) -> Any:
    """The fax's event once its document is drawn and read."""

    async def done() -> bool:
        found = await fax_event(hub, fax_id)
        return found is not None and "ocr" in found.data

    await eventually(done)
    return await fax_event(hub, fax_id)


def test_recorded_telnyx_payloads_parse() -> None:
    received = TelnyxFax.parse((FIXTURES / "fax.received.json").read_bytes())
    assert received is not None
    assert (received.kind, received.direction, received.page_count) == ("received", "inbound", 2)
    assert received.media_url is not None
    assert received.media_url.startswith("https://s3.amazonaws.com/")
    failed = TelnyxFax.parse((FIXTURES / "fax.failed.json").read_bytes())
    assert failed is not None
    assert (failed.kind, failed.failure_reason) == ("failed", "user_busy")
    delivered = TelnyxFax.parse((FIXTURES / "fax.delivered.json").read_bytes())
    assert delivered is not None
    assert delivered.kind == "delivered"
    assert TelnyxFax.parse((FIXTURES / "call.initiated.json").read_bytes()) is None
    with pytest.raises(MalformedRequest):
        TelnyxFax.parse(b'{"data": {"event_type": "fax.received", "payload": {}}}')


@needs_tesseract
async def test_a_fax_arrives_is_read_in_chinese_and_english_and_found_by_its_text(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    team = await make_team(fax_hub, "support")
    document = pdf_of(page(["订单号 4411 的货物已损坏", "Invoice 4411: damaged goods"]))
    status, fax_id = await telnyx.receive_fax(
        sender="(415) 555-0177", to=OUR_FAX, document=document
    )
    assert status == 200
    stored = await fax_event(fax_hub, fax_id)
    assert stored is not None  # committed before the answer; the reading comes after
    assert stored.channel.value == "fax"
    assert stored.data["from"] == CUSTOMER_FAX  # the sender's fax number, E.164
    event = await read_event(fax_hub, fax_id)
    assert event.data["ocr"]["status"] == "read"
    assert event.data["page_count"] == 1
    assert "订单号" in event.body
    assert "Invoice 4411" in event.body
    document_file, thumbnail = event.attachments
    assert await asyncio.to_thread(Path(document_file.path).read_bytes) == document
    assert thumbnail.content_type == "image/png"
    assert thumbnail.inline is True
    # The text is searchable; the number is the customer's identity.
    admin = team.headers("admin")
    for query in ("订单号", "damaged goods", "(415) 555-0177"):
        hits = await (
            await client.get("/api/v1/customers", params={"q": query}, headers=admin)
        ).json()
        assert [h["id"] for h in hits["customers"]] == [event.customer_id], query
    # The provider's retry is harmless; the fax is work like any.
    again, _ = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=document, fax_id=fax_id
    )
    assert again == 200
    page_of = await client.get(f"/api/v1/customers/{event.customer_id}/timeline", headers=admin)
    faxes = [
        e
        for e in (await page_of.json())["events"]
        if e["channel"] == "fax" and e["kind"] == "message"
    ]
    assert len(faxes) == 1
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    offers = (await (await client.get("/api/v1/me/offers", headers=agent)).json())["offers"]
    assert [o["channel"] for o in offers] == ["fax"]


@needs_tesseract
async def test_a_multi_page_tiff_is_drawn_page_by_page(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    document = tiff_of(page(["Page one"]), page(["Page two"]), page(["Page three"]))
    _, fax_id = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=document, content_type="image/tiff"
    )
    event = await read_event(fax_hub, fax_id)
    assert event.data["page_count"] == 3
    assert [a.filename for a in event.attachments[1:]] == ["page-1.png", "page-2.png", "page-3.png"]
    assert event.attachments[0].content_type == "image/tiff"
    assert "Page three" in event.body


async def test_forged_stale_and_malformed_webhooks_store_nothing(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    body = (FIXTURES / "fax.received.json").read_bytes()
    forged = telnyx.signed(body) | {
        "telnyx-signature-ed25519": telnyx.signed(b"other")["telnyx-signature-ed25519"]
    }
    assert (await client.post("/webhooks/fax/telnyx", data=body, headers=forged)).status == 403
    unsigned = await client.post("/webhooks/fax/telnyx", data=body)
    assert unsigned.status == 403
    stale = telnyx.signed(body, at=telnyx.clock() - 3600)  # a replay an hour later
    assert (await client.post("/webhooks/fax/telnyx", data=body, headers=stale)).status == 403
    junk = b'{"data": {"event_type": "fax.received", "payload": {"fax_id": "x"}}}'
    answer = await client.post("/webhooks/fax/telnyx", data=junk, headers=telnyx.signed(junk))
    assert answer.status == 400
    assert "lacks from, to" in (await answer.json())["error"]["message"]
    for fax_id in ('{"nested": "object"}', '"' + "f" * 300 + '"'):  # not an id: 400, not 503
        odd = b'{"data": {"event_type": "fax.received", "payload": {"fax_id": %s, '
        odd += b'"from": "+14155550100", "to": "+14155550199"}}}'
        odd %= fax_id.encode()
        answer = await client.post("/webhooks/fax/telnyx", data=odd, headers=telnyx.signed(odd))
        assert answer.status == 400, await answer.text()
        assert "fax_id is not text" in (await answer.json())["error"]["message"]
    deep = b"[" * 50_000  # signed, yet no JSON the hub reads: 400, never a 500
    answer = await client.post("/webhooks/fax/telnyx", data=deep, headers=telnyx.signed(deep))
    assert answer.status == 400
    other = (FIXTURES / "call.initiated.json").read_bytes()
    ignored = await client.post("/webhooks/fax/telnyx", data=other, headers=telnyx.signed(other))
    assert ignored.status == 200
    async with fax_hub.store.unit_of_work() as uow:
        assert (
            await uow.timeline.by_provider_ref("telnyx", "b679d6d1-0a5c-4c2d-9e0e-2b5e2c3d4e5f")
            is None
        )


async def test_a_flaky_link_is_retried_and_an_expired_one_renewed(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    document = pdf_of(page(["Hello"]))
    _, flaky = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=document, fail_first=2
    )

    async def kept(fax_id: str) -> bool:
        found = await fax_event(fax_hub, fax_id)
        return found is not None and found.data.get("document") == "kept"

    await eventually(lambda: kept(flaky))
    # Expired by the time the hub asks (Telnyx's live 10 minutes): the refresh action renews it.
    _, renewed = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=document, expired=True
    )
    await eventually(lambda: kept(renewed))
    assert {"refresh": renewed} in telnyx.requests
    telnyx.media_seconds = -1  # every link expired, renewed ones too
    _, expired = await telnyx.receive_fax(sender=CUSTOMER_FAX, to=OUR_FAX, document=document)

    async def failed() -> bool:
        found = await fax_event(fax_hub, expired)
        return found is not None and found.data.get("document") == "failed"

    await eventually(failed)
    event = await fax_event(fax_hub, expired)
    assert "403" in event.attachments[0].error  # the message stays; why is on it
    telnyx.media_seconds = 600  # the provider's retry brings a fresh link
    await telnyx.receive_fax(sender=CUSTOMER_FAX, to=OUR_FAX, document=document, fax_id=expired)
    await eventually(lambda: kept(expired))


async def taken(client: Client, team: Team, telnyx: TelnyxSimulator, hub: Hub) -> int:
    """A fax from the customer, taken by the agent; its interaction."""
    _, fax_id = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=pdf_of(page(["Please fax the contract"]))
    )
    event = await fax_event(hub, fax_id)
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    response = await client.post(
        f"/api/v1/interactions/{event.interaction_id}/accept", headers=agent
    )
    assert response.status == 204
    return int(event.interaction_id)


async def test_an_agent_faxes_back_text_rendered_to_pdf_and_hears_each_status(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    team = await make_team(fax_hub, "support")
    interaction = await taken(client, team, telnyx, fax_hub)
    response = await client.post(
        f"/api/v1/interactions/{interaction}/reply",
        json={"body": "合同已附上。The contract is attached.\nRegards, Ann"},
        headers=team.headers("agent"),
    )
    assert response.status == 201, await response.text()
    reply = await response.json()
    await telnyx.settle()
    (sent,) = telnyx.sent.values()
    assert (sent.to, sent.sender) == (CUSTOMER_FAX, OUR_FAX)
    assert sent.document is not None
    assert sent.document.startswith(b"%PDF-")  # fetched from the hub's signed link
    assert page_count(sent.document) == 1
    assert sent.events[-1] == "fax.delivered"

    async def delivered() -> bool:
        async with fax_hub.store.unit_of_work() as uow:
            found = await uow.timeline.event(reply["id"])
        return found is not None and found.data.get("status") == "delivered"

    await eventually(delivered)
    async with fax_hub.store.unit_of_work() as uow:
        event = await uow.timeline.event(reply["id"])
    assert event.data["pages_sent"] == 1
    # Late or repeated statuses never move it back.
    late = {"fax_id": sent.fax_id, "direction": "outbound", "from": OUR_FAX, "to": CUSTOMER_FAX}
    assert await telnyx.webhook("fax.sending.started", late) == 200
    async with fax_hub.store.unit_of_work() as uow:
        event = await uow.timeline.event(reply["id"])
    assert event.data["status"] == "delivered"
    # The document link works only as signed, and only for a while.
    link = URL(sent.media_url).path_qs
    assert (await client.get(link.replace("sig=", "sig=x"))).status == 404
    assert (await client.get(link.replace("expires=", "expires=1"))).status == 404
    assert (await client.get(link)).status == 200


async def test_a_busy_line_is_tried_again_and_an_agent_can_send_a_pdf(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    team = await make_team(fax_hub, "support")
    interaction = await taken(client, team, telnyx, fax_hub)
    telnyx.outcomes[CUSTOMER_FAX] = ["user_busy"]
    contract = pdf_of(page(["Contract, page 1"]), page(["Contract, page 2"]))
    attachment = {
        "filename": "contract.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(contract).decode(),
    }
    response = await client.post(
        f"/api/v1/interactions/{interaction}/reply",
        json={"body": "The contract, signed", "attachments": [attachment]},
        headers=team.headers("agent"),
    )
    assert response.status == 201, await response.text()
    reply = await response.json()

    async def delivered_twice() -> bool:
        async with fax_hub.store.unit_of_work() as uow:
            found = await uow.timeline.event(reply["id"])
        return found is not None and found.data.get("status") == "delivered"

    await eventually(delivered_twice)
    await telnyx.settle()
    first, second = telnyx.sent.values()
    assert first.events[-1] == "fax.failed"
    assert second.events[-1] == "fax.delivered"
    assert second.document == contract
    async with fax_hub.store.unit_of_work() as uow:
        event = await uow.timeline.event(reply["id"])
    assert (event.data["attempts"], event.data["pages_sent"]) == (2, 2)
    assert event.provider_ref == second.fax_id


async def test_a_retry_waiting_when_the_hub_stops_is_sent_by_the_next_hub(
    fax_hub: Hub,
    client: Client,
    telnyx: TelnyxSimulator,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    settings.fax.retry_seconds = 30
    team = await make_team(fax_hub, "support")
    interaction = await taken(client, team, telnyx, fax_hub)
    telnyx.outcomes[CUSTOMER_FAX] = ["user_busy"]
    response = await client.post(
        f"/api/v1/interactions/{interaction}/reply",
        json={"body": "Your invoice"},
        headers=team.headers("agent"),
    )
    reply = await response.json()

    async def status_is(hub: Hub, wanted: str) -> bool:
        async with hub.store.unit_of_work() as uow:
            found = await uow.timeline.event(reply["id"])
        return found is not None and found.data.get("status") == wanted

    await eventually(lambda: status_is(fax_hub, "retrying"))
    for task in channel(fax_hub)._later:  # the hub dies with its retry waiting
        task.cancel()
    clock.advance(31)  # the retry is due by the time a hub runs again

    restarted = await build_hub(settings, run_migrations=False, clock=clock)
    async with TestClient(TestServer(build_app(restarted))) as again:
        base = str(again.make_url("")).rstrip("/")
        telnyx.hub_url = settings.public_url = base
        await eventually(lambda: status_is(restarted, "delivered"))
    await telnyx.settle()
    assert [f.events[-1] for f in telnyx.sent.values()] == ["fax.failed", "fax.delivered"]


@needs_tesseract
async def test_a_fax_left_unread_by_a_stopped_hub_is_read_when_it_starts(
    settings: Settings, clock: FrozenClock, tmp_path: Path
) -> None:
    document = tmp_path / "left.pdf"
    document.write_bytes(pdf_of(page(["Left behind"])))
    # What a hub that stopped between keeping the document and reading it leaves in the store.
    first = await build_hub(settings, run_migrations=False, clock=clock)
    try:
        left = await first.receive(
            InboundMessage(
                channel=Channel.FAX,
                sender=IdentityRef(IdentityKind.FAX, CUSTOMER_FAX),
                received_at=clock(),
                provider="telnyx",
                provider_ref="left-behind",
                attachments=(Attachment("fax.pdf", "application/pdf", path=str(document)),),
                data={"from": CUSTOMER_FAX, "document": "kept"},
            )
        )
    finally:
        await first.stop()
    again = await build_hub(settings, run_migrations=False, clock=clock)
    async with TestClient(TestServer(build_app(again))):
        event = await read_event(again, "left-behind")
    assert event.id == left.event_id
    assert "Left behind" in event.body


async def test_a_large_document_arrives_whole_and_a_broken_one_is_marked_unreadable(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    # A 12-page fax is over a megabyte: it comes in many chunks and must arrive whole.
    document = pdf_of(*(page([f"Page {n}"], size=(1240, 1754)) for n in range(1, 13)))
    assert len(document) > 64 * 1024
    _, whole = await telnyx.receive_fax(sender=CUSTOMER_FAX, to=OUR_FAX, document=document)
    event = await read_event(fax_hub, whole)
    assert await asyncio.to_thread(Path(event.attachments[0].path).read_bytes) == document
    assert event.data["page_count"] == 12
    # A PDF header with nothing behind it: kept, marked unreadable, not tried forever.
    _, broken = await telnyx.receive_fax(
        sender=CUSTOMER_FAX, to=OUR_FAX, document=b"%PDF-1.4\n% truncated by the sender"
    )
    event = await read_event(fax_hub, broken)
    assert event.data["ocr"]["status"] == "failed"
    assert "cannot be read" in event.data["document_error"]


async def test_a_fax_from_a_withheld_number_is_kept_as_its_own_sender_and_not_answered(
    fax_hub: Hub, client: Client, telnyx: TelnyxSimulator
) -> None:
    _, fax_id = await telnyx.receive_fax(
        sender="anonymous", to=OUR_FAX, document=pdf_of(page(["No number on this one"]))
    )
    event = await fax_event(fax_hub, fax_id)
    assert event is not None
    assert event.data["from"] == "withheld"
    assert event.interaction_id is not None  # work like any fax
    team = await make_team(fax_hub, "support")
    record = await (
        await client.get(f"/api/v1/customers/{event.customer_id}", headers=team.headers("agent"))
    ).json()
    assert record["name"] == "Withheld number"
    assert [i["kind"] for i in record["identities"]] == ["anonymous"]
    agent = team.headers("agent")
    await client.post("/api/v1/me/state", json={"state": "available"}, headers=agent)
    accepted = await client.post(
        f"/api/v1/interactions/{event.interaction_id}/accept", headers=agent
    )
    assert accepted.status == 204
    answer = await client.post(
        f"/api/v1/interactions/{event.interaction_id}/reply", json={"body": "?"}, headers=agent
    )
    assert answer.status == 409
    assert (await answer.json())["error"]["code"] == "sender_withheld"
