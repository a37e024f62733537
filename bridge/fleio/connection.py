"""Building the openstacksdk connection from ``[openstack]``: the one place a Connection is made.

Kept apart from the settings model so that reading the settings file does not import the SDK.
"""

from __future__ import annotations

from typing import Any

import openstack
import openstack.connection
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions
from pydantic import SecretStr

from bridge.errors import ConfigError
from bridge.fleio._vendor import scrub
from bridge.fleio.settings import OpenStackSettings
from bridge.logs import get_logger

log = get_logger(__name__)


def connect(settings: OpenStackSettings) -> openstack.connection.Connection:
    """Build (without contacting the cloud) the SDK connection the settings describe.

    ``OS_*`` environment variables are ignored except ``OS_CLIENT_CONFIG_FILE``/``OS_CLIENT_SECURE_FILE``
    when a clouds.yaml cloud is named, so what runs is what the settings file says. Raises
    :class:`~bridge.errors.ConfigError` when the configuration cannot produce a connection.
    """
    if settings.cloud:
        options = _cloud_options(settings)
        overrides = sorted(set(options) - {"cloud", "load_yaml_config", "load_envvars"})
        log.info("openstack.connect", mode="clouds.yaml", cloud=settings.cloud, overrides=overrides)
    else:
        options = _explicit_options(settings)
        log.info(
            "openstack.connect",
            mode="settings",
            auth_type=options["auth_type"],
            region=settings.region_name,
            interface=settings.interface,
        )
    try:
        return openstack.connect(**options)
    except (os_exceptions.ConfigException, ks_exceptions.ClientException) as error:
        raise ConfigError(_config_problem(settings, error)) from None


def _cloud_options(settings: OpenStackSettings) -> dict[str, Any]:
    """clouds.yaml is the source of truth; only keys written in the settings file override it."""
    options: dict[str, Any] = {"cloud": settings.cloud, "load_yaml_config": True, "load_envvars": True}
    transport = _transport_options(settings)
    for key, target in _OVERRIDE_TARGETS.items():
        if key in settings.model_fields_set and target in transport:
            options[target] = transport[target]
    return options


#: The SDK option each overriding settings key sets.
_OVERRIDE_TARGETS = {
    "region_name": "region_name",
    "interface": "interface",
    "verify_tls": "verify",
    "ca_bundle": "cacert",
    "timeout_seconds": "api_timeout",
}


def _transport_options(settings: OpenStackSettings) -> dict[str, Any]:
    """TLS, endpoint interface, region and timeout as the SDK names them."""
    options: dict[str, Any] = {
        "interface": settings.interface,
        "verify": settings.verify_tls,
        "api_timeout": settings.timeout_seconds,
    }
    if settings.ca_bundle:
        options["cacert"] = settings.ca_bundle
    if settings.region_name:
        options["region_name"] = settings.region_name
    return options


def _explicit_options(settings: OpenStackSettings) -> dict[str, Any]:
    """Everything from the settings file; clouds.yaml and ``OS_*`` are not read."""
    options: dict[str, Any] = {"load_yaml_config": False, "load_envvars": False}
    options.update(_transport_options(settings))
    if settings.application_credential_id:
        options["auth_type"] = "v3applicationcredential"
        options["auth"] = {
            "auth_url": settings.auth_url,
            "application_credential_id": settings.application_credential_id,
            "application_credential_secret": _secret(settings.application_credential_secret),
        }
    else:
        options["auth_type"] = "password"
        options["auth"] = {
            "auth_url": settings.auth_url,
            "username": settings.username,
            "password": _secret(settings.password),
            "project_name": settings.project_name,
            "user_domain_name": settings.user_domain_name,
            "project_domain_name": settings.project_domain_name,
        }
    return options


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _config_problem(settings: OpenStackSettings, error: Exception) -> str:
    """A one-line message for a connection that cannot be built (the SDK's text names options, not values)."""
    detail = scrub(str(error))
    if settings.cloud:
        return (
            f"openstack.cloud = {settings.cloud!r} cannot be loaded ({detail}); check the cloud, its region "
            "and auth section in clouds.yaml (OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack, /etc/openstack)"
        )
    return (
        f"openstack settings cannot build a connection ({detail}); check openstack.auth_url and credentials"
    )
