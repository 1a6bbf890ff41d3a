"""The hub's one typed settings object.

Sources, weakest first: built-in defaults, the TOML file (``config/hub.toml`` or the file named by
``HUB_CONFIG``), then environment variables ``HUB_<KEY>`` with ``__`` between levels
(``HUB_TWILIO__AUTH_TOKEN``). Nothing else in the hub reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from hub.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("config/hub.toml")
ENV_PREFIX = "HUB_"


class TwilioSettings(BaseModel):
    """Credentials and endpoint of the Twilio account used for voice and SMS."""

    model_config = ConfigDict(extra="forbid")

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    api_base_url: str = "https://api.twilio.com"
    # Our Twilio numbers (E.164) and the queue each one's contacts go to.
    numbers: dict[str, str] = {}
    voice_greeting: str = "Thank you for calling. Please hold for the next available agent."
    hold_music_url: str | None = None  # the conference's waitUrl; unset: Twilio's own music
    voicemail_seconds: int = Field(default=120, ge=10, le=600)
    # An IVR menu before the queue: a key (or the queue's name, spoken) -> queue. Empty: no menu.
    menu: dict[str, str] = {}
    menu_prompt: str | None = None  # unset: "For sales, press 1. For support, press 2."
    # Callers waiting hear their place in line and estimated wait between the hold music.
    announce_wait: bool = True
    # Recording: off; announce (the caller is told, then it records); ask (only if they press 1).
    recording: Literal["off", "announce", "ask"] = "off"
    recording_notice: str = "This call may be recorded for quality and training."
    # Agents on calls in the browser (Twilio Voice SDK): an API key and the TwiML app it dials.
    api_key_sid: str | None = None
    api_key_secret: SecretStr | None = None
    twiml_app_sid: str | None = None
    # Where Twilio turns when the hub does not answer (all retries failed): a second site or a
    # TwiML Bin. ``hub twilio configure`` sets it on the numbers; unset: an application error.
    fallback_url: str | None = None

    @field_validator("menu")
    @classmethod
    def _menu_keys(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = [key for key in value if len(key) != 1 or key not in "0123456789*#"]
        if wrong:
            raise ValueError(f"menu keys are single phone keys (0-9, * or #), not {wrong}")
        return value


Security = Literal["tls", "starttls", "none"]


class MailboxSettings(BaseModel):
    """One mailbox the hub reads (IMAP) and answers from (SMTP)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    address: str = Field(min_length=3, max_length=320)  # our address: replies come From it
    display_name: str | None = None
    queue: str | None = None  # where its mail goes; unset: the email channel's route
    signature: str = ""
    imap_host: str = "127.0.0.1"
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Security = "tls"
    username: str
    password: SecretStr
    folder: str = "INBOX"
    poll_seconds: float = Field(default=60, gt=0, le=3600)  # when the server has no IDLE
    batch_size: int = Field(default=100, ge=1, le=1000)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Security = "starttls"
    smtp_username: str | None = None  # unset: the IMAP username and password
    smtp_password: SecretStr | None = None
    verify_tls: bool = True  # False only for a test server's self-signed certificate


class EmailSettings(BaseModel):
    """The email channel: its mailboxes, and how it threads replies."""

    model_config = ConfigDict(extra="forbid")

    mailboxes: list[MailboxSettings] = []
    # A reply with no In-Reply-To/References we know, and no reply token, joins the sender's
    # open interaction with the same subject only if that was opened within this many days.
    subject_window_days: int = Field(default=14, ge=0, le=365)


PrechatField = Literal["off", "optional", "required"]


