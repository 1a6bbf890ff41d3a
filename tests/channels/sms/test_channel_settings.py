"""Admins change what the channels do while the hub runs (stored, audited), on both stores."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.agent_console.app import build_app
from hub.bootstrap import Hub, build_hub
from hub.config import MailboxSettings, Settings
from hub.crm_store.unit_of_work import Store
from hub.dev.twilio_sim import TwilioSimulator
from hub.domain.interaction import InteractionState
from hub.errors import ValidationError
from hub.services.channel_settings import ChannelSettings
from tests.channels.sms.conftest import OUR_NUMBER, TOKEN
from tests.conftest import FrozenClock, make_team
from tests.routing.test_routing_api import call

Client = TestClient[Any, Any]
PATH = "/api/v1/channels/settings"


async def queue_of_latest(hub: Hub) -> str | None:
    async with hub.store.unit_of_work() as uow:
        work = await uow.interactions.in_states(frozenset(InteractionState))
    newest = max(work, key=lambda i: i.id)
    assert hub.routing is not None
    assert newest.queue_id is not None
    return hub.routing.queue_name(newest.queue_id)


async def test_an_admin_points_a_number_at_another_queue_and_back(
    sms_hub: Hub, client: Client, twilio: TwilioSimulator, settings: Settings, clock: FrozenClock
) -> None:
    team = await make_team(sms_hub, "support")
    response = await client.get(PATH, headers=team.headers("admin"))
    assert TOKEN not in await response.text()  # secrets are never shown
    shown = await response.json()
    assert shown["twilio"]["configured"] is True
    assert shown["twilio"]["values"]["numbers"] == {"(415) 555-0000": "support"}
    assert shown["version"] == 0
    for role in ("supervisor", "agent"):
        await call(client, team, role, "GET", PATH, 403)

    moved = {"twilio": {"numbers": {OUR_NUMBER: "billing"}, "recording": "announce"}}
    refused = await call(client, team, "admin", "PUT", PATH, 422, overrides=moved)
    assert "no queue 'billing'" in refused["error"]["message"]
    await call(
        client,
        team,
        "admin",
        "PUT",
        "/api/v1/routing/policy/queues/billing",
        201,
        entry={"team": "support"},
    )
    bad = {"twilio": {"numbers": {"not a number": "billing"}}}
    assert (
        "not a phone number"
        in (await call(client, team, "admin", "PUT", PATH, 422, overrides=bad))["error"]["message"]
    )
    await call(client, team, "admin", "PUT", PATH, 422, overrides={"twilio": {"auth_token": "x"}})

    saved = await call(client, team, "admin", "PUT", PATH, overrides=moved, base_version=0)
    assert saved["version"] == 1
    assert saved["twilio"]["values"]["recording"] == "announce"
    assert saved["twilio"]["file"]["recording"] == "off"
    await twilio.send_sms(sender="+14155550123", to=OUR_NUMBER, body="my invoice")
    assert await queue_of_latest(sms_hub) == "billing"  # at once, no restart

    # Stored: a restarted hub keeps it.
    again = await build_hub(settings, run_migrations=False, clock=clock)
    async with TestClient(TestServer(build_app(again))) as restarted:
        kept = await call(restarted, team, "admin", "GET", PATH)
        assert kept["twilio"]["values"]["numbers"] == {OUR_NUMBER: "billing"}
    await call(client, team, "admin", "PUT", PATH, 409, overrides={}, base_version=0)
    reset = await call(client, team, "admin", "PUT", PATH, overrides={}, base_version=1)
    assert reset["twilio"]["values"]["numbers"] == {"(415) 555-0000": "support"}
    await twilio.send_sms(sender="+14155550124", to=OUR_NUMBER, body="where is it")
    assert await queue_of_latest(sms_hub) == "support"
    audit = await call(client, team, "admin", "GET", "/api/v1/audit?entity_type=channel_settings")
    assert len(audit["entries"]) == 2


async def test_mailbox_settings_change_the_live_mailbox_and_unknown_ones_are_refused(
    store: Store, clock: FrozenClock, database_url: str
) -> None:
    mailbox = MailboxSettings(
        name="support",
        address="support@example.com",
        username="u",
        password="p",  # type: ignore[arg-type]
    )
    settings = Settings(database_url=database_url, email={"mailboxes": [mailbox]})  # type: ignore[arg-type]
    live = ChannelSettings(settings, store, clock)
    await live.load()
    from hub.domain.users import Principal, Role

    admin = Principal(1, "admin", Role.ADMIN, frozenset())
    async with store.unit_of_work() as uow:  # the audit and version rows name a real user
        await uow.accounts.add_user(
            username="admin",
            display_name="admin",
            role=Role.ADMIN,
            password_hash=None,
            team_ids=frozenset(),
            now=clock(),
        )
        await uow.commit()
    change = {
        "email": {"mailboxes": {"support": {"signature": "Ann, Support", "queue": "support"}}}
    }
    await live.save(admin, change, base_version=None, queues={"support"})
    (configured,) = settings.email.mailboxes
    assert configured.signature == "Ann, Support"  # the object the email channel reads
    with pytest.raises(ValidationError, match="no mailbox 'sales'"):
        await live.save(
            admin, {"email": {"mailboxes": {"sales": {}}}}, base_version=None, queues={"support"}
        )
    assert configured.signature == "Ann, Support"  # a refused change changes nothing
    await live.save(admin, {}, base_version=None, queues={"support"})
    assert configured.signature == ""
