"""The [solusvm] settings section: required keys when enabled, safe URLs, secrets from file or env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.errors import ConfigError
from bridge.solusvm.client import SolusVMClient
from bridge.solusvm.settings import DEFAULT_SSO_URL_TEMPLATE, SolusVMSettings


def settings(**values: Any) -> SolusVMSettings:
    return SolusVMSettings.model_validate(values)


def test_disabled_by_default_needs_nothing() -> None:
    section = settings()
    assert section.enabled is False
    assert section.url is None
    assert section.per_page == 100
    assert section.verify_tls is True
    assert section.sso_url_template == DEFAULT_SSO_URL_TEMPLATE


def test_enabled_without_url_names_the_key_and_the_fix() -> None:
    with pytest.raises(ValidationError) as raised:
        settings(enabled=True, token="t0ken")
    message = str(raised.value)
    assert "solusvm.url is required" in message
    assert "https://solus.example.com" in message


def test_enabled_without_token_names_the_key_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGE_SOLUSVM_TOKEN", raising=False)
    with pytest.raises(ValidationError) as raised:
        settings(enabled=True, url="https://solus.example.com")
    message = str(raised.value)
    assert "solusvm.token is required" in message
    assert "token_file" in message
    assert "BRIDGE_SOLUSVM_TOKEN" in message


def test_token_from_file_and_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGE_SOLUSVM_TOKEN", raising=False)
    token_file = tmp_path / "solusvm.token"
    token_file.write_text("from-file-token\n", encoding="utf-8")
    from_file = settings(enabled=True, url="https://solus.example.com", token_file=str(token_file))
    assert from_file.token is not None
    assert from_file.token.get_secret_value() == "from-file-token"

    monkeypatch.setenv("BRIDGE_SOLUSVM_TOKEN", "from-env-token")
    from_env = settings(enabled=True, url="https://solus.example.com", token_file=str(token_file))
    assert from_env.token is not None
    assert from_env.token.get_secret_value() == "from-env-token"
    assert "from-env-token" not in repr(from_env)


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="urll"):
        settings(urll="https://solus.example.com")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://solus.example.com/", "https://solus.example.com"),
        ("https://solus.example.com:8443", "https://solus.example.com:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:9000/", "http://localhost:9000"),
    ],
)
def test_url_is_normalised(given: str, expected: str) -> None:
    assert settings(url=given).url == expected


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("http://solus.example.com", "use https://"),
        ("ftp://solus.example.com", "not an http(s) URL"),
        ("solus.example.com", "not an http(s) URL"),
        ("https://solus.example.com/api/v1/", "ends with /api/v1"),
        ("https://solus.example.com/?x=1", "must not carry"),
        ("https://user:pw@solus.example.com", "must not carry"),
    ],
)
def test_bad_urls_are_refused_with_the_fix(given: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        settings(url=given)


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{url}/login", "must contain {token}"),
        ("{url}/login?t={token}&u={user}", "unknown placeholder"),
        ("{url/login?{token}", "not a valid template"),
    ],
)
def test_sso_template_is_checked(template: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as raised:
        settings(sso_url_template=template)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"per_page": 0}, "per_page 0 is out of range"),
        ({"max_attempts": 0}, "max_attempts 0 is out of range"),
        ({"read_timeout_seconds": 0}, "above 0"),
    ],
)
def test_numbers_are_bounded(values: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        settings(**values)


def test_verify_prefers_the_ca_bundle() -> None:
    assert settings().verify() is True
    assert settings(verify_tls=False).verify() is False
    assert settings(verify_tls=False, ca_bundle="/etc/ssl/solus.pem").verify() == "/etc/ssl/solus.pem"


def test_client_from_settings() -> None:
    section = settings(enabled=True, url="https://solus.example.com", token="t0ken-value", per_page=50)
    client = SolusVMClient.from_settings(section)
    try:
        assert repr(client) == "SolusVMClient(url='https://solus.example.com')"
        assert client.sso_url("abc") == "https://solus.example.com/auth/by_token?token=abc"
    finally:
        client.close()


def test_client_from_settings_without_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"solusvm\.url and solusvm\.token are required"):
        SolusVMClient.from_settings(settings())
