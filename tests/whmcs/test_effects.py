"""What ``push --dry-run`` says of each effect (derived from the typed intent the push would send), and how
an effect in doubt is settled."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bridge.domain.effects import AddClient, CreateInvoice, InvoiceItem, SendEmail, UpdateClient
from bridge.whmcs.effects import EffectOptions, Outcome, Target, apply, plan
from tests.fakes.whmcs import FakeWhmcs
from tests.whmcs.conftest import make_client


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
    assert said(AddClient("ada@example.fr", country="FR", tax_id="FR40303265045", taxexempt=True)) == (
        "GetClientsDetails email=ada@example.fr, then AddClient country=FR, tax_id=FR40303265045 + "
        "UpdateClient taxexempt=true if WHMCS has no such client"
    )
    assert said(UpdateClient(email="ada@example.org", firstname="Ada")) == "UpdateClient email, firstname"
    assert said(UpdateClient(country="FR", tax_id="", taxexempt=False), in_doubt=True) == (
        "look up (GetClientsDetails), then if absent: UpdateClient country=FR, tax_id=, taxexempt=false"
    )
    assert said(SendEmail("Low credit", "Hello"), in_doubt=True).startswith(
        "SendEmail 'Low credit' (not repeated"
    )


def test_a_row_that_cannot_be_sent_says_so_and_an_unknown_kind_is_named() -> None:
    options = EffectOptions()
    assert plan("create_invoice", {"items": []}, in_doubt=False, options=options) == (
        "nothing: the row is refused (create_invoice payload has no items)"
    )
    assert plan("refund", {}, in_doubt=False, options=options) == "unknown effect kind 'refund'"


@pytest.mark.parametrize(("says_tax_id", "sent"), [(True, 0), (False, 1)], ids=["7.7+", "older"])
def test_a_tax_identity_update_in_doubt_is_sent_again_only_when_whmcs_cannot_show_it_holds_it(
    says_tax_id: bool, sent: int
) -> None:
    """UpdateClient sets values, so sending it again is harmless; it is still not repeated when the
    lookup shows WHMCS holds every field, and is when WHMCS does not say one (``tax_id`` before 7.7)."""
    update = UpdateClient(country="FR", tax_id="FR40303265045", taxexempt=True)
    with FakeWhmcs(says_tax_id=says_tax_id) as fake, make_client(fake) as client:
        client_id = client.add_client(firstname="A", lastname="B", email="a@example.fr", skip_validation=True)
        client.update_client(client_id, **update.fields())  # the call whose answer was lost
        fake.reset_calls()

        outcome = apply(
            client,
            update.kind.value,
            "BB-CLIENT-1-UPDATE-1",
            update.payload(),
            Target(client_id),
            in_doubt=True,
            remote_id=None,
            options=EffectOptions(),
            progress=lambda _: None,
        )

        assert outcome == Outcome(str(client_id), looked_up=not sent)
        assert (fake.call_count("GetClientsDetails"), fake.call_count("UpdateClient")) == (1, sent)
        assert fake.clients[client_id].tax_exempt
