"""What the bridge keeps about WHMCS's side: client links, pushed invoices' ids and payment, agreements.

The push engine records here what WHMCS answered (in the same transaction that settles the outbox row),
and the payments sync records what it read back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, bindparam, insert, select, update

from bridge.domain.clients import LinkKind
from bridge.store.tables import client_agreements, client_links, clients, invoices

CLOSED_INVOICE_STATUSES = ("paid", "cancelled")
"""Bridge invoice statuses the payments sync no longer reads from WHMCS."""


@dataclass(frozen=True)
class ClientIdentity:
    """What WHMCS needs to know of a bridge client to create or match it."""

    id: int
    email: str
    name: str
    currency: str


@dataclass(frozen=True)
class PushedInvoice:
    """A bridge invoice that WHMCS holds (``remote_id``) and that is not settled in the bridge yet."""

    id: int
    client_id: int
    reference: str
    remote_id: int
    total: Decimal
    status: str


@dataclass(frozen=True)
class Agreement:
    """Whether WHMCS holds a billing agreement for the client, since when, and when that was last read."""

    client_id: int
    has_agreement: bool
    changed_at: datetime
    checked_at: datetime


def client_identity(connection: Connection, client_id: int) -> ClientIdentity | None:
    row = connection.execute(
        select(clients.c.id, clients.c.email, clients.c.name, clients.c.currency).where(
            clients.c.id == client_id
        )
    ).first()
    return ClientIdentity(row.id, row.email, row.name, row.currency) if row is not None else None


def whmcs_client_id(connection: Connection, client_id: int) -> int | None:
    """The WHMCS client this bridge client is linked to, if any."""
    value = connection.scalar(
        select(client_links.c.external_id)
        .where(client_links.c.client_id == client_id, client_links.c.kind == LinkKind.WHMCS_CLIENT.value)
        .order_by(client_links.c.id)
    )
    return int(value) if value is not None else None


def whmcs_link_owner(connection: Connection, whmcs_id: int) -> int | None:
    """The bridge client linked to this WHMCS client, if any."""
    value = connection.scalar(
        select(client_links.c.client_id).where(
            client_links.c.kind == LinkKind.WHMCS_CLIENT.value, client_links.c.external_id == str(whmcs_id)
        )
    )
    return int(value) if value is not None else None


def link_whmcs_client(connection: Connection, client_id: int, whmcs_id: int, now: datetime) -> None:
    connection.execute(
        insert(client_links).values(
            client_id=client_id, kind=LinkKind.WHMCS_CLIENT.value, external_id=str(whmcs_id), created_at=now
        )
    )


def linked_clients(connection: Connection) -> list[tuple[int, int]]:
    """(bridge client id, WHMCS client id) of every linked client."""
    query = (
        select(client_links.c.client_id, client_links.c.external_id)
        .where(client_links.c.kind == LinkKind.WHMCS_CLIENT.value)
        .order_by(client_links.c.client_id)
    )
    return [(int(row.client_id), int(row.external_id)) for row in connection.execute(query)]


def invoice_remote_id(connection: Connection, reference: str) -> int | None:
    value = connection.scalar(select(invoices.c.remote_id).where(invoices.c.reference == reference))
    return int(value) if value else None


def set_invoice_remote_id(connection: Connection, reference: str, remote_id: int) -> None:
    """Record the invoice's WHMCS id (the push does, once per invoice: the statement is built once)."""
    connection.execute(_SET_REMOTE_ID, {"invoice_reference": reference, "whmcs_id": str(remote_id)})


_SET_REMOTE_ID = (
    update(invoices)
    .where(invoices.c.reference == bindparam("invoice_reference"))
    .values(remote_id=bindparam("whmcs_id"))
)


def open_pushed_invoices(connection: Connection) -> list[PushedInvoice]:
    """Invoices WHMCS holds whose payment the bridge has not recorded, oldest first."""
    query = (
        select(invoices)
        .where(invoices.c.remote_id.is_not(None), invoices.c.status.not_in(CLOSED_INVOICE_STATUSES))
        .order_by(invoices.c.id)
    )
    return [
        PushedInvoice(row.id, row.client_id, row.reference, int(row.remote_id), row.total, row.status)
        for row in connection.execute(query)
    ]


def mark_invoice_paid(connection: Connection, invoice_id: int, paid_at: datetime, amount: Decimal) -> bool:
    """Record the payment WHMCS reported; False when the invoice was closed meanwhile (left as it is)."""
    changed = connection.execute(
        update(invoices)
        .where(invoices.c.id == invoice_id, invoices.c.status.not_in(CLOSED_INVOICE_STATUSES))
        .values(status="paid", paid_at=paid_at, paid_amount=amount)
    ).rowcount
    return changed == 1


def agreement(connection: Connection, client_id: int) -> Agreement | None:
    row = connection.execute(
        select(client_agreements).where(client_agreements.c.client_id == client_id)
    ).first()
    if row is None:
        return None
    return Agreement(row.client_id, bool(row.has_agreement), row.changed_at, row.checked_at)


def agreements_of(connection: Connection, client_ids: Iterable[int]) -> dict[int, bool]:
    """Whether each client has an agreement, for the clients whose status was ever read."""
    query = select(client_agreements.c.client_id, client_agreements.c.has_agreement).where(
        client_agreements.c.client_id.in_(list(client_ids))
    )
    return {row.client_id: bool(row.has_agreement) for row in connection.execute(query)}


def record_agreement(connection: Connection, client_id: int, has_agreement: bool, now: datetime) -> bool:
    """Store what WHMCS said now; ``changed_at`` moves only when the flag changes. True if it changed
    (or was read for the first time). Writes before it reads, so SQLite never upgrades a stale snapshot."""
    flipped = connection.execute(
        update(client_agreements)
        .where(client_agreements.c.client_id == client_id, client_agreements.c.has_agreement != has_agreement)
        .values(has_agreement=has_agreement, changed_at=now, checked_at=now)
    ).rowcount
    if flipped:
        return True
    seen = connection.execute(
        update(client_agreements).where(client_agreements.c.client_id == client_id).values(checked_at=now)
    ).rowcount
    if seen:
        return False
    connection.execute(
        insert(client_agreements).values(
            client_id=client_id, has_agreement=has_agreement, changed_at=now, checked_at=now
        )
    )
    return True
