"""OpenStackSettings validation and connect(): clouds.yaml or explicit keys, never a leaked secret."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs
from tenacity import wait_none

from bridge.clock import FixedClock
from bridge.errors import ConfigError, VendorError
from bridge.fleio.connection import connect
from bridge.fleio.nova_usage import NovaUsageCollector
from bridge.fleio.settings import OpenStackSettings
from tests.fakes.nova import FakeOpenStack
from tests.fleio.helpers import WINDOW, at, hours_by_id


def _error(**values: object) -> str:
    with pytest.raises(ValidationError) as raised:
        OpenStackSettings(**values)
    return str(raised.value)


# --- validation -----------------------------------------------------------------------------------------


def test_disabled_needs_nothing() -> None:
    settings = OpenStackSettings()
    assert (settings.enabled, settings.window, settings.interface, settings.verify_tls) == (
        False,
        1,
        "public",
        True,
    )
    assert settings.settle_delay == timedelta(minutes=15)
    assert settings.window_length == timedelta(hours=1)


def test_enabled_needs_cloud_or_auth_url_and_says_how_to_fix_it() -> None:
    message = _error(enabled=True)
    assert "openstack.cloud or openstack.auth_url is required" in message
    assert "clouds.yaml" in message


def test_cloud_and_auth_url_together_are_refused() -> None:
    assert "not both" in _error(enabled=True, cloud="billing", auth_url="https://keystone:5000/v3")


def test_auth_url_without_credentials_names_the_missing_keys() -> None:
    message = _error(enabled=True, auth_url="https://keystone:5000/v3", username="u")
    assert "openstack.password, openstack.project_name missing" in message
    assert "password_file" in message or "<key>_file" in message


def test_password_and_application_credential_together_are_refused() -> None:
    message = _error(
        enabled=True,
        auth_url="https://keystone:5000/v3",
        username="u",
        password="p",
        project_name="admin",
        application_credential_id="id",
        application_credential_secret="s",
    )
    assert "keep one" in message


def test_a_blank_password_counts_as_missing() -> None:
    message = _error(enabled=True, auth_url="https://k/v3", username="u", password=" ", project_name="a")
    assert "openstack.password missing" in message


def test_application_credential_needs_its_secret() -> None:
    message = _error(enabled=True, auth_url="https://k/v3", application_credential_id="id")
    assert "openstack.application_credential_secret missing" in message


@pytest.mark.parametrize("hours", [5, 7, 48, 0])
def test_a_window_that_does_not_divide_a_day_is_refused(hours: int) -> None:
    assert "window" in _error(window=hours)


def test_unknown_keys_are_refused() -> None:
    assert "extra" in _error(enabled=False, pasword="typo").lower()


def test_the_password_is_never_in_repr_or_in_a_validation_error() -> None:
    settings = OpenStackSettings(
        enabled=True, auth_url="https://k/v3", username="u", password="S3cret-pw", project_name="admin"
    )
    assert "S3cret-pw" not in repr(settings)
    assert "S3cret-pw" not in _error(enabled=True, auth_url="https://k/v3", password="S3cret-pw")


def test_the_password_may_come_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    base = {"enabled": True, "auth_url": "https://k/v3", "username": "u", "project_name": "admin"}

    from_file = OpenStackSettings.model_validate({**base, "password_file": str(secret)})
    assert from_file.password is not None and from_file.password.get_secret_value() == "from-file"

    monkeypatch.setenv("BRIDGE_OPENSTACK_PASSWORD", "from-env")
    from_env = OpenStackSettings.model_validate({**base, "password_file": str(secret)})
    assert from_env.password is not None and from_env.password.get_secret_value() == "from-env"


# --- connect --------------------------------------------------------------------------------------------


def _collect(settings: OpenStackSettings, clock: FixedClock) -> dict[str, Decimal]:
    conn = connect(settings)
    try:
        return hours_by_id(NovaUsageCollector(conn, clock=clock, retry_wait=wait_none()).collect(WINDOW))
    finally:
        conn.close()


def test_explicit_keys_ignore_os_environment(
    fake: FakeOpenStack, settings: OpenStackSettings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fake.create_server("p1", at=at(6))
    monkeypatch.setenv("OS_AUTH_URL", "http://127.0.0.1:9/v3")
    monkeypatch.setenv("OS_PASSWORD", "wrong")
    monkeypatch.setenv("OS_CLOUD", "nonexistent")

    assert _collect(settings, clock) == {server: Decimal("1.0")}


def test_application_credential(fake: FakeOpenStack, clock: FixedClock) -> None:
    server = fake.create_server("p1", at=at(6))
    settings = OpenStackSettings(
        enabled=True,
        auth_url=fake.auth_url,
        application_credential_id=fake.application_credential_id,
        application_credential_secret=fake.application_credential_secret,
    )

    assert _collect(settings, clock) == {server: Decimal("1.0")}
    auth = [r for r in fake.requests if r.path.endswith("/auth/tokens")]
    assert b'"application_credential"' in auth[0].body


def _clouds_yaml(tmp_path: Path, fake: FakeOpenStack, region: str | None = "RegionOne") -> Path:
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "clouds:\n"
        "  billing:\n" + (f"    region_name: {region}\n" if region else "") + "    auth:\n"
        f"      auth_url: {fake.auth_url}\n"
        f"      username: {fake.username}\n"
        f"      password: {fake.password}\n"
        f"      project_name: {fake.project_name}\n"
        "      user_domain_name: Default\n"
        "      project_domain_name: Default\n"
    )
    return path


def test_a_clouds_yaml_cloud(
    fake: FakeOpenStack, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fake.create_server("p1", at=at(6))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(_clouds_yaml(tmp_path, fake)))
    monkeypatch.setenv("OS_CLOUD", "other")
    monkeypatch.setenv("OS_PASSWORD", "wrong")

    assert _collect(OpenStackSettings(enabled=True, cloud="billing"), clock) == {server: Decimal("1.0")}


def test_a_region_written_in_the_settings_overrides_the_cloud(
    fake: FakeOpenStack, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.create_server("p1", at=at(6))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(_clouds_yaml(tmp_path, fake, region=None)))
    elsewhere = OpenStackSettings(enabled=True, cloud="billing", region_name="RegionTwo")

    with pytest.raises(VendorError, match="no usable compute endpoint in the Keystone catalog"):
        _collect(elsewhere, clock)


def test_a_region_the_cloud_does_not_list_is_a_config_error(
    fake: FakeOpenStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(_clouds_yaml(tmp_path, fake)))
    with pytest.raises(ConfigError, match=r"openstack\.cloud = 'billing' cannot be loaded"):
        connect(OpenStackSettings(enabled=True, cloud="billing", region_name="RegionTwo"))


def test_an_unknown_cloud_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"openstack\.cloud = 'nope' cannot be loaded"):
        connect(OpenStackSettings(enabled=True, cloud="nope"))


def test_connect_logs_no_secret(settings: OpenStackSettings) -> None:
    with capture_logs() as events:
        connect(settings).close()
    assert events and events[0]["event"] == "openstack.connect"
    assert settings.password is not None
    assert settings.password.get_secret_value() not in repr(events)
