"""The credit ledger (every movement a row with a unique reference) and each client's credit state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from bridge.store.tables import (
    auto_invoicing_changes,
    client_credit_states,
    client_notifications,
    ledger_entries,
)


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    client_id: int
    kind: str
    amount: Decimal
    currency: str
    reference: str
    description: str
    occurred_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class CreditStateRow:
    client_id: int
    settled_until: datetime | None = None
    under_limit_since: datetime | None = None
    suspended_at: datetime | None = None
    shelved: bool = False
    terminated_at: datetime | None = None
    notifications_sent: str = ""
    auto_invoicing: str | None = None
    auto_invoice_amount: Decimal | None = None
    updated_at: datetime | None = None

    @property
    def thresholds_sent(self) -> frozenset[int]:
        return frozenset(int(part) for part in self.notifications_sent.split(",") if part)


def add_entry(
    connection: Connection,
    *,
    client_id: int,
    kind: str,
    amount: Decimal,
    currency: str,
    reference: str,
    description: str,
    occurred_at: datetime,
    now: datetime,
) -> bool:
    """Record a movement once: False when the reference is already in the ledger (a retry, a re-run)."""
    if (
        connection.scalar(select(ledger_entries.c.id).where(ledger_entries.c.reference == reference))
        is not None
    ):
        return False
    try:
        with connection.begin_nested():
            connection.execute(
                insert(ledger_entries).values(
                    client_id=client_id,
                    kind=kind,
                    amount=amount,
                    currency=currency,
                    reference=reference,
                    description=description,
                    occurred_at=occurred_at,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def balances(connection: Connection, client_ids: Iterable[int]) -> dict[int, Decimal]:
    """Each client's credit: the sum of its ledger rows (summed here, exactly, on every database)."""
    ids = list(client_ids)
    totals = {client_id: Decimal(0) for client_id in ids}
    if ids:
        query = select(ledger_entries.c.client_id, ledger_entries.c.amount).where(
            ledger_entries.c.client_id.in_(ids)
        )
        for row in connection.execute(query):
            totals[row.client_id] += row.amount
    return totals


def entries(connection: Connection, client_id: int, limit: int = 50) -> list[LedgerEntry]:
    query = (
        select(ledger_entries)
        .where(ledger_entries.c.client_id == client_id)
        .order_by(ledger_entries.c.occurred_at.desc(), ledger_entries.c.id.desc())
        .limit(limit)
    )
    return [LedgerEntry(**row._mapping) for row in connection.execute(query)]


def states(connection: Connection, client_ids: Iterable[int]) -> dict[int, CreditStateRow]:
    ids = list(client_ids)
    found = {client_id: CreditStateRow(client_id) for client_id in ids}
    if ids:
        for row in connection.execute(
            select(client_credit_states).where(client_credit_states.c.client_id.in_(ids))
        ):
            found[row.client_id] = CreditStateRow(**row._mapping)
    return found


def save_state(
    connection: Connection, client_id: int, now: datetime, *, exists: bool | None = None, **values: Any
) -> None:
    """Insert or update the client's credit state; ``exists`` saves the lookup when the caller knows."""
    values = {**values, "updated_at": now}
    if exists is None:
        exists = (
            connection.scalar(
                select(client_credit_states.c.client_id).where(client_credit_states.c.client_id == client_id)
            )
            is not None
        )
    if not exists:
        defaults: dict[str, Any] = {"shelved": False, "notifications_sent": ""}
        connection.execute(insert(client_credit_states).values(client_id=client_id, **{**defaults, **values}))
    else:
        connection.execute(
            update(client_credit_states).where(client_credit_states.c.client_id == client_id).values(**values)
        )


def record_notification(
    connection: Connection,
    *,
    client_id: int,
    reference: str,
    kind: str,
    subject: str,
    body: str,
    channel: str,
    now: datetime,
) -> bool:
    """Remember a notification once (by reference); False when it was already sent."""
    row = NotificationRow(client_id, reference, kind, subject, body, channel)
    return bool(record_notifications(connection, [row], now=now))


@dataclass(frozen=True)
class NotificationRow:
    """What a client is told, once per ``reference``, and by which channel (``whmcs`` or ``mail``)."""

    client_id: int
    reference: str
    kind: str
    subject: str
    body: str
    channel: str


_INSERT_NOTIFICATIONS = insert(client_notifications)


def record_notifications(
    connection: Connection, rows: Sequence[NotificationRow], *, now: datetime
) -> set[str]:
    """Remember many notifications at once (a chunk's invoice mails): one lookup, one batched insert.
    Returns the references recorded now; one recorded before (or twice in ``rows``) is not again."""
    if not rows:
        return set()
    references = [row.reference for row in rows]
    sent = set(
        connection.scalars(
            select(client_notifications.c.reference).where(client_notifications.c.reference.in_(references))
        )
    )
    new: dict[str, NotificationRow] = {}
    for row in rows:
        if row.reference not in sent:
            new.setdefault(row.reference, row)
    if new:
        connection.execute(
            _INSERT_NOTIFICATIONS,
            [
                {
                    "client_id": row.client_id,
                    "reference": row.reference,
                    "kind": row.kind,
                    "subject": row.subject,
                    "body": row.body,
                    "channel": row.channel,
                    "created_at": now,
                }
                for row in new.values()
            ],
        )
    return set(new)


@dataclass(frozen=True)
class AutoInvoicingChange:
    """One change of a client's auto-invoicing choice: who made it, when, from what to what."""

    client_id: int
    old_choice: str | None
    new_choice: str
    changed_by: str
    changed_at: datetime


def set_auto_invoicing(
    connection: Connection,
    client_id: int,
    *,
    mode: str,
    amount: Decimal | None,
    change: AutoInvoicingChange,
) -> None:
    """Keep the client's choice (``mode`` off/estimated/fixed, ``amount`` for fixed) and the ledger row of
    ``change``, in the caller's transaction."""
    exists = states(connection, [client_id])[client_id].updated_at is not None
    save_state(
        connection,
        client_id,
        change.changed_at,
        exists=exists,
        auto_invoicing=mode,
        auto_invoice_amount=amount,
    )
    connection.execute(
        insert(auto_invoicing_changes).values(
            client_id=client_id,
            old_choice=change.old_choice,
            new_choice=change.new_choice,
            changed_by=change.changed_by,
            changed_at=change.changed_at,
        )
    )


def auto_invoicing_history(
    connection: Connection, client_id: int, limit: int = 20
) -> list[AutoInvoicingChange]:
    """The client's latest auto-invoicing changes, newest first."""
    query = (
        select(auto_invoicing_changes)
        .where(auto_invoicing_changes.c.client_id == client_id)
        .order_by(auto_invoicing_changes.c.changed_at.desc(), auto_invoicing_changes.c.id.desc())
        .limit(limit)
    )
    return [
        AutoInvoicingChange(row.client_id, row.old_choice, row.new_choice, row.changed_by, row.changed_at)
        for row in connection.execute(query)
    ]
