"""The [whmcs] settings section: defaults, what is required when enabled, secrets from files and env."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.errors import ConfigError
from bridge.whmcs import WhmcsClient, WhmcsSettings

ENABLED = {"enabled": True, "url": "https://billing.example.com", "identifier": "ident", "secret": "s3cr3t"}


def test_disabled_by_default_with_documented_defaults() -> None:
    settings = WhmcsSettings()
    assert settings.enabled is False
    assert settings.verify_tls is True
    assert (settings.connect_timeout_seconds, settings.read_timeout_seconds) == (5.0, 30.0)
    assert settings.send_invoice is False
    assert settings.invoice_status == "Unpaid"
    assert settings.agreement_gateways == []
    assert settings.verify is True


@pytest.mark.parametrize(
    ("missing", "named"),
    [("url", "whmcs.url"), ("identifier", "whmcs.identifier"), ("secret", "whmcs.secret")],
)
def test_enabled_requires_url_identifier_and_secret(missing: str, named: str) -> None:
    data = {key: value for key, value in ENABLED.items() if key != missing}
    with pytest.raises(ValidationError) as caught:
        WhmcsSettings(**data)  # type: ignore[arg-type]
    message = str(caught.value)
    assert named in message
    assert "set" in message
    assert "s3cr3t" not in message


def test_url_is_normalised_to_the_base_address() -> None:
    settings = WhmcsSettings(**{**ENABLED, "url": "https://billing.example.com/whmcs/includes/api.php"})
    assert settings.url == "https://billing.example.com/whmcs"


@pytest.mark.parametrize(
    "url", ["billing.example.com", "ftp://billing.example.com", "https://u:p@billing.example.com"]
)
def test_bad_urls_are_refused_with_the_setting_named(url: str) -> None:
    with pytest.raises(ValidationError, match=r"whmcs\.url"):
        WhmcsSettings(**{**ENABLED, "url": url})


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError):
        WhmcsSettings(**{**ENABLED, "sekret": "typo"})  # type: ignore[arg-type]


def test_secret_from_a_file_and_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n", encoding="utf-8")
    data = {key: value for key, value in ENABLED.items() if key != "secret"}
    from_file = WhmcsSettings(**data, secret_file=str(secret_file))  # type: ignore[arg-type]
    assert from_file.secret is not None and from_file.secret.get_secret_value() == "from-file"
    monkeypatch.setenv("BRIDGE_WHMCS_ACCESS_KEY", "from-env")
    with_key = WhmcsSettings(**ENABLED)
    assert with_key.access_key is not None and with_key.access_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(with_key)


def test_ca_bundle_is_what_requests_verifies_with() -> None:
    assert WhmcsSettings(**{**ENABLED, "ca_bundle": "/etc/ssl/ca.pem"}).verify == "/etc/ssl/ca.pem"
    with pytest.raises(ValidationError, match="verify_tls"):
        WhmcsSettings(**{**ENABLED, "ca_bundle": "/etc/ssl/ca.pem", "verify_tls": False})


def test_client_from_settings_and_from_incomplete_settings() -> None:
    client = WhmcsClient.from_settings(WhmcsSettings(**ENABLED))
    assert client.url == "https://billing.example.com"
    assert "s3cr3t" not in repr(client)
    client.close()
    with pytest.raises(ConfigError, match=r"whmcs\.url"):
        WhmcsClient.from_settings(WhmcsSettings())


def test_the_settle_time_defaults_well_past_the_read_timeout() -> None:
    settings = WhmcsSettings()
    assert settings.in_doubt_settle_seconds == 900.0 > settings.read_timeout_seconds


@pytest.mark.parametrize("settle", ["30", "12.5"])
def test_check_config_refuses_a_settle_time_not_longer_than_the_read_timeout(
    settle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Looking an in-doubt call up before WHMCS can have finished applying it would find nothing and send
    it again: exit 2, one line naming the key and the fix, nothing created."""
    from tests.support.cli import run_cli

    path = tmp_path / "settings.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "bridge.sqlite3"}"\n'
        f"[whmcs]\nread_timeout_seconds = 30\nin_doubt_settle_seconds = {settle}\n"
    )

    code, _, err = run_cli(capsys, "--config", str(path), "check-config")

    assert code == 2
    (line,) = err.strip().splitlines()
    assert f"whmcs.in_doubt_settle_seconds ({settle.removesuffix('.0')}) must be longer than" in line
    assert "whmcs.read_timeout_seconds (30)" in line
    assert not (tmp_path / "bridge.sqlite3").exists()
