"""An invoice's tax as the invoice document carries it: subtotal, one line per rate, total, and the
reverse-charge note (the values of :class:`~bridge.domain.tax.InvoiceTaxes`, money as strings).

The invoice template prints this block only when the document has it and it has tax lines or a
reverse-charge note; documents without taxes print as before.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bridge.domain.money import round_money
from bridge.domain.tax import InvoiceTaxes
from bridge.store.invoices import StoredInvoice


def with_taxes(document: dict[str, Any], taxes: InvoiceTaxes) -> dict[str, Any]:
    """``document`` (an invoice document of services/invoice_documents.py) with its ``taxes`` block and
    its ``total`` the taxed total.

    Refuses (ValueError) taxes computed for another currency or for other lines: the subtotal must be the
    sum of the document's group subtotals.
    """
    currency = document["currency"]
    if taxes.currency != currency:
        raise ValueError(f"taxes in {taxes.currency} for an invoice in {currency}")
    lines_total = sum((Decimal(group["subtotal"]) for group in document["groups"]), Decimal(0))
    if lines_total != taxes.subtotal:
        raise ValueError(f"taxes on a subtotal of {taxes.subtotal} for lines summing to {lines_total}")
    return {**document, "taxes": taxes_block(taxes), "total": _money(taxes.total, currency)}


def taxes_block(taxes: InvoiceTaxes) -> dict[str, Any]:
    """The ``taxes`` block of an invoice document."""
    currency = taxes.currency
    return {
        "subtotal": _money(taxes.subtotal, currency),
        "lines": [
            {
                "name": line.name,
                "rate": format(line.rate.normalize(), "f"),
                "label": line.label,
                "base": _money(line.base, currency),
                "amount": _money(line.amount, currency),
            }
            for line in taxes.lines
        ],
        "tax": _money(taxes.tax, currency),
        "total": _money(taxes.total, currency),
        "reverse_charge": taxes.reverse_charge,
    }


def _money(amount: Decimal, currency: str) -> str:
    return str(round_money(amount, currency))


def stored_taxes(invoice: StoredInvoice) -> InvoiceTaxes:
    """The taxes an invoice was issued with, read back from the store (``invoice.taxed`` is true)."""
    assert invoice.subtotal is not None, "an invoice stored before taxes has no taxes to show"
    tax = sum((line.amount for line in invoice.taxes), round_money(Decimal(0), invoice.currency))
    return InvoiceTaxes(
        currency=invoice.currency,
        subtotal=invoice.subtotal,
        lines=invoice.taxes,
        tax=tax,
        total=invoice.total,
        why=invoice.tax_reason or "",
        reverse_charge=invoice.reverse_charge,
    )
