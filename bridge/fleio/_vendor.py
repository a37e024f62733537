"""Turning keystoneauth/openstacksdk failures into one-line operator messages without hosts or secrets.

The libraries put the full URL (scheme, host, port) into their exception text; :class:`~bridge.errors.
VendorError` promises a message without a host, so every text taken from them passes :func:`scrub`.
"""

from __future__ import annotations

import re

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions

SOURCE = "openstack"

_ORIGIN = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s'\"]+")
_FERNET_TOKEN = re.compile(r"\bgAAAA[\w=-]{20,}")
_MAX_DETAIL = 200


def scrub(text: str) -> str:
    """``text`` without URL origins (``https://user:pw@host:port``) or Fernet tokens, on one line."""
    text = _ORIGIN.sub("", text)
    text = _FERNET_TOKEN.sub("<redacted>", text)
    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 1] + "…"
    return text


def describe_error(error: ks_exceptions.ClientException | os_exceptions.SDKException) -> str:
    """A keystoneauth or openstacksdk failure as a one-line problem (HTTP answers from the SDK aside)."""
    if isinstance(error, ks_exceptions.ClientException):
        return describe_client_error(error)
    if isinstance(error, os_exceptions.ServiceDisabledException | os_exceptions.ServiceDiscoveryException):
        return "no usable compute endpoint in the Keystone catalog; check openstack.region_name and interface"
    return f"{type(error).__name__}: {scrub(str(error))}"


def describe_client_error(error: ks_exceptions.ClientException) -> str:
    """What went wrong talking to Keystone or an endpoint, and what to check."""
    if isinstance(error, ks_exceptions.Unauthorized):
        return "Keystone refused the credentials (HTTP 401); check the openstack credentials"
    if isinstance(error, ks_exceptions.Forbidden):
        return "Keystone refused the request (HTTP 403); check the user's roles on the project"
    if isinstance(error, ks_exceptions.EndpointNotFound):
        return "no usable compute endpoint in the Keystone catalog; check openstack.region_name and interface"
    if isinstance(error, ks_exceptions.DiscoveryFailure):
        return "API version discovery failed; check openstack.auth_url points at Keystone v3"
    if isinstance(error, ks_exceptions.SSLError):
        return "TLS verification failed; check openstack.ca_bundle (or the endpoint's certificate)"
    if isinstance(error, ks_exceptions.ConnectionError):
        return "could not reach OpenStack (connection failed or timed out); check the network and endpoint"
    if isinstance(error, ks_exceptions.HttpError):
        return f"OpenStack answered HTTP {error.http_status}: {scrub(str(error.message or ''))}"
    return f"{type(error).__name__}: {scrub(str(error))}"
