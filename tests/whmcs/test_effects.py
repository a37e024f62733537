"""What ``push --dry-run`` says of each effect: derived from the typed intent the push would send."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bridge.domain.effects import AddClient, CreateInvoice, InvoiceItem, SendEmail, UpdateClient
from bridge.whmcs.effects import EffectOptions, plan


def said(effect: AddClient | UpdateClient | CreateInvoice | SendEmail, *, in_doubt: bool = False) -> str:
    return plan(effect.kind.value, effect.payload(), in_doubt=in_doubt, options=EffectOptions())


def test_an_invoice_is_said_with_its_lines_total_and_the_publish_step() -> None:
    invoice = CreateInvoice(
        "BB-1-2022-10",
        date(2022, 11, 1),
        date(2022, 11, 15),
        (InvoiceItem("web", Decimal("10.00")), InvoiceItem("db", Decimal("0.50"))),
    )
    assert said(invoice) == "CreateInvoice 2 lines, total 10.50 + UpdateInvoice publish"
    assert said(invoice, in_doubt=True) == (
        "look up (GetInvoices), then if absent: CreateInvoice 2 lines, total 10.50 + UpdateInvoice publish"
    )


def test_clients_and_mail_are_said_with_what_they_change() -> None:
    assert said(AddClient("ada@example.com", "Ada")) == (
        "GetClientsDetails email=ada@example.com, then AddClient if WHMCS has no such client"
    )
    assert said(UpdateClient(email="ada@example.org", firstname="Ada")) == "UpdateClient email, firstname"
    assert said(SendEmail("Low credit", "Hello"), in_doubt=True).startswith(
        "SendEmail 'Low credit' (not repeated"
    )


def test_a_row_that_cannot_be_sent_says_so_and_an_unknown_kind_is_named() -> None:
    options = EffectOptions()
    assert plan("create_invoice", {"items": []}, in_doubt=False, options=options) == (
        "nothing: the row is refused (create_invoice payload has no items)"
    )
    assert plan("refund", {}, in_doubt=False, options=options) == "unknown effect kind 'refund'"
