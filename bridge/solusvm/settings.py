"""The ``[solusvm]`` settings section: where the SolusVM 2 management node is and how to reach it.

Example::

    [solusvm]
    enabled = true
    url = "https://solus.example.com"
    token_file = "/etc/billing-bridge/solusvm.token"

The API token is made in the SolusVM 2 UI (Account -> API Tokens) by an administrator; it may also come
from ``BRIDGE_SOLUSVM_TOKEN``. Nothing is checked beyond the shape of the values here: whether the node
answers is the client's concern.
"""

from __future__ import annotations

import string
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator, model_validator

from bridge.settings_base import Section, is_loopback_host

DEFAULT_SSO_URL_TEMPLATE = "{url}/auth/by_token?token={token}"
SSO_PLACEHOLDERS = frozenset({"url", "token"})


class SolusVMSettings(Section):
    """How the bridge talks to one SolusVM 2 management node.

    ``url`` is the base of the management node (``https://solus.example.com``), without ``/api/v1``;
    plain ``http`` is accepted only for a loopback host (a local test fake), so a token never crosses
    a network in clear text. ``ca_bundle`` is a PEM file used instead of the system trust store, for a
    node with a private CA; ``verify_tls = false`` turns verification off and is meant for a lab only.

    ``per_page`` is sent as a hint with every list request; the client follows ``meta.last_page``
    whatever page size the node actually uses.

    ``max_attempts`` bounds the tries of one request (1 = no retry) and ``max_retry_wait_seconds`` the
    wait before any one retry: a ``Retry-After`` above it is not waited for, the call fails instead.

    ``sso_url_template`` builds the browser link that logs a customer into the SolusVM 2 control panel
    from a one-time token (``POST users/{id}/tokens {"is_one_time": true}``). **The form of that link
    is unverified**: no public source shows how SolusVM 2 redeems a one-time token in a browser (the
    official WHMCS module only uses such tokens as API bearer tokens). The default
    ``{url}/auth/by_token?token={token}`` is our best guess; check it against your node (log in
    through a link made by ``billing-bridge``) and override it here if it differs. The placeholders
    are ``{url}`` (this section's ``url``) and ``{token}`` (the URL-quoted one-time token).
    """

    section: ClassVar[str] = "solusvm"

    enabled: bool = False
    url: str | None = None
    token: SecretStr | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    per_page: int = 100
    max_attempts: int = 5
    max_retry_wait_seconds: float = 60.0
    sso_url_template: str = DEFAULT_SSO_URL_TEMPLATE

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        return normalise_base_url(value.strip())

    @field_validator("connect_timeout_seconds", "read_timeout_seconds", "max_retry_wait_seconds")
    @classmethod
    def _check_positive(cls, value: float) -> float:
        if not 0 < value <= 600:
            raise ValueError("must be a number of seconds above 0 and at most 600")
        return value

    @field_validator("per_page")
    @classmethod
    def _check_per_page(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise ValueError(
                f"per_page {value} is out of range; use a page size from 1 to 1000 (default 100)"
            )
        return value

    @field_validator("max_attempts")
    @classmethod
    def _check_attempts(cls, value: int) -> int:
        if not 1 <= value <= 20:
            raise ValueError(f"max_attempts {value} is out of range; use 1 (no retry) to 20 (default 5)")
        return value

    @field_validator("sso_url_template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        check_sso_template(value)
        return value

    @model_validator(mode="after")
    def _check_enabled(self) -> SolusVMSettings:
        if not self.enabled:
            return self
        if self.url is None:
            raise ValueError(
                "solusvm.url is required when solusvm.enabled = true; "
                'set it to the management node, e.g. url = "https://solus.example.com"'
            )
        if self.token is None or not self.token.get_secret_value().strip():
            raise ValueError(
                "solusvm.token is required when solusvm.enabled = true; create an API token in SolusVM "
                '(Account -> API Tokens) and set token_file = "/path" or BRIDGE_SOLUSVM_TOKEN'
            )
        return self

    def verify(self) -> bool | str:
        """What requests' ``verify`` takes: the CA bundle path when set, otherwise the on/off switch."""
        if self.ca_bundle:
            return self.ca_bundle
        return self.verify_tls


def normalise_base_url(value: str) -> str:
    """``value`` as a base URL without a trailing slash; raises ValueError naming the fix."""
    parts = urlsplit(value)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(
            f"url {value!r} is not an http(s) URL; use the management node, e.g. https://solus.example.com"
        )
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ValueError(
            f"url {value!r} uses plain http; use https:// so the API token is not sent in clear text"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(
            "url must not carry credentials, a query or a fragment; give only scheme, host and port"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        raise ValueError(
            f"url {value!r} ends with /api/v1; give the base of the node only, the client adds /api/v1"
        )
    return f"{parts.scheme}://{parts.netloc}{path}"


def check_sso_template(template: str) -> None:
    """Raise ValueError unless ``template`` has ``{token}`` and no placeholder other than ``{url}``."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(
            f"sso_url_template is not a valid template ({error}); use e.g. {DEFAULT_SSO_URL_TEMPLATE}"
        ) from None
    unknown = fields - SSO_PLACEHOLDERS
    if unknown:
        raise ValueError(
            f"sso_url_template uses unknown placeholder(s) {sorted(unknown)}; "
            "only {url} and {token} exist"
        )
    if "token" not in fields:
        raise ValueError("sso_url_template must contain {token}, or the link cannot log anyone in")
