"""Storing an invoice, whatever made it (bridge/services/issuing.py): numbers, due date, the WHMCS push."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from bridge.bootstrap import App
from bridge.domain.clients import Client
from bridge.domain.effects import CreateInvoice
from bridge.domain.invoicing import credit_line, line_items
from bridge.services.issuing import Issued, NewInvoice, issue
from bridge.store import invoices as invoice_store
from bridge.store.outbox import list_rows
from tests.support.invoicing import client_with

ISSUED = datetime(2022, 11, 1, 9, tzinfo=UTC)


def _invoice(client: Client, reference: str, kind: str, issuer: str, at: datetime = ISSUED) -> NewInvoice:
    line = credit_line(reference, Decimal("12.50"), at)
    return NewInvoice(
        client=client,
        reference=reference,
        kind=kind,
        period=None,
        issuer=issuer,
        issued_at=at,
        lines=(line,),
        total=Decimal("12.50"),
        items=line_items([line]),
        notes=f"{reference}: test",
    )


def _issue(app: App, invoice: NewInvoice) -> Issued:
    config = app.configurations.of(invoice.client.configuration)
    with app.uow.writing() as tx:
        return issue(tx, invoice, config, app.zone, now=invoice.issued_at)


def test_every_kind_of_invoice_the_bridge_issues_takes_the_next_number_of_one_fiscal_sequence(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(configurations={"default": {"fiscal_number_format": "F{{ year }}-{{ number }}"}})
    client = client_with(app, "ops@acme.com")
    numbers = [
        _issue(app, _invoice(client, f"BB-{client.id}-{kind}", kind, "bridge")).number
        for kind in ("usage", "auto", "recurring")
    ]
    assert numbers == ["F2022-1", "F2022-2", "F2022-3"]
    with app.uow.reading() as tx:
        stored = invoice_store.invoice_by_any_number(tx, "F2022-2")
        assert list_rows(tx) == []  # the bridge numbers it: nothing goes to WHMCS
    assert stored is not None
    assert (stored.status, stored.series, stored.kind) == ("unpaid", "default", "auto")
    assert stored.due_at == ISSUED + timedelta(days=14)


def test_proforma_numbers_come_from_their_own_sequence(make_app: Callable[..., Any]) -> None:
    app = make_app(configurations={"default": {"invoicing_option": "proforma_then_fiscal"}})
    client = client_with(app, "ops@acme.com")
    first = _issue(app, _invoice(client, "BB-1-a", "usage", "bridge"))
    second = _issue(app, _invoice(client, "BB-1-b", "auto", "bridge"))
    assert [(first.number, first.proforma_number), (second.number, second.proforma_number)] == [
        (None, "P1"),
        (None, "P2"),
    ]
    assert second.shown_number == "P2"


def test_an_invoice_whmcs_issues_is_pushed_dated_and_due_on_the_local_days_the_bridge_stores(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(billing={"timezone": "Europe/Berlin"})
    client = client_with(app, "ops@acme.com")
    # 00:30 in Berlin on 18 October; 14 days later the clocks have gone back, so it is due at 23:30 on
    # 31 October there: WHMCS gets the day the bridge's own due date falls on, not 18 October + 14.
    at = datetime(2022, 10, 17, 22, 30, tzinfo=UTC)
    issued = _issue(app, _invoice(client, "BB-1-auto", "auto", "whmcs", at))
    assert (issued.number, issued.proforma_number, issued.shown_number) == (None, None, None)
    with app.uow.reading() as tx:
        (row,) = list_rows(tx)
        stored = invoice_store.invoice_by_any_number(tx, "BB-1-auto")
    effect = row.effect()
    assert isinstance(effect, CreateInvoice)
    assert (effect.invoice_reference, effect.issued_on, effect.due_on) == (
        "BB-1-auto",
        date(2022, 10, 18),
        date(2022, 10, 31),
    )
    assert stored is not None and stored.due_at.astimezone(app.zone).date() == effect.due_on
    assert [(item.description, item.amount) for item in effect.items] == [
        ("Credit for the next 30 days of usage (BB-1-auto)", Decimal("12.50"))
    ]
