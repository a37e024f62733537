"""An invoice document carries its tax as the tax domain computed it: money as strings, the total taxed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.documents.taxes import with_taxes
from bridge.domain.tax import Charge, InvoiceTaxes, tax_lines
from tests.documents.golden import FRENCH_BUSINESS, GERMAN_CLIENT, RULES, document


def test_a_german_client_gets_one_vat_line_and_the_taxed_total() -> None:
    plain = document()
    taxed = document(identity=GERMAN_CLIENT)
    assert (plain["total"], taxed["total"]) == ("375.50", "446.85")
    assert taxed["taxes"] == {
        "subtotal": "375.50",
        "lines": [{"name": "VAT", "rate": "19", "label": "VAT 19 %", "base": "375.50", "amount": "71.35"}],
        "tax": "71.35",
        "total": "446.85",
        "reverse_charge": None,
    }
    assert {key: value for key, value in taxed.items() if key not in ("taxes", "total")} == {
        key: value for key, value in plain.items() if key != "total"
    }


def test_an_exempt_eu_business_gets_the_reverse_charge_note_and_no_tax() -> None:
    taxes = document(identity=FRENCH_BUSINESS)["taxes"]
    assert (taxes["lines"], taxes["tax"], taxes["total"]) == ([], "0.00", "375.50")
    assert taxes["reverse_charge"].endswith("Customer VAT ID: FR40303265045.")


def test_taxes_of_other_lines_or_another_currency_are_refused() -> None:
    plain = document()
    other_lines = tax_lines(RULES, GERMAN_CLIENT, [Charge(Decimal("375.49"), "EUR")])
    with pytest.raises(ValueError, match=r"subtotal of 375\.49 for lines summing to 375\.50"):
        with_taxes(plain, other_lines)
    dollars = InvoiceTaxes("USD", Decimal("375.50"), (), Decimal("0.00"), Decimal("375.50"), "no rule")
    with pytest.raises(ValueError, match="taxes in USD for an invoice in EUR"):
        with_taxes(plain, dollars)
