"""Helpers for the push tests: the [whmcs] section pointing at the fake, invoices written the way the
invoicing service writes them (the invoice and its create_invoice row in one transaction), and reads of
what the bridge and the fake hold afterwards."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select

from bridge.domain.effects import CreateInvoice, InvoiceItem
from bridge.store import outbox as outbox_store
from bridge.store.outbox import EffectKind, OutboxRow, OutboxState, enqueue, list_rows
from bridge.store.tables import invoices
from tests.fakes.whmcs import CLIENT_FIELDS, FakeClient, FakeInvoice, FakeWhmcs

ISSUED = datetime(2022, 11, 1, tzinfo=UTC)

READ_TIMEOUT = 2.0
"""WHMCS read timeout of the tests whose fake holds a reply until the client gives up: long enough
that an answered call never times out on a loaded CI machine, short enough to keep those tests quick."""
HOLD = 10.0
"""How long the fake holds a reply it will never give at most: it lets go as soon as the client hangs up,
so this only has to be well past READ_TIMEOUT, never reached."""


def whmcs_section(fake: FakeWhmcs, **overrides: Any) -> dict[str, Any]:
    """``[whmcs]`` for the fake: no waits between tries (tests never sleep), invoices published at once."""
    section: dict[str, Any] = {
        "enabled": True,
        "url": fake.url,
        "identifier": fake.identifier,
        "secret": fake.secret,
        "retry_wait_max_seconds": 0,
        "invoice_status": "Unpaid",
        "read_timeout_seconds": 5.0,
    }
    section.update(overrides)
    return section


def invoice_reference(client_id: int, period: str) -> str:
    return f"BB-{client_id}-{period}"


def issue_invoice(
    engine: Engine,
    client_id: int,
    period: str,
    amounts: list[str],
    *,
    now: datetime = ISSUED,
    status: str = "unpaid",
) -> str:
    """An invoice for ``period`` (``2022-10``) with one line per amount, and its create_invoice row, in one
    transaction: the payload contract of bridge/services/issuing.py. Returns the reference."""
    reference = invoice_reference(client_id, period)
    lines = [Decimal(amount) for amount in amounts]
    with engine.begin() as connection:
        connection.execute(
            insert(invoices).values(
                client_id=client_id,
                reference=reference,
                kind="usage",
                currency="USD",
                status=status,
                issuer="whmcs",
                issued_at=now,
                due_at=now,
                total=sum(lines, Decimal(0)),
                created_at=now,
            )
        )
        items = tuple(InvoiceItem(f"vm-{n} {period}", amount) for n, amount in enumerate(lines, 1))
        outbox_store.enqueue_effect(
            connection,
            client_id=client_id,
            reference=reference,
            effect=CreateInvoice(
                reference, date(2022, 11, 1), date(2022, 11, 15), items, f"{reference}: usage {period}"
            ),
            now=now,
        )
    return reference


def enqueue_effect(
    engine: Engine, client_id: int, kind: EffectKind, reference: str, payload: dict[str, Any]
) -> int:
    with engine.begin() as connection:
        return enqueue(
            connection, client_id=client_id, kind=kind, reference=reference, payload=payload, now=ISSUED
        )


def rows(engine: Engine, *states: OutboxState) -> list[OutboxRow]:
    with engine.connect() as connection:
        return list_rows(connection, states or tuple(OutboxState))


def row(engine: Engine, reference: str) -> OutboxRow:
    (found,) = [item for item in rows(engine) if item.reference == reference]
    return found


def bridge_invoice(engine: Engine, reference: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(select(invoices).where(invoices.c.reference == reference)).one()


def whmcs_invoices_carrying(fake: FakeWhmcs, reference: str) -> list[FakeInvoice]:
    """The fake's invoices whose notes carry the reference (as the bridge writes it: first, then ':')."""
    with fake._lock:
        return [invoice for invoice in fake.invoices.values() if invoice.notes.startswith(f"{reference}:")]


def add_whmcs_client(fake: FakeWhmcs, email: str, *, currency: int = 1) -> int:
    """A client that exists in WHMCS before the bridge looks (created by an admin)."""
    with fake._lock:
        client_id = fake._next_id("client")
        fields = dict.fromkeys(CLIENT_FIELDS, "")
        fields.update(firstname="Existing", lastname="Customer", email=email, status="Active")
        fake.clients[client_id] = FakeClient(client_id, fields, currency, created=date(2020, 1, 1))
        return client_id
