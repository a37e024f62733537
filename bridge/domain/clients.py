"""A billing client and the accounts it owns in the clouds and in WHMCS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bridge.domain.tax import ClientTaxIdentity, ExemptionDecision


class LinkKind(StrEnum):
    """Which external system an id belongs to."""

    OPENSTACK_PROJECT = "openstack_project"
    SOLUSVM_USER = "solusvm_user"
    WHMCS_CLIENT = "whmcs_client"


@dataclass(frozen=True)
class ClientLink:
    kind: LinkKind
    external_id: str
    created_at: datetime


@dataclass(frozen=True)
class Client:
    id: int
    email: str
    name: str
    currency: str
    configuration: str
    created_at: datetime
    links: tuple[ClientLink, ...] = ()
    country: str | None = None
    """ISO 3166-1 alpha-2, or None when not given (taxed as a client of the home country)."""
    vat_id: str | None = None
    """Offline-checked, with its VAT prefix (``FR40303265045``), or None."""
    exemption: ExemptionDecision | None = None
    """The tax exemption decision in force (the latest), or None: never decided, so not exempt."""

    def tax_identity(self, home_country: str) -> ClientTaxIdentity:
        """The client as tax sees it; a client without a country is taxed as one of ``home_country``
        (the provider's own VAT applies when the client's place cannot be told)."""
        return ClientTaxIdentity(self.country or home_country, self.vat_id, self.exemption)

    def external_ids(self, kind: LinkKind) -> list[str]:
        return [link.external_id for link in self.links if link.kind == kind]


OWNER_LINK_KIND = {"openstack": LinkKind.OPENSTACK_PROJECT, "solusvm": LinkKind.SOLUSVM_USER}
"""Which client link makes a usage source's owner id billable to a client."""
