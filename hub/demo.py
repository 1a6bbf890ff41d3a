"""A demo organisation, so a newcomer can log in and see a customer at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr

from hub.channels.twilio.setup import configure_twilio
from hub.config import ChatSiteSettings, Settings
from hub.crm_store.unit_of_work import Store
from hub.dev.twilio_sim import SimMessage, TwilioSimulator
from hub.domain.identity import IdentityClaim, IdentityKind, IdentityRef
from hub.domain.interaction import Channel, InteractionState
from hub.domain.messages import InboundMessage
from hub.domain.timeline import Direction, EventKind
from hub.domain.users import Role
from hub.services.accounts import create_user
from hub.services.receive import Received, receive

DEMO_PASSWORD = "demo-password"  # noqa: S105  (printed to the person who asked for a demo)
DEMO_USERS = (
    ("admin", Role.ADMIN, ["support", "sales"], "Alex Admin"),
    ("supervisor", Role.SUPERVISOR, ["support"], "Sam Supervisor"),
    ("agent", Role.AGENT, ["support"], "Ada Agent"),
    ("marketer", Role.MARKETER, ["sales"], "Mia Marketer"),
)


# The web chat of `hub serve --demo`: no other site, so only the hub's own demo page may chat.
DEMO_CHAT_SITE = ChatSiteSettings(
    id="demo", name="Demo Shop", title="Chat with Demo Shop", queue="support"
)


DEMO_TWILIO_NUMBER = "+14155550000"
DEMO_TWILIO_TOKEN = "demo-token"  # noqa: S105  (the bundled simulator's, printed to the user)


async def demo_twilio(
    settings: Settings, on_message: Callable[[SimMessage], None]
) -> TwilioSimulator:
    """Without a Twilio account, the demo runs the bundled simulator, so SMS and calls work.

    The settings are pointed at it (a demo account, one number feeding "support"); the
    simulator calls the hub where it listens, signing as Twilio does.
    """
    twilio = settings.twilio
    twilio.account_sid = "AC" + "0" * 30 + "de"
    twilio.auth_token = SecretStr(DEMO_TWILIO_TOKEN)
    twilio.numbers = {DEMO_TWILIO_NUMBER: "support"}
    simulator = TwilioSimulator(
        account_sid=twilio.account_sid,
        auth_token=DEMO_TWILIO_TOKEN,
        hub_url=settings.local_url,
        public_url=settings.public_url,
        on_message=on_message,
        numbers=[DEMO_TWILIO_NUMBER],
    )
    twilio.api_base_url = await simulator.start()
    await configure_twilio(settings, apply=True)  # as `hub twilio configure` does
    return simulator


@dataclass(frozen=True, slots=True)
class DemoOrganisation:
    """What the demo seeded (or found already there)."""

    created: bool
    usernames: tuple[str, ...]
    password: str


async def seed_demo(store: Store, *, now: datetime) -> DemoOrganisation:
    """Create demo teams, queues, users and a customer with history; do nothing if present."""
    usernames = tuple(u[0] for u in DEMO_USERS)
    async with store.unit_of_work() as uow:
        if await uow.accounts.user_by_name("admin") is not None:
            return DemoOrganisation(False, usernames, DEMO_PASSWORD)
        for team in ("support", "sales"):
            created = await uow.accounts.ensure_team(team, now)
            await uow.accounts.ensure_queue(team, created.id, now)
        await uow.commit()
    for username, role, teams, display_name in DEMO_USERS:
        await create_user(
            store,
            username=username,
            role=role,
            password=DEMO_PASSWORD,
            teams=teams,
            display_name=display_name,
            actor_id=None,
            now=now,
        )
    phone = IdentityRef(IdentityKind.PHONE, "+14155550100")
    email = IdentityRef(IdentityKind.EMAIL, "grace@example.com")
    history = [
        (Channel.EMAIL, email, "Order #1042 arrived damaged", "The mug was broken in the box."),
        (Channel.SMS, phone, None, "Hi, did you get my email about the broken mug?"),
        (Channel.API, phone, "Web form", "Please call me back after 5pm."),
    ]
    received = []
    for minutes_ago, (channel, sender, subject, body) in zip((90, 30, 5), history, strict=True):
        arrived = await receive(
            store,
            InboundMessage(
                channel=channel,
                sender=sender,
                received_at=now - timedelta(minutes=minutes_ago),
                body=body,
                provider="demo",
                provider_ref=f"demo-{channel.value}-1",
                name="Grace Hopper",
                claims=(IdentityClaim(phone, True),) if channel is Channel.EMAIL else (),
                subject=subject,
                queue="support",
            ),
            default_team="support",
            now=now,
        )
        received.append(arrived)
    # The email is history: answered and closed an hour ago. The SMS and the web form wait for
    # an agent; both can be worked in the console (the SMS answered through `hub serve
    # --demo`'s own Twilio simulator, the web form by calling back or closing it).
    await _answered(store, received[0], now - timedelta(minutes=60))
    return DemoOrganisation(True, usernames, DEMO_PASSWORD)


async def _answered(store: Store, email: Received, at: datetime) -> None:
    """Record a reply to the demo email and close it, as an agent would have."""
    assert email.interaction_id is not None
    async with store.unit_of_work() as uow:
        interaction = await uow.interactions.get(email.interaction_id, lock=True)
        assert interaction is not None
        await uow.timeline.append(
            customer_id=email.customer_id,
            interaction_id=interaction.id,
            kind=EventKind.MESSAGE,
            direction=Direction.OUTBOUND,
            occurred_at=at,
            channel=Channel.EMAIL,
            body="We are sorry about the mug, Grace. A new one is on its way today.",
            data={"to": "grace@example.com", "status": "delivered"},
        )
        previous = interaction.move_to(InteractionState.CLOSED, at)
        interaction.disposition = "resolved"
        await uow.interactions.save_state(interaction, previous)
        await uow.commit()
