"""The ``[vies]`` settings section: where the EU VIES REST API is and how long to wait for it.

``requester_vat_id`` is the provider's own VAT ID: sent with each consultation, it makes VIES return a
consultation number, kept as evidence that the client's VAT ID was checked. It is not a secret.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from bridge.settings_base import Section
from bridge.vies.vatid import InvalidVatId, VatId, parse_vat_id

DEFAULT_URL = "https://ec.europa.eu/taxation_customs/vies/rest-api"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class ViesSettings(Section):
    """How the bridge asks VIES whether a client's VAT ID is valid (used when taxes are enabled)."""

    section: ClassVar[str] = "vies"

    url: str = Field(DEFAULT_URL, description="base URL of the VIES REST API")
    requester_vat_id: str | None = Field(None, description="your own VAT ID, for consultation numbers")
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    attempts: int = Field(default=3, ge=1, le=10, description="tries while VIES is momentarily unavailable")
    retry_wait_max_seconds: float = Field(default=8.0, ge=0, le=300)

    @field_validator("url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f'{value!r} is not an http(s) URL; leave it unset or use e.g. url = "{DEFAULT_URL}"'
            )
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise ValueError(f"{value!r} uses plain http; use https:// (http only for a local test server)")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(f"{value!r} must not carry credentials, a query or a fragment")
        return url

    @field_validator("requester_vat_id")
    @classmethod
    def _valid_vat_id(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return str(parse_vat_id(value, field="vies.requester_vat_id"))
        except InvalidVatId as error:
            raise ValueError(f"{value!r} {error.problem}") from None

    def requester(self) -> VatId | None:
        """The requester VAT ID as VIES takes it, or None when unset."""
        return None if self.requester_vat_id is None else parse_vat_id(self.requester_vat_id)
