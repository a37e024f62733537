"""The ``[whmcs]`` settings section: where WHMCS is, how to authenticate, and how invoices are issued.

``secret`` and ``access_key`` may be given as ``secret_file = "/path"`` or through
``BRIDGE_WHMCS_SECRET`` / ``BRIDGE_WHMCS_ACCESS_KEY`` (see :mod:`bridge.settings_base`). The identifier is
not a secret (it names the API credential) and is a plain string.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from bridge.settings_base import Section, is_loopback_host

_API_SUFFIX = "/includes/api.php"


class WhmcsSettings(Section):
    """How the bridge reaches WHMCS. Everything but ``enabled`` may stay unset while WHMCS is off."""

    # A model-level error would otherwise echo the whole input, the plain secret included.
    model_config = ConfigDict(hide_input_in_errors=True)
    section: ClassVar[str] = "whmcs"

    enabled: bool = False
    url: str | None = None
    identifier: str | None = None
    secret: SecretStr | None = None
    access_key: SecretStr | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None
    allow_insecure_url: bool = False
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    in_doubt_settle_seconds: float = Field(default=900.0, gt=0, le=86_400)
    send_invoice: bool = False
    invoice_status: Literal["Unpaid", "Draft"] = "Unpaid"
    payment_method: str | None = None
    agreement_gateways: list[str] = Field(default_factory=list)
    default_country: str = "US"
    currency_ids: dict[str, int] = Field(default_factory=dict)
    push_concurrency: int = Field(default=4, ge=1, le=32)
    push_attempts: int = Field(default=3, ge=1, le=10)
    retry_wait_max_seconds: float = Field(default=8.0, ge=0, le=300)
    alert_after_attempts: int = Field(default=5, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        """The base URL without a trailing ``/`` (or a pasted ``/includes/api.php``)."""
        if value is None:
            return None
        url = value.strip().rstrip("/")
        if url.endswith(_API_SUFFIX):
            url = url[: -len(_API_SUFFIX)]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"whmcs.url {value!r} is not an http(s) URL; set it to the address WHMCS is served at, "
                'e.g. url = "https://billing.example.com"'
            )
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(
                "whmcs.url must not carry credentials, a query or a fragment; put the credential in "
                "whmcs.identifier and whmcs.secret"
            )
        return url

    @field_validator("identifier", "payment_method", "ca_bundle")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("default_country")
    @classmethod
    def _iso_country(cls, value: str) -> str:
        code = value.strip().upper()
        if len(code) != 2 or not code.isalpha():
            raise ValueError(f'{value!r} is not an ISO 3166-1 alpha-2 code; use e.g. "US" or "DE"')
        return code

    @field_validator("currency_ids")
    @classmethod
    def _currency_codes(cls, value: dict[str, int]) -> dict[str, int]:
        for code, currency_id in value.items():
            if len(code) != 3 or not code.isalpha() or not code.isupper() or currency_id < 1:
                raise ValueError(
                    f"{code} = {currency_id}: use an ISO 4217 code and WHMCS's currency id, e.g. EUR = 2"
                )
        return value

    @field_validator("agreement_gateways")
    @classmethod
    def _clean_gateways(cls, value: list[str]) -> list[str]:
        return [gateway.strip() for gateway in value if gateway.strip()]

    @model_validator(mode="after")
    def _required_when_enabled(self) -> WhmcsSettings:
        if self.url and _plain_http_to_another_host(self.url) and not self.allow_insecure_url:
            raise ValueError(
                f"whmcs.url {self.url!r} is plain http to another host, so the API secret would cross "
                "the network in clear text; use https://, or set whmcs.allow_insecure_url = true for a lab"
            )
        if self.ca_bundle is not None and not self.verify_tls:
            raise ValueError("whmcs.ca_bundle is set but whmcs.verify_tls is false; remove one of them")
        if self.in_doubt_settle_seconds <= self.read_timeout_seconds:
            raise ValueError(
                f"whmcs.in_doubt_settle_seconds ({self.in_doubt_settle_seconds:g}) must be longer than "
                f"whmcs.read_timeout_seconds ({self.read_timeout_seconds:g}): a call whose answer was lost "
                "is looked up only once WHMCS can no longer be applying it; raise it (default 900) or "
                "lower the read timeout"
            )
        if not self.enabled:
            return self
        if self.url is None:
            raise ValueError(
                'whmcs.url is required when whmcs.enabled = true; set url = "https://billing.example.com" '
                "(the address WHMCS is served at, without /includes/api.php)"
            )
        if self.identifier is None:
            raise ValueError(
                "whmcs.identifier is required when whmcs.enabled = true; set it to the identifier of an API "
                "credential (WHMCS: System Settings > API Credentials)"
            )
        if self.secret is None or not self.secret.get_secret_value().strip():
            raise ValueError(
                'whmcs.secret is required when whmcs.enabled = true; set secret, secret_file = "/path", '
                "or the environment variable BRIDGE_WHMCS_SECRET"
            )
        return self

    @property
    def verify(self) -> bool | str:
        """What ``requests`` takes as ``verify``: the CA bundle path if one is set, else the flag."""
        return self.ca_bundle if self.ca_bundle is not None else self.verify_tls


def _plain_http_to_another_host(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback_host(parts.hostname or "")
