"""A demo organisation, so a newcomer can log in and see a customer at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.config import ChatSiteSettings
from hub.crm_store.unit_of_work import Store
from hub.domain.identity import IdentityClaim, IdentityKind, IdentityRef
from hub.domain.interaction import Channel
from hub.domain.messages import InboundMessage
from hub.domain.users import Role
from hub.services.accounts import create_user
from hub.services.receive import receive

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
    for minutes_ago, (channel, sender, subject, body) in zip((90, 30, 5), history, strict=True):
        await receive(
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
    return DemoOrganisation(True, usernames, DEMO_PASSWORD)
