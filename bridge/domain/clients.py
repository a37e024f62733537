"""A billing client and the accounts it owns in the clouds and in WHMCS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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

    def external_ids(self, kind: LinkKind) -> list[str]:
        return [link.external_id for link in self.links if link.kind == kind]


OWNER_LINK_KIND = {"openstack": LinkKind.OPENSTACK_PROJECT, "solusvm": LinkKind.SOLUSVM_USER}
"""Which client link makes a usage source's owner id billable to a client."""
