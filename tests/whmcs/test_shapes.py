"""The normalisation of WHMCS's loose shapes, and the form values we send: pure units."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.whmcs.models import parse_invoice, parse_list, parse_transaction
from bridge.whmcs.reference import check_reference, contains_reference
from bridge.whmcs.shapes import (
    ShapeError,
    as_list,
    format_amount,
    format_form_value,
    nested_list,
    to_bool,
    to_date,
    to_datetime,
    to_int,
    to_money,
    unflatten,
)

ITEM = {"id": "7", "amount": "1.00"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], []),
        ({}, []),
        ("", []),
        (None, []),
        ([ITEM], [ITEM]),
        ({"0": ITEM}, [ITEM]),
        ({"1": {"id": "2"}, "0": {"id": "1"}, "10": {"id": "11"}}, [{"id": "1"}, {"id": "2"}, {"id": "11"}]),
        (ITEM, [ITEM]),
    ],
    ids=["empty-list", "empty-object", "empty-string", "null", "list", "indexed", "indexed-order", "bare"],
)
def test_as_list_reads_every_list_shape(value: object, expected: list[object]) -> None:
    assert as_list(value, "x") == expected


@pytest.mark.parametrize("value", [5, "text", [1, 2], {"0": "not an object"}])
def test_as_list_refuses_what_is_no_list_of_objects(value: object) -> None:
    with pytest.raises(ShapeError) as caught:
        as_list(value, "invoices.invoice")
    assert caught.value.field.startswith("invoices.invoice")


@pytest.mark.parametrize(
    "container",
    [{"invoice": [ITEM]}, {"invoice": {"0": ITEM}}, {"invoice": ITEM}],
    ids=["list", "indexed", "bare"],
)
def test_nested_list_finds_the_inner_list(container: object) -> None:
    assert nested_list({"invoices": container}, "invoices", "invoice") == [ITEM]


@pytest.mark.parametrize("container", [[], {}, "", None, {"invoice": []}, {"invoice": ""}])
def test_nested_list_is_empty_for_every_empty_shape(container: object) -> None:
    body = {} if container is None else {"invoices": container}
    assert nested_list(body, "invoices", "invoice") == []


def test_unflatten_folds_the_documentations_php_keys() -> None:
    body = {
        "result": "success",
        "credits[credit][0][id]": "1",
        "credits[credit][0][amount]": "10.00",
        "credits[credit][1][id]": "2",
        "credits[credit][1][amount]": "-10.00",
    }
    folded = unflatten(body)
    assert folded["result"] == "success"
    assert nested_list(folded, "credits", "credit") == [
        {"id": "1", "amount": "10.00"},
        {"id": "2", "amount": "-10.00"},
    ]


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1), ("1", 1), (" 42 ", 42), ("-3", -3), (Decimal("5"), 5)]
)
def test_ids_read_as_int_or_string(value: object, expected: int) -> None:
    assert to_int(value, "id") == expected


@pytest.mark.parametrize("value", [True, "", "1.5", "abc", "--1", None, Decimal("1.5")])
def test_bad_ids_are_shape_errors(value: object) -> None:
    with pytest.raises(ShapeError, match="'id'"):
        to_int(value, "id")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("15.95", "15.95"), (Decimal("15.95"), "15.95"), (15, "15"), ("-10.00", "-10.00"), ("0.10", "0.10")],
)
def test_money_is_exact_decimal(value: object, expected: str) -> None:
    result = to_money(value, "amount")
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_json_numbers_become_exact_decimals_not_floats() -> None:
    body = json.loads('{"amount": 0.1, "total": 1234567.89}', parse_float=Decimal)
    assert to_money(body["amount"], "amount") == Decimal("0.1")
    assert to_money(body["total"], "total") == Decimal("1234567.89")


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", True, 1.5, None])
def test_bad_money_is_a_shape_error(value: object) -> None:
    with pytest.raises(ShapeError):
        to_money(value, "amount")


def test_dates_and_whmcs_empty_dates() -> None:
    assert to_date("2016-01-08", "duedate") == date(2016, 1, 8)
    assert to_date("0000-00-00", "duedate") is None
    assert to_date("", "duedate") is None
    assert to_datetime("0000-00-00 00:00:00", "datepaid") is None
    assert to_datetime("2016-01-01 06:41:11", "date") == datetime(2016, 1, 1, 6, 41, 11)
    with pytest.raises(ShapeError):
        to_date("01/08/2016", "duedate")


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), (1, True), ("0", False), ("", False), (None, False)]
)
def test_flags(value: object, expected: bool) -> None:
    assert to_bool(value, "taxed") is expected


def test_format_amount_sends_cents_and_refuses_fractions_of_a_cent() -> None:
    assert format_amount(Decimal("12.3")) == "12.30"
    assert format_amount(Decimal("12.300")) == "12.30"
    assert format_amount(7) == "7.00"
    assert format_amount(Decimal("-0.50")) == "-0.50"
    with pytest.raises(ValueError, match="more than 2 decimal places"):
        format_amount(Decimal("12.345"))
    with pytest.raises(TypeError):
        format_amount(12.3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        format_amount(Decimal("NaN"))


@given(st.decimals(min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=2))
def test_amounts_round_trip_exactly(amount: Decimal) -> None:
    assert to_money(format_amount(amount), "amount") == amount


@given(st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=4))
def test_sub_cent_amounts_are_refused(amount: Decimal) -> None:
    if amount == amount.quantize(Decimal("0.01")):
        assert format_amount(amount) == f"{amount.quantize(Decimal('0.01')):f}"
    else:
        with pytest.raises(ValueError):
            format_amount(amount)


def test_form_values() -> None:
    assert format_form_value(True, "x") == "1"
    assert format_form_value(False, "x") == "0"
    assert format_form_value(date(2025, 3, 1), "x") == "2025-03-01"
    assert format_form_value(datetime(2025, 3, 1, 9, 5, 7), "x") == "2025-03-01 09:05:07"
    assert format_form_value(5, "x") == "5"


def test_invoice_from_the_documented_getinvoice_example() -> None:
    """The flattened example body of dev:getinvoice, read exactly."""
    body = unflatten(
        {
            "result": "success",
            "invoiceid": "1",
            "invoicenum": "",
            "userid": "2361",
            "date": "2016-01-01",
            "duedate": "2016-01-08",
            "datepaid": "0000-00-00 00:00:00",
            "subtotal": "15.95",
            "credit": "0.00",
            "tax": "0.00",
            "tax2": "0.00",
            "total": "15.95",
            "balance": "15.95",
            "status": "Unpaid",
            "paymentmethod": "paypal",
            "notes": "",
            "items[item][0][id]": "1",
            "items[item][0][type]": "Hosting",
            "items[item][0][relid]": "1",
            "items[item][0][description]": "Sample Monthly Product (01/01/2016 - 31/01/2016)",
            "items[item][0][amount]": "15.95",
            "items[item][0][taxed]": "0",
            "transactions": "",
        }
    )
    invoice = parse_invoice(body, "")
    assert (invoice.id, invoice.user_id, invoice.total, invoice.balance) == (
        1,
        2361,
        Decimal("15.95"),
        Decimal("15.95"),
    )
    assert invoice.date_paid is None
    assert invoice.items[0].amount == Decimal("15.95")
    assert invoice.transactions == ()


def test_transactions_in_the_documented_shape_with_int_counts() -> None:
    body = {
        "totalresults": 1,
        "transactions": {
            "transaction": [
                {"id": "10", "userid": "1", "amountin": "45.90", "transid": "abc", "invoiceid": "59"}
            ]
        },
    }
    (transaction,) = parse_list(body, "transactions", "transaction", parse_transaction)
    assert (transaction.id, transaction.invoice_id, transaction.amount_in) == (10, 59, Decimal("45.90"))


def test_a_missing_required_field_names_its_place() -> None:
    with pytest.raises(ShapeError) as caught:
        parse_list({"invoices": {"invoice": [{"id": "1"}]}}, "invoices", "invoice", parse_invoice)
    assert caught.value.field == "invoices.invoice[0].userid"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("BB-4-2025-03-usage", True),
        ("Usage March (ref BB-4-2025-03-usage)", True),
        ("ref: BB-4-2025-03-usage.\nThanks", True),
        ("BB-42-2025-03-usage", False),
        ("XBB-4-2025-03-usage", False),
        ("BB-4-2025-03-usage2", False),
        ("BB-4-2025-03-usage_x", False),
        ("", False),
    ],
)
def test_references_match_as_whole_tokens(text: str, found: bool) -> None:
    assert contains_reference(text, "BB-4-2025-03-usage") is found


@pytest.mark.parametrize("reference", ["", "-BB", "BB 1", "BB.1", "BB/1"])
def test_bad_references_are_refused(reference: str) -> None:
    with pytest.raises(ValueError, match="reference"):
        check_reference(reference)
