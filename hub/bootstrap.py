"""Builds the running hub from Settings: store, bus, channels, and the web app around them."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import DBAPIError

from hub.bus import EventBus
from hub.channels.api import ApiChannel
from hub.channels.base import ChannelAdapter
from hub.channels.email.adapter import EmailChannel
from hub.channels.fax import FaxChannel
from hub.channels.sms import SmsChannel
from hub.channels.voice import VoiceChannel
from hub.channels.voice.outbound import TwilioConference
from hub.channels.webchat import WebchatChannel
from hub.config import Settings
from hub.crm_store.database import create_engine, create_read_engine, migrate
from hub.crm_store.outbox import LocalOwnership, Ownership, PostgresLeases
from hub.crm_store.unit_of_work import Store
from hub.domain.messages import InboundMessage
from hub.errors import ConfigError, HubError
from hub.observability import Metrics
from hub.rate_limits import MemoryRateLimits, RateLimits, RedisRateLimits
from hub.routing.service import RoutingService
from hub.routing.state import MemoryRoutingState, RoutingState
from hub.routing.state.redis import RedisRoutingState
from hub.services.calls import CallService
from hub.services.channel_settings import ChannelSettings
from hub.services.receive import Intake, Received

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC: the only place the hub reads it."""
    return datetime.now(UTC)


@dataclass
class Hub:
    """One running hub: its settings and the parts built from them."""

    settings: Settings
    store: Store
    bus: EventBus
    metrics: Metrics
    clock: Clock = utc_now
    channels: list[ChannelAdapter] = field(default_factory=list)
    routing: RoutingService | None = None
    calls: CallService | None = None  # phone calls' controls, when Twilio is set up
    channel_settings: ChannelSettings | None = None  # what admins change while it runs
    limits: RateLimits = field(default_factory=MemoryRateLimits)  # abuse limits' counts
    intake: Intake = field(init=False)  # the core path's group commit

    def __post_init__(self) -> None:
        self.intake = Intake(self.store, default_team=self.settings.default_team, clock=self.clock)

    async def receive(self, message: InboundMessage) -> Received:
        """The core path for a message a channel took in (counted in the metrics)."""
        try:
            received = await self.intake.receive(message)
        except HubError:
            self.metrics.inbound.labels(message.channel.value, "rejected").inc()
            raise
        outcome = "duplicate" if received.duplicate else "stored"
        self.metrics.inbound.labels(message.channel.value, outcome).inc()
        return received

    async def start(self) -> None:
        """Start the bus and every channel; a channel that fails is logged, the rest go on."""
        if self.channel_settings is not None:
            await self.channel_settings.start()
        if self.settings.redis_url:
            await self.store.grants.share(
                self.settings.redis_url, f"{self.settings.redis_prefix}revocations"
            )
        # Subscribe before dispatching: an event delivered with nobody subscribed is deleted
        # from the outbox, lost to routing.
        if self.routing is not None:
            await self.routing.start()
        await self.store.outbox.start()
        for channel in self.channels:
            try:
                await channel.start(self.receive)
            except HubError:
                log.exception("channel failed to start", channel=channel.channel.value)

    async def settle(self, within: float = 15.0) -> None:
        """Wait until every committed event, and what it led to, has been delivered."""
        await self.store.outbox.settle(within)

    def stop_intake(self) -> None:
        """Take no new work (the first thing on SIGTERM); what is in hand finishes."""
        for channel in self.channels:
            channel.stop_intake()

    async def stop(self) -> None:
        """Stop channels, then the bus, then close the store."""
        for channel in reversed(self.channels):
            try:
                await channel.stop()
            except HubError:
                log.exception("channel failed to stop", channel=channel.channel.value)
        await self.intake.stop()
        await self.store.outbox.stop()  # stop dispatching first, then what the events fed
        if self.routing is not None:
            await self.routing.stop()
        if self.channel_settings is not None:
            await self.channel_settings.stop()
        await self.limits.close()
        await self.store.grants.stop()
        await self.store.close()


async def build_hub(
    settings: Settings, *, run_migrations: bool = True, clock: Clock = utc_now
) -> Hub:
    """Connect the store (migrating it to the newest schema) and assemble the hub."""
    engine = create_engine(settings.database_url)
    if run_migrations:
        try:
            await migrate(engine)
        except (DBAPIError, OSError) as err:
            await engine.dispose()
            raise ConfigError(
                f"HUB_DATABASE_URL (database_url): cannot migrate {engine.url!r}: {err}"
            ) from err
    bus = EventBus()
    # On PostgreSQL the outbox's partitions are leased, so any number of processes can share
    # one database; on SQLite the one process dispatches everything.
    ownership: Ownership = (
        PostgresLeases(settings.database_url)
        if engine.dialect.name == "postgresql"
        else LocalOwnership()
    )
    store = Store(engine, bus, ownership, reader=create_read_engine(engine))
    state: RoutingState = (
        RedisRoutingState(settings.redis_url, prefix=f"{settings.redis_prefix}routing:")
        if settings.redis_url
        else MemoryRoutingState()
    )
    routing = RoutingService(store, bus, state, settings, clock)
    limits: RateLimits = (
        RedisRateLimits(settings.redis_url, prefix=f"{settings.redis_prefix}limits:")
        if settings.redis_url
        else MemoryRateLimits()
    )
    channels: list[ChannelAdapter] = [ApiChannel(settings.default_region, clock)]
    calls = None
    if settings.twilio.auth_token is not None:
        calls = CallService(settings, store, routing, TwilioConference(settings), clock)
        channels += [
            SmsChannel(settings, store, clock),
            VoiceChannel(settings, store, routing, calls, clock),
        ]
    fax = None
    if settings.fax.provider or settings.fax.gateways:
        fax = FaxChannel(settings, store, clock)
        channels.append(fax)
    email = None
    if settings.email.mailboxes:
        email = EmailChannel(settings, store, clock, fax=fax)
        channels.append(email)
    if settings.webchat.sites:
        channels.append(WebchatChannel(settings, store, routing, clock, email, limits))
    live = ChannelSettings(settings, store, clock)
    metrics = Metrics()
    outbox = store.outbox
    metrics.watch_outbox(
        {
            "in_flight": lambda: float(outbox.in_flight),
            "lag_seconds": outbox.lag_seconds,
            "delivered": lambda: float(outbox.delivered),
            "failed": lambda: float(bus.failures),
        }
    )
    routing.upkeep.on_health.append(lambda health: metrics.routing_health(health.figures()))
    return Hub(settings, store, bus, metrics, clock, channels, routing, calls, live, limits)


def settle_heap() -> None:
    """Once the hub has started: what start-up made (modules, the ORM's mappings, the
    libraries' tables) lives as long as the process, so it is moved out of the cycle
    collector's sight (``gc.freeze``). A full collection then scans only what the running hub
    makes: with everything in sight, one took 60-110 ms every few seconds at 200 contacts a
    second, and every request and offer waited for it. Garbage of start-up is collected first.
    For ``hub serve`` and the benchmarks, not for tests (which start hubs by the hundred).
    """
    gc.collect()
    gc.freeze()
