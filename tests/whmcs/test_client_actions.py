"""Every action's happy path: the real client over real HTTP against the fake WHMCS on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import pytest

from bridge.whmcs import Currency, InvoiceLine, WhmcsBusinessError, WhmcsClient, WhmcsDuplicateError
from tests.fakes.whmcs import FakeWhmcs
from tests.whmcs.conftest import make_client

MARCH = date(2025, 3, 1)
DUE = date(2025, 3, 15)


def create(client: WhmcsClient, user_id: int, notes: str, *amounts: str, draft: bool = False) -> int:
    lines = [
        InvoiceLine(f"line {n}", Decimal(amount), n % 2 == 0)
        for n, amount in enumerate(amounts or ("10.00",))
    ]
    return client.create_invoice(
        user_id, lines, date=MARCH, due_date=DUE, notes=notes, draft=draft
    ).invoice_id


# -- clients --------------------------------------------------------------------------------------------


def test_add_client_then_find_it_by_email(client: WhmcsClient, fake: FakeWhmcs, client_id: int) -> None:
    found = client.get_clients_details(email="ADA@example.com")
    assert found is not None
    assert (found.id, found.email, found.companyname, found.status) == (
        client_id,
        "ada@example.com",
        "Engines Ltd",
        "Active",
    )
    assert (found.currency_id, found.currency_code, found.credit) == (1, "USD", Decimal("0.00"))
    sent = fake.last_params("AddClient")
    assert sent["noemail"] == "1" and sent["password2"]
    assert client.get_clients_details(client_id=client_id) == found


def test_unknown_client_is_none(client: WhmcsClient) -> None:
    assert client.get_clients_details(email="nobody@example.com") is None


def test_duplicate_email_is_a_business_error_the_caller_can_recognise(
    client: WhmcsClient, client_id: int
) -> None:
    with pytest.raises(WhmcsBusinessError) as caught:
        client.add_client(firstname="Ada", lastname="Again", email="ada@example.com", skip_validation=True)
    assert caught.value.message == "A user already exists with that email address"
    assert caught.value.duplicate_email


def test_get_clients_pages_and_prefix_search(client: WhmcsClient) -> None:
    for name in ("alpha", "alpine", "beta"):
        client.add_client(firstname=name, lastname="X", email=f"{name}@example.com", skip_validation=True)
    page = client.get_clients(search="alp", limitnum=1)
    assert (page.total, page.start, [c.email for c in page.clients]) == (2, 0, ["alpha@example.com"])
    second = client.get_clients(search="alp", limitstart=1, limitnum=1)
    assert [c.email for c in second.clients] == ["alpine@example.com"]
    assert client.get_clients(search="zzz").clients == ()


def test_update_client(client: WhmcsClient, client_id: int) -> None:
    client.update_client(client_id, companyname="Difference Engines", paymentmethod="stripe")
    found = client.get_clients_details(client_id=client_id)
    assert found is not None
    assert (found.companyname, found.default_gateway) == ("Difference Engines", "stripe")


@pytest.mark.parametrize("json_types", ["docs", "native"])
def test_a_clients_tax_identity_is_set_and_read_back(json_types: str) -> None:
    """GetClientsDetails says ``taxexempt`` as ``""``/``"1"`` (the documentation's example) or a JSON
    boolean; the client reads both, and the country and tax ID UpdateClient set."""
    with FakeWhmcs(json_types=json_types) as fake, make_client(fake) as client:  # type: ignore[arg-type]
        german = {"country": "DE", "tax_id": "DE136695976"}
        client_id = client.add_client(
            firstname="A", lastname="L", email="a@example.de", skip_validation=True, **german
        )
        found = client.get_clients_details(client_id=client_id)
        assert found is not None
        assert (found.country, found.tax_id, found.tax_exempt) == ("DE", "DE136695976", False)
        client.update_client(client_id, country="FR", tax_id="FR40303265045", taxexempt=True)
        found = client.get_clients_details(client_id=client_id)
        assert found is not None
        assert (found.country, found.tax_id, found.tax_exempt) == ("FR", "FR40303265045", True)
        assert fake.last_params("UpdateClient")["taxexempt"] == "1"


# -- invoices -------------------------------------------------------------------------------------------


def test_create_invoice_sends_flat_numbered_items(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    lines = [InvoiceLine("Compute", Decimal("12.30")), ("Storage", Decimal("0.05"), True)]
    created = client.create_invoice(
        client_id, lines, date=MARCH, due_date=DUE, notes="BB-1-2025-03-usage", payment_method="stripe"
    )
    assert created.status == "Unpaid"
    sent = fake.last_params("CreateInvoice")
    assert (
        sent["itemdescription1"] == "Compute" and sent["itemamount1"] == "12.30" and sent["itemtaxed1"] == "0"
    )
    assert (
        sent["itemdescription2"] == "Storage" and sent["itemamount2"] == "0.05" and sent["itemtaxed2"] == "1"
    )
    assert (sent["date"], sent["duedate"], sent["responsetype"]) == ("2025-03-01", "2025-03-15", "json")
    invoice = client.get_invoice(created.invoice_id)
    assert invoice is not None
    assert (invoice.total, invoice.balance, invoice.payment_method) == (
        Decimal("12.35"),
        Decimal("12.35"),
        "stripe",
    )
    assert [(i.description, i.amount, i.taxed) for i in invoice.items] == [
        ("Compute", Decimal("12.30"), False),
        ("Storage", Decimal("0.05"), True),
    ]
    assert (invoice.date, invoice.due_date, invoice.date_paid) == (MARCH, DUE, None)


def test_draft_then_publish_and_send(client: WhmcsClient, fake: FakeWhmcs, client_id: int) -> None:
    created = client.create_invoice(
        client_id, [InvoiceLine("Usage", Decimal("5.00"))], date=MARCH, due_date=DUE, notes="BB-d", draft=True
    )
    assert created.status == "Draft"
    assert fake.last_params("CreateInvoice")["draft"] == "1"
    client.update_invoice(created.invoice_id, publish_and_send=True)
    invoice = client.get_invoice(created.invoice_id)
    assert invoice is not None and invoice.status == "Unpaid"
    assert [(e.related_id, e.template) for e in fake.emails] == [(created.invoice_id, "Invoice Created")]
    with pytest.raises(WhmcsBusinessError, match="must be in Draft status"):
        client.update_invoice(created.invoice_id, publish=True)


def test_create_and_send_in_one_call(client: WhmcsClient, fake: FakeWhmcs, client_id: int) -> None:
    created = client.create_invoice(
        client_id, [InvoiceLine("Usage", Decimal("5.00"))], date=MARCH, due_date=DUE, notes="n", send=True
    )
    assert [e.related_id for e in fake.emails] == [created.invoice_id]


def test_draft_and_send_together_are_refused_before_any_call(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    with pytest.raises(ValueError, match="publish_and_send"):
        client.create_invoice(
            client_id,
            [InvoiceLine("x", Decimal("1"))],
            date=MARCH,
            due_date=DUE,
            notes="n",
            send=True,
            draft=True,
        )
    assert fake.call_count("CreateInvoice") == 0


def test_the_fake_refuses_draft_with_send_like_whmcs(client: WhmcsClient, client_id: int) -> None:
    params = {
        "userid": client_id,
        "draft": True,
        "sendinvoice": True,
        "itemdescription1": "x",
        "itemamount1": "1.00",
    }
    with pytest.raises(WhmcsBusinessError, match="Cannot create and send a draft invoice"):
        client.call("CreateInvoice", params, write=True)


def test_sub_cent_amounts_are_refused_before_any_call(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        client.create_invoice(
            client_id, [InvoiceLine("x", Decimal("1.005"))], date=MARCH, due_date=DUE, notes="n"
        )
    assert fake.call_count() == 1  # only the AddClient of the fixture


def test_update_invoice_status_and_notes(client: WhmcsClient, client_id: int) -> None:
    invoice_id = create(client, client_id, "old")
    client.update_invoice(invoice_id, status="Cancelled", notes="BB-new")
    invoice = client.get_invoice(invoice_id)
    assert invoice is not None and (invoice.status, invoice.notes) == ("Cancelled", "BB-new")


def test_unknown_invoice_is_none(client: WhmcsClient) -> None:
    assert client.get_invoice(999) is None


def test_get_invoices_reads_every_page_oldest_first(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    ids = [create(client, client_id, f"BB-{n}") for n in range(7)]
    other = client.add_client(firstname="B", lastname="B", email="b@example.com", skip_validation=True)
    create(client, other, "BB-other")
    fake.reset_calls()
    invoices = client.get_invoices(client_id)
    assert [i.id for i in invoices] == ids
    assert fake.call_count("GetInvoices") == 3  # page size 3: 3 + 3 + 1
    sent = fake.last_params("GetInvoices")
    assert (sent["orderby"], sent["order"], sent["limitstart"], sent["limitnum"]) == ("id", "asc", "6", "3")
    assert all(i.currency_code == "USD" and i.balance is None for i in invoices)


def test_get_invoices_by_status(client: WhmcsClient, client_id: int) -> None:
    first = create(client, client_id, "a")
    create(client, client_id, "b", draft=True)
    assert [i.id for i in client.get_invoices(client_id, status="Unpaid")] == [first]
    assert client.get_invoices(client_id, status="Paid") == ()


def test_find_invoice_by_reference(client: WhmcsClient, client_id: int) -> None:
    create(client, client_id, "Usage March (BB-1-2025-02-usage)")
    wanted = create(client, client_id, "Usage March (BB-1-2025-03-usage)")
    create(client, client_id, "BB-1-2025-03-usage2")
    found = client.find_invoice_by_reference(client_id, "BB-1-2025-03-usage")
    assert found is not None and found.id == wanted
    assert client.find_invoice_by_reference(client_id, "BB-1-2025-04-usage") is None


def test_duplicates_by_reference_raise_until_the_extra_one_is_cancelled(
    client: WhmcsClient, client_id: int
) -> None:
    first = create(client, client_id, "BB-dup")
    second = create(client, client_id, "BB-dup")
    with pytest.raises(WhmcsDuplicateError) as caught:
        client.find_invoice_by_reference(client_id, "BB-dup")
    assert caught.value.ids == (first, second)
    client.update_invoice(second, status="Cancelled")
    found = client.find_invoice_by_reference(client_id, "BB-dup")
    assert found is not None and found.id == first


# -- credit ---------------------------------------------------------------------------------------------


def test_add_credit_returns_the_new_balance_and_is_found_by_reference(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    assert client.add_credit(client_id, Decimal("10.10"), "Top-up BB-1-topup-1", date=MARCH) == Decimal(
        "10.10"
    )
    assert client.add_credit(client_id, Decimal("0.20"), "Top-up BB-1-topup-2") == Decimal("10.30")
    assert fake.last_params("AddCredit")["amount"] == "0.20"
    credits = client.get_credits(client_id)
    assert (credits[0].amount, credits[0].date) == (Decimal("10.10"), MARCH)
    found = client.find_credit_by_reference(client_id, "BB-1-topup-2")
    assert found is not None and found.amount == Decimal("0.20")
    assert client.find_credit_by_reference(client_id, "BB-1-topup-3") is None


def test_credit_refuses_non_positive_amounts(client: WhmcsClient, client_id: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        client.add_credit(client_id, Decimal("0"), "BB-zero")


def test_auto_applied_credit_shows_as_a_negative_entry(client: WhmcsClient, client_id: int) -> None:
    client.add_credit(client_id, Decimal("3.00"), "BB-c")
    created = client.create_invoice(
        client_id,
        [InvoiceLine("x", Decimal("10.00"))],
        date=MARCH,
        due_date=DUE,
        notes="n",
        auto_apply_credit=True,
    )
    invoice = client.get_invoice(created.invoice_id)
    assert invoice is not None and (invoice.credit, invoice.balance) == (Decimal("3.00"), Decimal("7.00"))
    assert [c.amount for c in client.get_credits(client_id)] == [Decimal("3.00"), Decimal("-3.00")]


# -- payments and transactions --------------------------------------------------------------------------


def test_payment_in_two_parts_marks_the_invoice_paid(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    invoice_id = create(client, client_id, "BB-pay", "10.00", "2.35")
    client.add_invoice_payment(invoice_id, "ch_1", "stripe", Decimal("10.00"), datetime(2025, 3, 2, 9, 30))
    assert fake.last_params("AddInvoicePayment")["date"] == "2025-03-02 09:30:00"
    partly = client.get_invoice(invoice_id)
    assert partly is not None and (partly.status, partly.balance) == ("Unpaid", Decimal("2.35"))
    client.add_invoice_payment(
        invoice_id, "ch_2", "stripe", Decimal("2.35"), datetime(2025, 3, 3, 8, 0), fees=Decimal("0.30")
    )
    paid = client.get_invoice(invoice_id)
    assert paid is not None
    assert (paid.status, paid.balance, paid.date_paid) == (
        "Paid",
        Decimal("0.00"),
        datetime(2025, 3, 3, 8, 0),
    )
    assert [(t.trans_id, t.amount_in) for t in paid.transactions] == [
        ("ch_1", Decimal("10.00")),
        ("ch_2", Decimal("2.35")),
    ]


def test_transactions_by_each_filter(client: WhmcsClient, fake: FakeWhmcs, client_id: int) -> None:
    invoice_id = create(client, client_id, "BB-t", "4.00")
    client.add_invoice_payment(invoice_id, "ch_9", "paypal", Decimal("4.00"), datetime(2025, 3, 2, 12, 0))
    client.call(
        "AddTransaction",
        {
            "paymentmethod": "mailin",
            "userid": client_id,
            "transid": "wire-1",
            "amountin": Decimal("1.00"),
            "date": "02/03/2025",
        },
        write=True,
    )
    by_invoice = client.get_transactions(invoice_id=invoice_id)
    assert [(t.trans_id, t.gateway, t.amount_in) for t in by_invoice] == [("ch_9", "paypal", Decimal("4.00"))]
    assert [t.trans_id for t in client.get_transactions(client_id=client_id)] == ["ch_9", "wire-1"]
    found = client.find_transaction("wire-1")
    assert found is not None and found.date == datetime(2025, 3, 2)
    assert client.find_transaction("nope") is None
    assert client.find_transaction("ch_9", invoice_id=invoice_id + 1) is None


def test_add_transaction_enforces_unique_transaction_ids(client: WhmcsClient, client_id: int) -> None:
    params = {"paymentmethod": "mailin", "userid": client_id, "transid": "T-1", "amountin": "1.00"}
    client.call("AddTransaction", params, write=True)
    with pytest.raises(WhmcsBusinessError, match="Transaction ID must be Unique"):
        client.call("AddTransaction", params, write=True)
    client.call("AddTransaction", {**params, "allowduplicatetransid": True}, write=True)
    with pytest.raises(WhmcsDuplicateError):
        client.find_transaction("T-1")


# -- pay methods and email ------------------------------------------------------------------------------


def test_agreement_appears_and_disappears_with_a_remote_token(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    assert client.has_agreement(client_id) is False
    fake.add_pay_method(client_id, gateway_name="paypal_ppcpv", remote_token="", type="CreditCard")
    assert client.has_agreement(client_id) is False
    method = fake.add_pay_method(client_id, gateway_name="stripe_sepa", remote_token="cus_123")
    assert client.has_agreement(client_id) is True
    assert client.has_agreement(client_id, ["stripe"]) is True
    assert client.has_agreement(client_id, ["STRIPE_SEPA"]) is True
    assert client.has_agreement(client_id, ["gocardless", "paypal"]) is False
    methods = client.get_pay_methods(client_id)
    assert [(m.gateway_name, m.has_remote_token) for m in methods] == [
        ("paypal_ppcpv", False),
        ("stripe_sepa", True),
    ]
    assert "cus_123" not in repr(methods)
    fake.remove_pay_method(method)
    assert client.has_agreement(client_id) is False


def test_agreement_lookup_failure_raises_rather_than_saying_no(client: WhmcsClient) -> None:
    with pytest.raises(WhmcsBusinessError, match="Client Not Found"):
        client.has_agreement(4242)


def test_send_template_and_custom_email(client: WhmcsClient, fake: FakeWhmcs, client_id: int) -> None:
    invoice_id = create(client, client_id, "BB-mail")
    client.send_email(invoice_id, template="Invoice Payment Reminder")
    client.send_email(client_id, custom_type="general", subject="Low credit", html_message="<p>Top up</p>")
    assert [(e.related_id, e.template, e.custom_type) for e in fake.emails] == [
        (invoice_id, "Invoice Payment Reminder", None),
        (client_id, None, "general"),
    ]
    with pytest.raises(WhmcsBusinessError, match="Email Template not found"):
        client.send_email(client_id, template="No Such Template")


# -- the same reads in every shape WHMCS may use --------------------------------------------------------


@pytest.fixture(
    params=[
        {"list_style": "indexed"},
        {"list_style": "bare"},
        {"empty_style": "string"},
        {"empty_style": "object"},
        {"empty_style": "list"},
        {"json_types": "native"},
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def quirky(request: pytest.FixtureRequest) -> Iterator[tuple[FakeWhmcs, WhmcsClient]]:
    with FakeWhmcs(**request.param) as server, make_client(server) as whmcs:
        yield server, whmcs


def test_reads_in_every_list_shape_and_json_type(quirky: tuple[FakeWhmcs, WhmcsClient]) -> None:
    _, client = quirky
    user = client.add_client(firstname="Q", lastname="Q", email="q@example.com", skip_validation=True)
    assert client.get_invoices(user) == ()
    assert client.get_credits(user) == ()
    assert client.get_transactions(client_id=user) == ()
    invoice_id = create(client, user, "BB-q", "0.10", "0.20")
    client.add_credit(user, Decimal("0.70"), "BB-qc")
    client.add_invoice_payment(invoice_id, "q-1", "stripe", Decimal("0.30"), datetime(2025, 3, 2, 1, 2, 3))
    (listed,) = client.get_invoices(user)
    assert (listed.id, listed.total, listed.status) == (invoice_id, Decimal("0.30"), "Paid")
    invoice = client.get_invoice(invoice_id)
    assert invoice is not None and [i.amount for i in invoice.items] == [Decimal("0.10"), Decimal("0.20")]
    assert [t.trans_id for t in invoice.transactions] == ["q-1"]
    assert [c.amount for c in client.get_credits(user)] == [Decimal("0.70")]
    details = client.get_clients_details(client_id=user)
    assert details is not None and details.credit == Decimal("0.70")
    assert [c.id for c in client.get_clients(search="q").clients] == [user]
    assert all(type(v) is Decimal for v in (listed.total, invoice.subtotal, invoice.items[0].amount))


def test_currencies_in_every_list_shape_and_json_type(quirky: tuple[FakeWhmcs, WhmcsClient]) -> None:
    _, client = quirky
    assert client.get_currencies() == (Currency(1, "USD"), Currency(2, "EUR"), Currency(3, "GBP"))


def test_currencies_as_the_documentation_shows_them_flattened(fake: FakeWhmcs, client: WhmcsClient) -> None:
    """GetCurrencies' documented example answers in PHP's flattened keys."""
    documented = {
        "result": "success",
        "totalresults": "1",
        "currencies[currency][0][id]": "1",
        "currencies[currency][0][code]": "USD",
        "currencies[currency][0][prefix]": "$",
        "currencies[currency][0][suffix]": " USD",
        "currencies[currency][0][format]": "1",
        "currencies[currency][0][rate]": "1.00000",
    }
    fake.fail("reply", action="GetCurrencies", body=documented)
    assert client.get_currencies() == (Currency(1, "USD"),)
