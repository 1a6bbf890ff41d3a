"""Mail as it really arrives, through a real Dovecot: odd messages lose nothing, store clean text.

The fixtures under ``fixtures/odd`` are written for this suite, one per kind of oddity found by
running the public test corpora of mail parsers (the Mail gem, mail-parser in Rust, PHP and
Python, mail-mime-parser) through the hub: a raw byte inside an encoded word, undeclared 8-bit
text, C1 controls and NUL, bounces and notices from the null reverse path, list managers' and
carriers' notices, From headers a strict reader rejects, a broken header line, a message with no
sender at all (delivered twice). Set ``HUB_MAIL_CORPUS`` to a folder of more messages (such a
corpus, fetched locally) to run them too; docs/reliability.md has the figures of such a run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from hub.bootstrap import Hub
from hub.channels.email.parse import UnreadableEmail, content_digest, parse_email
from hub.crm_store.tables import QuarantineRow, TimelineEventRow
from hub.dev.dovecot import Dovecot
from tests.channels.email.conftest import ADDRESS, eventually
from tests.channels.email.test_mailbox import arrived, available_agent, mail, take

Client = TestClient[Any, Any]
ODD = Path(__file__).parent / "fixtures" / "odd"
UNCLEAN = re.compile("[\x00\x80-\x9f\ud800-\udfff]")
NOTIFICATIONS = {
    "null_path_bounce.eml",
    "null_path_notice.eml",
    "list_manager_notice.eml",
    "carrier_mailbox_full.eml",
}


def corpus(reply_id: str) -> dict[str, bytes]:
    messages = {p.name: p.read_bytes() for p in sorted(ODD.iterdir())}
    messages["null_path_bounce.eml"] = messages["null_path_bounce.eml"].replace(
        b"OUR-REPLY-ID", reply_id.encode()
    )
    extra = os.environ.get("HUB_MAIL_CORPUS")
    if extra:
        messages |= {f"corpus/{p.name}": p.read_bytes() for p in sorted(Path(extra).iterdir())}
    return messages


async def test_odd_real_mail_is_all_kept_in_clean_text_and_notices_make_no_work(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    # A reply of ours that one of the fixtures bounces.
    agent = await available_agent(mail_hub, client)
    dovecot.deliver(ADDRESS, mail(sender="Gone <gone@example.net>", message_id="<ask@example.net>"))
    asked = await arrived(mail_hub, "<ask@example.net>")
    await take(client, agent, asked.interaction_id)
    answer = await client.post(
        f"/api/v1/interactions/{asked.interaction_id}/reply", json={"body": "On it."}, headers=agent
    )
    reply_id = (await answer.json())["provider_ref"]

    messages = corpus(reply_id)
    for raw in messages.values():
        dovecot.deliver(ADDRESS, raw)
    dovecot.deliver(ADDRESS, messages["no_sender.eml"])  # delivered again, a new UID
    delivered = len(messages) + 2  # and the first message, and the repeat

    async def read_to_the_end() -> bool:
        async with mail_hub.store.unit_of_work() as uow:
            cursor = await uow.mail.cursor("support")
        return cursor is not None and cursor.last_uid == delivered

    await eventually(read_to_the_end, seconds=120, what=f"all {delivered} messages read")

    async with mail_hub.store.unit_of_work() as uow:
        events = list(
            await uow.session.execute(
                select(TimelineEventRow.__table__).where(TimelineEventRow.provider == "email")
            )
        )
        quarantined = list(await uow.session.execute(select(QuarantineRow.__table__)))
    stored = {e.provider_ref: e for e in events}
    kept = {q.digest for q in quarantined}
    lost, work_from_notices, unclean = [], [], []
    for name, delivered_raw in messages.items():
        raw = delivered_raw.replace(b"\0", b"\x80")  # as Dovecot keeps a NUL byte
        try:
            event = stored.get(parse_email(raw).message_id)
        except UnreadableEmail:
            event = None
        if event is None:
            if content_digest(raw) not in kept:  # neither stored nor kept for an admin
                lost.append(name)
        elif (name in NOTIFICATIONS or event.data.get("noise")) and event.interaction_id:
            work_from_notices.append(name)
    for event in events:
        text = json.dumps([event.body, event.data, event.attachments], ensure_ascii=False)
        if UNCLEAN.search(text):
            unclean.append(event.provider_ref)
    print(  # the counts the issue asks for
        "odd mail:",
        {
            "messages": len(messages),
            "stored": len(events),
            "quarantined": len(quarantined),
            "lost": len(lost),
            "unclean": len(unclean),
            "notices_with_work": len(work_from_notices),
        },
    )
    assert lost == []
    assert unclean == []
    assert work_from_notices == []
    nobody = content_digest(messages["no_sender.eml"])
    assert [q.digest for q in quarantined].count(nobody) == 1  # delivered twice, kept once

    def by_id(message_id: str) -> Any:
        return stored[message_id]

    assert by_id("<odd-1@example.de>").data["subject"] == "Die Hasen und die Frösche"
    assert by_id("<odd-1@example.de>").body == "Grüße aus Köln"
    assert by_id("<odd-2@example.com>").body == "It cost € 40, “really”."
    # (Dovecot stores a NUL byte as 0x80, which Windows-1252 reads as the euro sign)
    assert by_id("<odd-3@example.com>").body.startswith("He said “no” – twice.")
    bounce = by_id("<odd-4@mx.example.net>")
    assert bounce.interaction_id is None
    assert bounce.customer_id == asked.customer_id  # beside the reply it bounces
    sent = stored[reply_id]
    assert sent.data["status"] == "bounced"
    for recovered, address in (
        ("<odd-8@example.org>", "ann@example.org"),
        ("<odd-9@example.com>", "ann@example.com"),
        ("<odd-10@example.com>", "ann.example@example.com"),
        ("<odd-11@example.com>", "lee@example.com"),
    ):
        event = by_id(recovered)
        assert event.data["from"] == address
        assert event.interaction_id is not None  # a customer's mail is work
    assert "address in <>" in by_id("<odd-8@example.org>").data["sender_note"]
    assert by_id("<odd-11@example.com>").data["subject"] == "broken"
    assert by_id("<odd-11@example.com>").data["repairs"]


async def test_copies_of_one_bad_message_in_one_batch_are_kept_once_and_reading_goes_on(
    mail_hub: Hub, client: Client, dovecot: Dovecot
) -> None:
    """Copies are quarantined at the same moment: one wins, and the mailbox reader lives."""
    bad = (ODD / "no_sender.eml").read_bytes()
    for _ in range(4):
        dovecot.deliver(ADDRESS, bad)
    dovecot.deliver(ADDRESS, mail(message_id="<after-the-copies@example.org>"))
    await arrived(mail_hub, "<after-the-copies@example.org>")

    async def read_to_the_end() -> bool:
        async with mail_hub.store.unit_of_work() as uow:
            cursor = await uow.mail.cursor("support")
        return cursor is not None and cursor.last_uid == 5

    await eventually(read_to_the_end, what="the cursor past the copies")
    async with mail_hub.store.unit_of_work() as uow:
        kept = list(await uow.session.execute(select(QuarantineRow.__table__)))
    assert [q.digest for q in kept] == [content_digest(bad)]
