"""Reading and writing clients' terms (plan assignments, discounts), billing periods and subscriptions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from bridge.domain.periods import PeriodSpan, period_of
from bridge.domain.terms import ClientTerms, Discount, PlanAssignment
from bridge.store.invoices import StoredInvoice, lines_of_invoices
from bridge.store.tables import (
    billing_periods,
    client_terms,
    clients,
    invoice_lines,
    invoices,
    outbox,
    subscription_charges,
    subscriptions,
)

PLAN = "plan"
DISCOUNT = "discount"

# -- terms ----------------------------------------------------------------------------------------------


def terms_of_clients(connection: Connection, client_ids: Iterable[int]) -> dict[int, ClientTerms]:
    """The terms of each client that has any, in one query (a month-end chunk reads them all at once)."""
    ids = list(client_ids)
    if not ids:
        return {}
    query = select(client_terms).where(client_terms.c.client_id.in_(ids)).order_by(client_terms.c.id)
    assignments: dict[int, list[PlanAssignment]] = {}
    discounts: dict[int, list[Discount]] = {}
    for row in connection.execute(query):
        if row.kind == PLAN:
            assignments.setdefault(row.client_id, []).append(PlanAssignment(row.plan, row.starts_at, row.id))
        else:
            discounts.setdefault(row.client_id, []).append(
                Discount(
                    row.discount_type,
                    row.value,
                    row.starts_at,
                    row.ends_at,
                    row.source,
                    row.resource_kind,
                    row.id,
                )
            )
    return {
        client_id: ClientTerms(tuple(assignments.get(client_id, ())), tuple(discounts.get(client_id, ())))
        for client_id in sorted(set(assignments) | set(discounts))
    }


def terms_of_client(connection: Connection, client_id: int) -> ClientTerms:
    return terms_of_clients(connection, [client_id]).get(client_id, ClientTerms())


def insert_assignment(
    connection: Connection, client_id: int, assignment: PlanAssignment, now: datetime
) -> None:
    connection.execute(
        insert(client_terms).values(
            client_id=client_id,
            kind=PLAN,
            plan=assignment.plan,
            starts_at=assignment.starts_at,
            created_at=now,
        )
    )


def insert_discount(connection: Connection, client_id: int, discount: Discount, now: datetime) -> None:
    connection.execute(
        insert(client_terms).values(
            client_id=client_id,
            kind=DISCOUNT,
            discount_type=discount.kind,
            value=discount.value,
            source=discount.source,
            resource_kind=discount.resource_kind,
            starts_at=discount.starts_at,
            ends_at=discount.ends_at,
            created_at=now,
        )
    )


def lock_client(connection: Connection, client_id: int) -> None:
    """Serialise changes of one client's terms and invoices (a row lock on MariaDB and PostgreSQL; SQLite
    writes one transaction at a time anyway)."""
    connection.execute(select(clients.c.id).where(clients.c.id == client_id).with_for_update()).first()


# -- invoices being recalculated ------------------------------------------------------------------------


def standing_usage_invoice(
    connection: Connection, client_id: int, period_start: datetime
) -> StoredInvoice | None:
    """The client's usage invoice of the period starting at ``period_start`` that stands (not cancelled),
    with its lines; the newest if a replacement exists."""
    row = connection.execute(
        select(invoices)
        .where(
            invoices.c.client_id == client_id,
            invoices.c.kind == "usage",
            invoices.c.period_start == period_start,
            invoices.c.status != "cancelled",
        )
        .order_by(invoices.c.id.desc())
    ).first()
    if row is None:
        return None
    invoice = StoredInvoice(**row._mapping)
    return replace(invoice, lines=tuple(lines_of_invoices(connection, [invoice.id])))


def late_lines_elsewhere(
    connection: Connection, client_id: int, period_start: datetime, invoice_id: int
) -> list[str]:
    """References of the standing invoices (other than ``invoice_id``) that bill late usage of the period."""
    query = (
        select(invoices.c.reference)
        .join(invoice_lines, invoice_lines.c.invoice_id == invoices.c.id)
        .where(
            invoices.c.client_id == client_id,
            invoices.c.id != invoice_id,
            invoices.c.status != "cancelled",
            invoice_lines.c.late.is_(True),
            invoice_lines.c.period_start == period_start,
        )
        .distinct()
    )
    return sorted(str(reference) for reference in connection.scalars(query))


def references_starting(connection: Connection, prefix: str) -> list[str]:
    query = select(invoices.c.reference).where(invoices.c.reference.like(f"{prefix}%"))
    return [str(reference) for reference in connection.scalars(query)]


def withdraw_unsent_push(connection: Connection, reference: str, now: datetime) -> bool:
    """Cancel the outbox row ``reference`` if it is still pending, that is provably never sent; True if it
    was. The push claims a row only in the state it read, so a row withdrawn here is never sent."""
    changed = connection.execute(
        update(outbox)
        .where(outbox.c.reference == reference, outbox.c.state == "pending")
        .values(state="cancelled", updated_at=now)
    ).rowcount
    return bool(changed == 1)


# -- billing periods ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPeriod:
    id: int
    client_id: int
    span: PeriodSpan
    periods: int | None
    charged: int
    ended_on: date | None
    created_at: datetime

    @property
    def frequency(self) -> str:
        return self.span.period.frequency


@dataclass(frozen=True)
class StoredSubscription:
    id: int
    client_id: int
    period_id: int
    name: str
    frequency: str
    amount: Decimal
    prorate: bool
    started_at: datetime
    billed_until: date | None


@dataclass(frozen=True)
class StoredCharge:
    id: int
    subscription_id: int
    description: str
    amount: Decimal
    prorate: bool
    added_on: date
    span_start: date
    bill_until: date
    invoice_id: int | None


def insert_period(
    connection: Connection, client_id: int, span: PeriodSpan, periods: int | None, now: datetime
) -> int:
    result = connection.execute(
        insert(billing_periods).values(
            client_id=client_id,
            frequency=span.period.frequency,
            invoice_day=span.period.invoice_day,
            invoice_month=span.period.invoice_month,
            periods=periods,
            charged=0,
            started_on=span.started_on,
            next_recharge_on=span.next_recharge_on,
            created_at=now,
        )
    )
    (period_id,) = result.inserted_primary_key or (None,)
    assert isinstance(period_id, int)
    return period_id


def period(connection: Connection, period_id: int, *, for_update: bool = False) -> StoredPeriod | None:
    query = select(billing_periods).where(billing_periods.c.id == period_id)
    row = connection.execute(query.with_for_update() if for_update else query).first()
    return None if row is None else _period(row)


def periods_of_client(connection: Connection, client_id: int) -> list[StoredPeriod]:
    query = (
        select(billing_periods).where(billing_periods.c.client_id == client_id).order_by(billing_periods.c.id)
    )
    return [_period(row) for row in connection.execute(query)]


def due_periods(connection: Connection, today: date) -> list[StoredPeriod]:
    """Periods whose next recharge is on or before ``today`` and whose term has not ended."""
    query = (
        select(billing_periods)
        .where(billing_periods.c.next_recharge_on <= today, billing_periods.c.ended_on.is_(None))
        .order_by(billing_periods.c.id)
    )
    return [_period(row) for row in connection.execute(query)]


def save_span(connection: Connection, period_id: int, span: PeriodSpan, **values: Any) -> None:
    connection.execute(
        update(billing_periods)
        .where(billing_periods.c.id == period_id)
        .values(
            invoice_day=span.period.invoice_day,
            invoice_month=span.period.invoice_month,
            started_on=span.started_on,
            next_recharge_on=span.next_recharge_on,
            **values,
        )
    )


def delete_period(connection: Connection, period_id: int) -> None:
    connection.execute(delete(billing_periods).where(billing_periods.c.id == period_id))


def _period(row: Any) -> StoredPeriod:
    schedule = period_of(row.frequency, row.invoice_day, row.invoice_month)
    return StoredPeriod(
        id=row.id,
        client_id=row.client_id,
        span=PeriodSpan(schedule, row.started_on, row.next_recharge_on),
        periods=row.periods,
        charged=row.charged,
        ended_on=row.ended_on,
        created_at=row.created_at,
    )


# -- subscriptions and charges --------------------------------------------------------------------------


def insert_subscription(connection: Connection, values: dict[str, Any]) -> int:
    result = connection.execute(insert(subscriptions).values(**values))
    (subscription_id,) = result.inserted_primary_key or (None,)
    assert isinstance(subscription_id, int)
    return subscription_id


def subscription(connection: Connection, subscription_id: int) -> StoredSubscription | None:
    row = connection.execute(select(subscriptions).where(subscriptions.c.id == subscription_id)).first()
    return None if row is None else _subscription(row)


def subscriptions_of_periods(connection: Connection, period_ids: Iterable[int]) -> list[StoredSubscription]:
    ids = list(period_ids)
    if not ids:
        return []
    query = select(subscriptions).where(subscriptions.c.period_id.in_(ids)).order_by(subscriptions.c.id)
    return [_subscription(row) for row in connection.execute(query)]


def move_subscription(connection: Connection, subscription_id: int, period_id: int) -> None:
    connection.execute(
        update(subscriptions).where(subscriptions.c.id == subscription_id).values(period_id=period_id)
    )


def set_billed_until(connection: Connection, subscription_ids: list[int], until: date) -> None:
    if subscription_ids:
        connection.execute(
            update(subscriptions).where(subscriptions.c.id.in_(subscription_ids)).values(billed_until=until)
        )


def _subscription(row: Any) -> StoredSubscription:
    return StoredSubscription(**{key: value for key, value in row._mapping.items() if key != "created_at"})


def insert_charge(connection: Connection, values: dict[str, Any]) -> int:
    result = connection.execute(insert(subscription_charges).values(**values))
    (charge_id,) = result.inserted_primary_key or (None,)
    assert isinstance(charge_id, int)
    return charge_id


def unbilled_charges(connection: Connection, subscription_ids: Iterable[int]) -> list[StoredCharge]:
    ids = list(subscription_ids)
    if not ids:
        return []
    query = (
        select(subscription_charges)
        .where(subscription_charges.c.subscription_id.in_(ids), subscription_charges.c.invoice_id.is_(None))
        .order_by(subscription_charges.c.id)
    )
    return [
        StoredCharge(**{key: value for key, value in row._mapping.items() if key != "created_at"})
        for row in connection.execute(query)
    ]


def mark_charges_billed(connection: Connection, charge_ids: list[int], invoice_id: int) -> None:
    if charge_ids:
        connection.execute(
            update(subscription_charges)
            .where(subscription_charges.c.id.in_(charge_ids))
            .values(invoice_id=invoice_id)
        )


def count_subscriptions(connection: Connection, period_id: int) -> int:
    return int(connection.scalar(select(func.count()).where(subscriptions.c.period_id == period_id)) or 0)
