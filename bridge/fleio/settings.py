"""The ``[openstack]`` settings section (bridge/fleio/connection.py builds the SDK connection from it).

Two ways to reach the cloud, never both:

* ``cloud = "billing"``: a cloud named in clouds.yaml (searched in ``OS_CLIENT_CONFIG_FILE``, the current
  directory, ``~/.config/openstack``, ``/etc/openstack``; secrets may sit in ``secure.yaml``);
* ``auth_url`` with either ``username`` + ``password`` + ``project_name`` or ``application_credential_id``
  + ``application_credential_secret``; the secrets may also come from ``password_file`` /
  ``BRIDGE_OPENSTACK_PASSWORD`` (see :mod:`bridge.settings_base`).

Listing the usage of every project needs the ``admin`` role (Nova's default policy).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import ConfigDict, Field, SecretStr, model_validator

from bridge.settings_base import Section

Interface = Literal["public", "internal", "admin"]

#: Window lengths that tile a UTC day, so no window straddles a midnight (and so no month end).
WINDOW_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)


class OpenStackSettings(Section):
    """How the bridge reaches OpenStack and how it slices time into collection windows."""

    # A validation error would otherwise echo the raw input, password included.
    model_config = ConfigDict(hide_input_in_errors=True)

    section = "openstack"

    enabled: bool = False
    cloud: str | None = None
    auth_url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    application_credential_id: str | None = None
    application_credential_secret: SecretStr | None = None
    interface: Interface = "public"
    window: int = Field(default=1, ge=1, description="hours per collection window")
    settle_delay_minutes: int = Field(default=15, ge=0)
    verify_tls: bool = True
    ca_bundle: str | None = None
    timeout_seconds: int = Field(
        default=60, ge=1, le=300, description="limit on each Keystone and Nova request (connect and read)"
    )
    retry_wait_max_seconds: float = Field(
        default=30, ge=0, le=300, description="longest back-off between tries of a usage request; 0 = none"
    )

    @model_validator(mode="after")
    def _check(self) -> OpenStackSettings:
        if self.window not in WINDOW_HOURS:
            raise ValueError(
                f"openstack.window = {self.window} does not divide a day; use one of "
                f"{', '.join(map(str, WINDOW_HOURS))} so windows never straddle a midnight or month end"
            )
        if self.enabled:
            _check_reachable(self)
        return self

    @property
    def settle_delay(self) -> timedelta:
        """How long after a window's end its usage is considered final."""
        return timedelta(minutes=self.settle_delay_minutes)

    @property
    def window_length(self) -> timedelta:
        return timedelta(hours=self.window)


def _check_reachable(s: OpenStackSettings) -> None:
    """Raise a one-line, fix-naming error when an enabled section cannot authenticate."""
    if s.cloud and s.auth_url:
        raise ValueError(
            "openstack.cloud and openstack.auth_url are both set; keep cloud (a clouds.yaml name) "
            "or auth_url with its credentials, not both"
        )
    if s.cloud:
        return
    if not s.auth_url:
        raise ValueError(
            "openstack.cloud or openstack.auth_url is required when openstack.enabled = true; set cloud to "
            "a clouds.yaml cloud name, or auth_url with username/password or an application credential"
        )
    uses_password = s.username is not None or s.password is not None
    uses_app_cred = s.application_credential_id is not None or s.application_credential_secret is not None
    if uses_password and uses_app_cred:
        raise ValueError(
            "openstack.username/password and openstack.application_credential_* are both set; keep one"
        )
    if uses_app_cred:
        _require(s, ("application_credential_id", "application_credential_secret"))
    else:
        _require(s, ("username", "password", "project_name"))


def _require(s: OpenStackSettings, keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if _blank(getattr(s, key))]
    if missing:
        names = ", ".join(f"openstack.{key}" for key in missing)
        raise ValueError(
            f"{names} missing: openstack.auth_url needs {' + '.join(keys)} "
            f"(secrets may be given as <key>_file or BRIDGE_OPENSTACK_<KEY>)"
        )


def _blank(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is None or (isinstance(value, str) and not value.strip())