class ChatSiteSettings(BaseModel):
    """One website that embeds the chat widget."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(default="", max_length=200)
    # The pages allowed to open chats (scheme://host[:port]); the browser's Origin must match.
    origins: list[str] = []
    queue: str | None = None  # where its chats go; unset: the webchat channel's route
    # Signed identity: the site puts HMAC-SHA256(secret, user id) beside a logged-in user's id.
    identity_secret: SecretStr | None = None
    colour: str = Field(default="#2f6fd6", pattern=r"^#[0-9a-fA-F]{6}$")
    position: Literal["right", "left"] = "right"
    language: str = Field(default="en", max_length=16)
    title: str = Field(default="Chat with us", max_length=100)
    greeting: str = Field(default="Hello! How can we help?", max_length=1000)
    prechat_name: PrechatField = "optional"
    prechat_email: PrechatField = "optional"
    prechat_phone: PrechatField = "off"
    offline_message: str = Field(
        default="We are not here right now. Leave a message and we will answer by email.",
        max_length=1000,
    )

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        wrong = [o for o in value if not o.startswith(("http://", "https://")) or o.count("/") != 2]
        if wrong:
            raise ValueError(f"origins are scheme://host[:port] without a path, not {wrong}")
        return [o.rstrip("/").lower() for o in value]


class WebchatSettings(BaseModel):
    """The web chat channel: the sites that embed the widget, and its abuse limits."""

    model_config = ConfigDict(extra="forbid")

    sites: list[ChatSiteSettings] = []
    max_message_chars: int = Field(default=2000, ge=1, le=20_000)
    max_file_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    file_types: list[str] = [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
    ]
    messages_per_minute: int = Field(default=20, ge=1, le=600)  # per visitor
    ip_messages_per_minute: int = Field(default=120, ge=1, le=6000)  # per address
    ip_sessions_per_minute: int = Field(default=30, ge=1, le=6000)  # new connections


class FaxGatewaySettings(BaseModel):
    """A fax-to-email gateway: its mail, through a mailbox of ours, is faxes, not email."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=3, max_length=320)  # the gateway's From address
    # Where the sender's fax number is in the mail: the first match of this in the subject,
    # then the body (e.g. "Fax from +1 415 555 0100 (2 pages)").
    number_pattern: str = r"(\+?\d[\d\s().-]{6,}\d)"
    queue: str | None = None  # unset: the fax channel's route


class FaxSettings(BaseModel):
    """The fax channel: a fax provider's API (Telnyx), fax-to-email gateways, and OCR."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["telnyx"] | None = None
    api_key: SecretStr | None = None
    # The provider's webhook signing key: Telnyx signs with Ed25519; its public key, base64.
    public_key: str | None = None
    api_base_url: str = "https://api.telnyx.com"
    connection_id: str | None = None  # Telnyx's fax application
    numbers: dict[str, str] = {}  # our fax numbers (E.164) and the queue each one's faxes go to
    gateways: list[FaxGatewaySettings] = []
    ocr_languages: list[str] = ["eng", "chi_sim"]  # Tesseract's names
    max_document_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # Busy or no answer: try again this many times, this long apart.
    retries: int = Field(default=2, ge=0, le=10)
    retry_seconds: float = Field(default=300, gt=0, le=86_400)
    webhook_tolerance_seconds: int = Field(default=300, ge=10, le=3600)  # replayed webhooks


class Settings(BaseSettings):
    """Everything the hub can be told, with its default."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    _public_url_derived: bool = PrivateAttr(default=False)

    # What providers and browsers call; unset: http://{host}:{port} (127.0.0.1 for 0.0.0.0)
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    default_region: str = "US"
    database_url: str = "sqlite+aiosqlite:///./hub.db"
    redis_url: str | None = None
    redis_prefix: str = Field(default="hub:", min_length=1, max_length=64)
    default_team: str = "support"
    session_ttl_hours: int = Field(default=12, ge=1, le=24 * 30)
    record_events: int = Field(default=50, ge=1, le=500)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"
    metrics_token: SecretStr | None = None
    routing_policy: str | None = None
    data_dir: str = "./data"
    routing_tick_seconds: float = Field(default=1.0, gt=0, le=60)
    # An agent whose last console socket is gone this long goes offline (their offers move on).
    agent_disconnect_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    # How often open sockets' tokens are checked: logout, expiry and deactivation end them.
    session_check_seconds: float = Field(default=1.0, gt=0, le=60)
    twilio: TwilioSettings = TwilioSettings()
    email: EmailSettings = EmailSettings()
    webchat: WebchatSettings = WebchatSettings()
    fax: FaxSettings = FaxSettings()

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"{value!r} is not an ISO 3166 region phonenumbers knows (e.g. US, CN)"
            )
        return region

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL: providers call it")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        if not self.public_url:
            self._public_url_derived = True
            self.public_url = self.local_url
        return self

    @property
    def local_url(self) -> str:
        """Where this machine reaches the hub: http://{host}:{port} (any-address: loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def serve_on(self, host: str | None, port: int | None) -> None:
        """Listen elsewhere than the settings say (``hub serve --port``); an unset public_url
        follows, so webhook signatures and links name the port really served."""
        self.host, self.port = host or self.host, port or self.port
        if self._public_url_derived:
            self.public_url = self.local_url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


def _config_file() -> Path | None:
    named = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"HUB_CONFIG names {path}, which is not a file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, or raise ConfigError naming each bad setting."""
    try:
        return Settings(**overrides)
    except PydanticValidationError as err:
        problems = []
        for problem in err.errors():
            path = [str(part) for part in problem["loc"]]
            env_name = ENV_PREFIX + "__".join(path).upper()
            problems.append(f"{'.'.join(path)} ({env_name}): {problem['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from err
