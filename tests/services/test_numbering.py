"""Fiscal numbers that identify one invoice (issue 15 point 4): every payment path makes a proforma fiscal,
a number several series share is refused rather than guessed, and the next number only goes up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bridge.bootstrap import App
from bridge.domain.clients import Client
from bridge.domain.invoicing import credit_line, line_items
from bridge.errors import InputError
from bridge.services.issuing import Issued, NewInvoice, issue
from bridge.store import invoices as invoice_store
from tests.support.invoicing import client_with

ISSUED = datetime(2022, 11, 1, 9, tzinfo=UTC)
PAID = datetime(2022, 11, 20, 9, tzinfo=UTC)


def _issue(app: App, client: Client, reference: str) -> Issued:
    line = credit_line(reference, Decimal("12.50"), ISSUED)
    invoice = NewInvoice(
        client=client,
        reference=reference,
        kind="auto",
        period=None,
        issuer="bridge",
        issued_at=ISSUED,
        lines=(line,),
        total=Decimal("12.50"),
        items=line_items([line]),
        notes=f"{reference}: test",
    )
    with app.uow.writing() as tx:
        return issue(tx, invoice, app.configurations.of(client.configuration), app.zone, now=ISSUED)


def _stored(app: App, reference: str) -> invoice_store.StoredInvoice:
    with app.uow.reading() as tx:
        found = invoice_store.invoice_by_any_number(tx, reference)
    assert found is not None
    return found


def test_a_proforma_paid_from_credit_becomes_fiscal_as_when_invoice_pay_pays_it(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(configurations={"default": {"invoicing_option": "proforma_then_fiscal"}})
    client = client_with(app, "ops@acme.com")
    _issue(app, client, "BB-1-a")
    _issue(app, client, "BB-1-b")

    with app.uow.writing() as tx:
        app.invoicing.pay_from_credit(tx, _stored(app, "BB-1-b"), PAID)
    paid_by_hand = app.invoicing.mark_paid("P1", paid_at=PAID)

    by_credit = _stored(app, "BB-1-b")
    assert (by_credit.status, by_credit.proforma_number, by_credit.number) == ("paid", "P2", "1")
    assert by_credit.issued_at == PAID, "the fiscal invoice is dated the payment"
    assert (paid_by_hand.proforma_number, paid_by_hand.number) == ("P1", "2")


def _numbered_before_the_prefix(make_app: Callable[..., Any]) -> App:
    """A store where series default issued 1 and 2 before the operator gave it a prefix, and resellers
    now numbers 1, 2, … unprefixed: the settings cannot collide, the history they inherit can."""
    before = make_app(configurations={"default": {}})
    first = client_with(before, "ops@acme.com")
    _issue(before, first, "BB-1-a")
    _issue(before, first, "BB-1-b")
    return make_app(
        configurations={
            "default": {"fiscal_number_format": "D-{{ number }}"},
            "resellers": {"fiscal_number_format": "{{ number }}"},
        }
    )


def test_a_number_two_series_share_is_refused_listing_both_and_pays_nothing(
    make_app: Callable[..., Any],
) -> None:
    app = _numbered_before_the_prefix(make_app)
    second = app.clients.set_configuration(str(client_with(app, "it@globex.com").id), "resellers")
    _issue(app, second, "BB-2-a")

    with pytest.raises(InputError) as refused:
        app.invoicing.mark_paid("1", paid_at=PAID)

    assert str(refused.value) == (
        "invoice '1' is ambiguous: BB-1-a (series default), BB-2-a (series resellers); "
        "give the invoice's reference"
    )
    assert {_stored(app, ref).status for ref in ("BB-1-a", "BB-2-a")} == {"unpaid"}
    assert app.invoicing.mark_paid("BB-2-a", paid_at=PAID).status == "paid"


def test_the_next_fiscal_number_is_raised_after_invoices_exist_never_lowered_nor_reused(
    make_app: Callable[..., Any],
) -> None:
    app = make_app(configurations={"default": {}, "resellers": {"fiscal_number_format": "R{{ number }}"}})
    client = client_with(app, "ops@acme.com")
    assert [_issue(app, client, f"BB-1-{n}").number for n in "ab"] == ["1", "2"]

    with pytest.raises(InputError, match=r"--next 2 is below 3, .* give --next 3 or more"):
        app.invoicing.set_next_fiscal_number("default", 2)
    assert app.invoicing.set_next_fiscal_number("default", 1000) == (3, "1000")
    assert _issue(app, client, "BB-1-c").number == "1000"
    with pytest.raises(InputError, match="is below 1001"):
        app.invoicing.set_next_fiscal_number("default", 1000)


def test_the_next_number_is_refused_when_another_series_has_it(make_app: Callable[..., Any]) -> None:
    app = _numbered_before_the_prefix(make_app)

    with pytest.raises(InputError, match="invoice number 2 is already used"):
        app.invoicing.set_next_fiscal_number("resellers", 2)
    with pytest.raises(InputError, match="CONFIG 'nope' is not a configuration; use one of: default, re"):
        app.invoicing.set_next_fiscal_number("nope", 5)
    assert app.invoicing.set_next_fiscal_number("resellers", 3) == (1, "3")
