from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import load_settings
from hub.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no config/hub.toml here


def test_defaults_are_the_embedded_hub() -> None:
    settings = load_settings()
    assert settings.database_url.startswith("sqlite+aiosqlite://")
    assert settings.redis_url is None
    assert settings.default_region == "US"
    assert settings.twilio.api_base_url == "https://api.twilio.com"


def test_toml_file_then_environment_take_precedence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        'default_region = "CN"\nport = 9000\n'
        '[twilio]\naccount_sid = "ACfile"\nauth_token = "file"\n'
    )
    monkeypatch.setenv("HUB_CONFIG", str(config))
    monkeypatch.setenv("HUB_PORT", "9100")
    monkeypatch.setenv("HUB_TWILIO__AUTH_TOKEN", "from-env")
    settings = load_settings()
    assert settings.default_region == "CN"
    assert settings.port == 9100
    assert settings.twilio.account_sid == "ACfile"
    assert settings.twilio.auth_token is not None
    assert settings.twilio.auth_token.get_secret_value() == "from-env"


def test_default_config_file_is_read_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "hub.toml").write_text('public_url = "https://hub.example.com/"\n')
    assert load_settings().public_url == "https://hub.example.com"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("HUB_DEFAULT_REGION", "XX", "HUB_DEFAULT_REGION"),
        ("HUB_DATABASE_URL", "mysql://x", "HUB_DATABASE_URL"),
        ("HUB_PORT", "eighty", "HUB_PORT"),
        ("HUB_PUBLIC_URL", "hub.example.com", "HUB_PUBLIC_URL"),
        ("HUB_LOG_FORMAT", "xml", "HUB_LOG_FORMAT"),
    ],
)
def test_a_wrong_setting_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert named in caught.value.message


def test_unknown_keys_in_the_file_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text('databse_url = "sqlite+aiosqlite:///typo.db"\n')
    monkeypatch.setenv("HUB_CONFIG", str(config))
    with pytest.raises(ConfigError, match="databse_url"):
        load_settings()


def test_a_missing_named_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_CONFIG", "/nonexistent/hub.toml")
    with pytest.raises(ConfigError, match="HUB_CONFIG"):
        load_settings()


def test_the_example_configuration_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).parent.parent / "config" / "hub.example.toml"
    monkeypatch.setenv("HUB_CONFIG", str(example))
    settings = load_settings()
    assert settings.public_url.startswith("https://")
