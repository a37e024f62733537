"""Taxes in the services (issue 16): which system computes the tax in each mode, and whose exemption
decision stands. The CLI acceptance cases are in tests/cli/test_taxes.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bridge.bootstrap import App
from bridge.domain.clients import Client
from bridge.domain.effects import CreateInvoice
from bridge.domain.invoicing import credit_line, line_items
from bridge.services.issuing import NewInvoice, issue
from bridge.services.taxes import TaxIdentityChange
from bridge.store import invoices as invoice_store
from bridge.store.outbox import list_rows
from tests.fakes.vies import FakeVies

ISSUED = datetime(2022, 11, 1, 9, tzinfo=UTC)
FRENCH_VAT_ID = "FR40303265045"
RULES = {"DE": {"name": "VAT", "rate": "19"}, "FR": {"name": "TVA", "rate": "20"}}


@pytest.fixture
def vies() -> Iterator[FakeVies]:
    with FakeVies() as fake:
        fake.register(FRENCH_VAT_ID)
        yield fake


def taxed_app(make_app: Callable[..., App], vies: FakeVies, **sections: Any) -> App:
    return make_app(
        taxes={"enabled": True, "home_country": "DE", "auto_eu_exemption": True, "rules": RULES},
        vies={"url": vies.url, "attempts": 1, "retry_wait_max_seconds": 0},
        **sections,
    )


def usage_invoice(client: Client, reference: str, kind: str = "usage") -> NewInvoice:
    line = credit_line(reference, Decimal("100.00"), ISSUED)
    return NewInvoice(
        client=client,
        reference=reference,
        kind=kind,
        period=None,
        issuer="whmcs",
        issued_at=ISSUED,
        lines=(line,),
        total=Decimal("100.00"),
        items=line_items([line]),
        notes=f"{reference}: test",
    )


def pushed_taxed_flags(app: App, invoice: NewInvoice) -> list[bool]:
    config = app.configurations.of(invoice.client.configuration)
    with app.uow.writing() as tx:
        issue(tx, invoice, config, app.zone, now=ISSUED)
    with app.uow.reading() as tx:
        rows = [row.effect() for row in list_rows(tx)]
        stored = invoice_store.invoice_by_any_number(tx, invoice.reference)
    (effect,) = [
        effect
        for effect in rows
        if isinstance(effect, CreateInvoice) and effect.invoice_reference == invoice.reference
    ]
    assert stored is not None and stored.total == Decimal("100.00"), "WHMCS adds the tax, not the bridge"
    return [item.taxed for item in effect.items]


def test_in_whmcs_mode_each_item_is_taxed_as_the_client_and_the_rules_say(
    make_app: Callable[..., App], vies: FakeVies
) -> None:
    app = taxed_app(make_app, vies, billing={"generate_invoices": False})
    german = app.clients.add(email="de@example.com", name="De", country="DE")
    french = app.taxes.validate(
        app.clients.add(email="fr@example.com", name="Fr", country="FR", vat_id=FRENCH_VAT_ID)
    )
    american = app.clients.add(email="us@example.com", name="Us", country="US")
    assert pushed_taxed_flags(app, usage_invoice(german, "BB-1-a")) == [True]
    assert pushed_taxed_flags(app, usage_invoice(french, "BB-2-a")) == [False], "exempt: reverse charge"
    assert pushed_taxed_flags(app, usage_invoice(american, "BB-3-a")) == [False], "no rule for US"
    assert pushed_taxed_flags(app, usage_invoice(german, "BB-1-c", kind="auto")) == [False], (
        "credit auto-invoices carry tax only with tax_on_add_credit_invoices"
    )


def test_with_taxes_off_every_item_goes_to_whmcs_untaxed(make_app: Callable[..., App]) -> None:
    app = make_app(billing={"generate_invoices": False})
    german = app.clients.add(email="de@example.com", name="De", country="DE")
    assert pushed_taxed_flags(app, usage_invoice(german, "BB-1-a")) == [False]


def test_a_staff_decision_stands_against_the_vies_flow(make_app: Callable[..., App], vies: FakeVies) -> None:
    app = taxed_app(make_app, vies)
    french = app.clients.add(email="fr@example.com", name="Fr", country="FR")
    app.taxes.change(
        str(french.id), TaxIdentityChange(exempt=False, reason="no reverse charge: consumer", by="bo")
    )
    updated = app.taxes.change(str(french.id), TaxIdentityChange(vat_id=FRENCH_VAT_ID))
    assert updated.vat_id == FRENCH_VAT_ID
    assert updated.exemption is not None and not updated.exemption.exempt and updated.exemption.by == "bo"
    assert app.taxes.revalidate().changed == []
