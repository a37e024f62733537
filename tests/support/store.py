"""Rows for the store's contract tests: a client, an invoice with its lines, at a fixed moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bridge.domain.invoicing import InvoiceLine
from bridge.store import clients, invoices
from bridge.store.unit_of_work import Tx
from tests.support.clock import START

NOW = START
OCTOBER = (datetime(2022, 10, 1, tzinfo=UTC), datetime(2022, 11, 1, tzinfo=UTC))


def new_client(tx: Tx, email: str = "ops@acme.com", *, currency: str = "EUR") -> int:
    return clients.insert_client(
        tx, email=email, name=email.split("@")[0], currency=currency, configuration="default", created_at=NOW
    )


def invoice_values(client_id: int, reference: str, **overrides: Any) -> dict[str, Any]:
    """An unpaid usage invoice of October 2022 (the columns ``insert_invoice`` takes)."""
    start, end = OCTOBER
    return {
        "client_id": client_id,
        "reference": reference,
        "kind": "usage",
        "period_start": start,
        "period_end": end,
        "currency": "EUR",
        "status": "unpaid",
        "issuer": "bridge",
        "issued_at": end,
        "due_at": end + timedelta(days=14),
        "total": Decimal("31.08"),
        "created_at": NOW,
        **overrides,
    }


def line_values(position: int, **overrides: Any) -> dict[str, Any]:
    """One usage line of October 2022 (the columns of ``invoice_lines`` but the invoice's id)."""
    start, end = OCTOBER
    return {
        "position": position,
        "line_reference": f"openstack:vm-{position}:2022-10",
        "source": "openstack",
        "resource_id": f"vm-{position}",
        "resource_name": f"web-{position}",
        "plan": "m1.small",
        "period_start": start,
        "period_end": end,
        "hours": Decimal("744"),
        "billed_hours": Decimal("666.666667"),
        "unit_price": Decimal("0.0125"),
        "tokens_per_hour": None,
        "tokens": None,
        "amount": Decimal("8.33333334"),
        "capped": True,
        "late": False,
        "description": f"web-{position} m1.small",
        **overrides,
    }


def line(position: int, **overrides: Any) -> InvoiceLine:
    """One usage line of October 2022, as invoicing hands it to the store."""
    return InvoiceLine(**line_values(position, **overrides))


def new_invoice(tx: Tx, client_id: int, reference: str, *, lines: int = 0, **overrides: Any) -> int:
    values = invoice_values(client_id, reference, **overrides)
    return invoices.insert_invoice(tx, values, [line(position) for position in range(1, lines + 1)])
