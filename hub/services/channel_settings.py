"""Channel settings an admin changes while the hub runs, kept as versions in the store.

What the configuration file and ``HUB_*`` environment give is the base; an admin's overrides
(which queue each Twilio number, mailbox and chat site feeds, the IVR menu, greetings,
recording, mailbox signatures, the chat widget's look and pre-chat form ...) are saved as the
next ``channel_settings`` version and applied at once to the live settings every channel reads
at each use. Secrets (auth tokens, passwords, API keys) stay
in the file or environment: the console shows whether they are set, never their values.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from hub.config import ChatSiteSettings, MailboxSettings, Settings, TwilioSettings
from hub.crm_store.config_versions import ConfigVersion
from hub.crm_store.unit_of_work import Store
from hub.domain.identity import normalize_phone
from hub.domain.users import Permission, Principal
from hub.errors import Conflict, HubError, InvalidIdentity, StoreConflict, ValidationError

log = structlog.get_logger(__name__)

CHANNELS = "channel_settings"  # its kind among the config versions
QueueName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Text = Annotated[str, StringConstraints(max_length=2000)]


class _Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TwilioOverrides(_Overrides):
    """What an admin may change of the Twilio channels (None: as the file says)."""

    numbers: dict[str, QueueName] | None = None
    voice_greeting: Text | None = None
    hold_music_url: Text | None = None
    voicemail_seconds: int | None = Field(default=None, ge=10, le=600)
    menu: dict[str, QueueName] | None = None
    menu_prompt: Text | None = None
    announce_wait: bool | None = None
    recording: Literal["off", "announce", "ask"] | None = None
    recording_notice: Text | None = None


class MailboxOverrides(_Overrides):
    """What an admin may change of one mailbox."""

    display_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    queue: QueueName | None = None
    signature: Text | None = None


class EmailOverrides(_Overrides):
    subject_window_days: int | None = Field(default=None, ge=0, le=365)
    mailboxes: dict[str, MailboxOverrides] = Field(default_factory=dict)


class ChatSiteOverrides(_Overrides):
    """What an admin may change of one chat site: its widget and where its chats go."""

    queue: QueueName | None = None
    origins: list[str] | None = None
    colour: Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")] | None = None
    position: Literal["right", "left"] | None = None
    language: Annotated[str, StringConstraints(max_length=16)] | None = None
    title: Annotated[str, StringConstraints(max_length=100)] | None = None
    greeting: Annotated[str, StringConstraints(max_length=1000)] | None = None
    prechat_name: Literal["off", "optional", "required"] | None = None
    prechat_email: Literal["off", "optional", "required"] | None = None
    prechat_phone: Literal["off", "optional", "required"] | None = None
    offline_message: Annotated[str, StringConstraints(max_length=1000)] | None = None


class WebchatOverrides(_Overrides):
    sites: dict[str, ChatSiteOverrides] = Field(default_factory=dict)


class ChannelOverrides(_Overrides):
    """Every override, as saved."""

    twilio: TwilioOverrides = Field(default_factory=TwilioOverrides)
    email: EmailOverrides = Field(default_factory=EmailOverrides)
    webchat: WebchatOverrides = Field(default_factory=WebchatOverrides)


TWILIO_FIELDS = tuple(TwilioOverrides.model_fields)
MAILBOX_FIELDS = tuple(MailboxOverrides.model_fields)
SITE_FIELDS = tuple(ChatSiteOverrides.model_fields)


class ChannelSettings:
    """The live channel settings: the file's, with the stored overrides applied."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self._base_twilio = settings.twilio.model_copy(deep=True)
        self._base_mailboxes = {m.name: m.model_copy(deep=True) for m in settings.email.mailboxes}
        self._base_window = settings.email.subject_window_days
        self._base_sites = {s.id: s.model_copy(deep=True) for s in settings.webchat.sites}
        self.version: ConfigVersion | None = None
        self.overrides = ChannelOverrides()
        self._follower: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Apply the stored overrides; scaled out, follow what other processes save."""
        await self.load()
        if self.settings.redis_url:
            self._stopping.clear()
            self._follower = asyncio.create_task(self._follow(), name="channel settings")

    async def stop(self) -> None:
        """Stop following."""
        self._stopping.set()
        if self._follower is not None:
            await self._follower
            self._follower = None

    async def load(self) -> None:
        """Apply the newest stored version (one that no longer fits is logged and skipped)."""
        async with self.store.unit_of_work() as uow:
            latest = await uow.config.latest(CHANNELS)
        if latest is None:
            return
        try:
            self._apply(ChannelOverrides.model_validate(latest.document))
        except (PydanticValidationError, ValidationError) as err:
            log.error("stored channel settings do not fit", version=latest.version, error=str(err))
            return
        self.version = latest

    async def _follow(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=2)
            try:
                async with self.store.unit_of_work() as uow:
                    newest = await uow.config.latest_number(CHANNELS)
                if newest > (self.version.version if self.version else 0):
                    await self.load()
            except HubError:
                log.exception("could not read the channel settings")

    def _apply(self, overrides: ChannelOverrides) -> None:
        """Put overrides on the live settings, checked as the file's would be."""
        twilio = overrides.twilio.model_dump(exclude_none=True)
        base = self._base_twilio.model_dump()
        try:
            merged = TwilioSettings.model_validate(base | twilio)
        except PydanticValidationError as err:
            raise _invalid(err, "twilio.") from err
        unknown = set(overrides.email.mailboxes) - set(self._base_mailboxes)
        if unknown:
            raise ValidationError(
                f"no mailbox {sorted(unknown)[0]!r} in the configuration", field="email.mailboxes"
            )
        sites = {}
        for site_id, site_changes in overrides.webchat.sites.items():
            if site_id not in self._base_sites:
                raise ValidationError(
                    f"no chat site {site_id!r} in the configuration", field="webchat.sites"
                )
            base_site = self._base_sites[site_id].model_dump()
            try:  # checked as the file's would be (origins' form)
                sites[site_id] = ChatSiteSettings.model_validate(
                    base_site | site_changes.model_dump(exclude_none=True)
                )
            except PydanticValidationError as err:
                raise _invalid(err, f"webchat.sites.{site_id}.") from err
        # In place: the channels hold these very objects and read them at each use.
        _put(self.settings.twilio, merged, TWILIO_FIELDS)
        for mailbox in self.settings.email.mailboxes:
            changes = overrides.email.mailboxes.get(mailbox.name, MailboxOverrides())
            base_mailbox = self._base_mailboxes[mailbox.name]
            update = changes.model_dump(exclude_none=True)
            _put(mailbox, base_mailbox.model_copy(update=update), MAILBOX_FIELDS)
        for site in self.settings.webchat.sites:
            _put(site, sites.get(site.id, self._base_sites[site.id]), SITE_FIELDS)
        window = overrides.email.subject_window_days
        self.settings.email.subject_window_days = self._base_window if window is None else window
        self.overrides = overrides

    async def save(
        self,
        principal: Principal,
        document: dict[str, Any],
        *,
        base_version: int | None,
        queues: set[str],
    ) -> None:
        """An admin's overrides: checked (queues must be routed), saved, applied; audited."""
        principal.require(Permission.CHANNELS_MANAGE)
        try:
            overrides = ChannelOverrides.model_validate(document)
        except PydanticValidationError as err:
            raise _invalid(err) from err
        self._check_queues(overrides, queues)
        numbers = overrides.twilio.numbers or {}
        for number in numbers:
            try:
                normalize_phone(number, self.settings.default_region)
            except InvalidIdentity as err:
                raise ValidationError(
                    f"twilio.numbers: {number!r} is not a phone number", field="twilio.numbers"
                ) from err
        current = self.version.version if self.version else 0
        if base_version is not None and base_version != current:
            raise Conflict(
                f"the channel settings are at version {current}, not {base_version}; "
                "load them again and redo the change"
            )
        previous = self.overrides
        self._apply(overrides)  # raises before anything is saved if the values do not fit
        now = self.clock()
        clean = overrides.model_dump(mode="json", exclude_none=True)
        try:
            async with self.store.unit_of_work() as uow:
                self.version = await uow.config.add(
                    CHANNELS,
                    version=current + 1,
                    document=clean,
                    source="the console",
                    created_by=principal.user_id,
                    now=now,
                )
                uow.audit.add(
                    at=now,
                    actor_id=principal.user_id,
                    action="channels.settings",
                    entity_type="channel_settings",
                    entity_id=current + 1,
                    overrides=clean,
                )
                await uow.commit()
        except (StoreConflict, HubError) as err:
            self._apply(previous)
            if isinstance(err, StoreConflict):
                raise Conflict(
                    "the channel settings were changed meanwhile; load them again"
                ) from err
            raise

    @staticmethod
    def _check_queues(overrides: ChannelOverrides, queues: set[str]) -> None:
        named = [
            *(("twilio.numbers", q) for q in (overrides.twilio.numbers or {}).values()),
            *(("twilio.menu", q) for q in (overrides.twilio.menu or {}).values()),
            *(
                (f"email.mailboxes.{name}.queue", m.queue)
                for name, m in overrides.email.mailboxes.items()
                if m.queue is not None
            ),
            *(
                (f"webchat.sites.{name}.queue", site.queue)
                for name, site in overrides.webchat.sites.items()
                if site.queue is not None
            ),
        ]
        for where, queue in named:
            if queue not in queues:
                raise ValidationError(
                    f"{where}: no queue {queue!r} in the routing policy", field=where
                )

    def view(self) -> dict[str, Any]:
        """What the console shows: each value in force, the file's, and which secrets are set."""
        twilio = self.settings.twilio
        return {
            "version": self.version.version if self.version else 0,
            "overrides": self.overrides.model_dump(mode="json", exclude_none=True),
            "twilio": {
                "configured": twilio.auth_token is not None,
                "account_sid": twilio.account_sid,
                "api_base_url": twilio.api_base_url,
                "browser_calls": bool(
                    twilio.api_key_sid and twilio.api_key_secret and twilio.twiml_app_sid
                ),
                "values": {name: getattr(twilio, name) for name in TWILIO_FIELDS},
                "file": {name: getattr(self._base_twilio, name) for name in TWILIO_FIELDS},
            },
            "webchat": {
                "sites": [
                    {
                        "id": site.id,
                        "name": site.name,
                        "identity_secret": site.identity_secret is not None,
                        "values": {n: getattr(site, n) for n in SITE_FIELDS},
                        "file": {n: getattr(self._base_sites[site.id], n) for n in SITE_FIELDS},
                    }
                    for site in self.settings.webchat.sites
                ]
            },
            "email": {
                "subject_window_days": self.settings.email.subject_window_days,
                "mailboxes": [
                    _mailbox_view(m, self._base_mailboxes[m.name])
                    for m in self.settings.email.mailboxes
                ],
            },
        }


def _put(live: BaseModel, merged: BaseModel, fields: tuple[str, ...]) -> None:
    """Give the live settings object the merged one's values of these fields."""
    for name in fields:
        setattr(live, name, getattr(merged, name))


def _invalid(err: PydanticValidationError, prefix: str = "") -> ValidationError:
    """The first problem pydantic found, naming the field."""
    first = err.errors(include_url=False)[0]
    where = prefix + ".".join(str(p) for p in first["loc"])
    return ValidationError(f"{where}: {first['msg']}", field=where)


def _mailbox_view(live: MailboxSettings, base: MailboxSettings) -> dict[str, Any]:
    return {
        "name": live.name,
        "address": live.address,
        "imap": f"{live.imap_host}:{live.imap_port} ({live.imap_security})",
        "smtp": f"{live.smtp_host}:{live.smtp_port} ({live.smtp_security})",
        "username": live.username,
        "values": {name: getattr(live, name) for name in MAILBOX_FIELDS},
        "file": {name: getattr(base, name) for name in MAILBOX_FIELDS},
    }
