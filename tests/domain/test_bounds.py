"""The bounds of operator input, with plain values; and that every bound fits the store's columns."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Integer, String

from bridge.domain import bounds
from bridge.store.tables import (
    client_links,
    clients,
    enrollments,
    ledger_entries,
    metadata,
    subscription_charges,
)
from bridge.store.types import ExactDecimal


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("NaN", "is not a number"),
        ("Infinity", "is not a number"),
        ("1e9999", "is not a number"),
        ("1,000", "is not a number"),
        ("", "is not a number"),
        (
            "\u0661\u0662",
            "is not a number",
        ),  # Arabic-Indic digits: Decimal reads them
        ("1" * 30, "is too large"),
        ("-1000000000", "is too large"),
        ("0.123456789", "has 9 decimal places; use at most 8"),
    ],
)
def test_an_amount_outside_the_bounds_is_refused_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=r"^AMOUNT ") as refused:
        bounds.parse_amount(text, "AMOUNT")
    assert problem in str(refused.value)
    assert len(str(refused.value)) < 200, "a huge value is not echoed whole"


@pytest.mark.parametrize("text", ["12.50", "-3", "999999999.99999999", ".5", "0.12500000000", " 7 "])
def test_amounts_inside_the_bounds_are_exact(text: str) -> None:
    assert bounds.parse_amount(text, "AMOUNT") == Decimal(text.strip())


@pytest.mark.parametrize("text", ["Acme\nLtd", "Acme\tLtd", "Acme\x00", "Acme\x7f", "Ac\x85me", "Acme\udcff"])
def test_text_with_a_control_character_or_a_lone_surrogate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^--name .* contains the control character"):
        bounds.check_text(text, "--name", max_length=bounds.NAME_MAX)


def test_text_is_stripped_and_bounded_in_length() -> None:
    assert bounds.check_text("  Ada Lovelace ", "--name", max_length=12) == "Ada Lovelace"
    with pytest.raises(ValueError, match="--name is 13 characters long; use at most 12"):
        bounds.check_text("Ada Lovelaces", "--name", max_length=12)
    with pytest.raises(ValueError, match="--name is empty"):
        bounds.check_text("  ", "--name", max_length=12)


@pytest.mark.parametrize("text", ["0", "-1", "2147483648", "9" * 30, "12a", "\u0661"])
def test_ids_outside_the_store_integer_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"^ID "):
        bounds.parse_id(text, "ID")


def test_days_and_instants_stay_between_1970_and_2999() -> None:
    assert bounds.check_day(date(2022, 11, 1), "--date") == date(2022, 11, 1)
    for day in (date(1, 1, 1), date(1969, 12, 31), date(3000, 1, 1), date(9999, 12, 31)):
        with pytest.raises(ValueError, match=r"^--date .* is out of range; use a date from 1970-01-01"):
            bounds.check_day(day, "--date")
    with pytest.raises(ValueError, match=r"^--at 9999-12-31 is out of range"):
        bounds.check_instant(datetime(9999, 12, 31, 23, 59), "--at")


def test_every_amount_column_keeps_the_bounded_scale_and_magnitude() -> None:
    columns = [
        column
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, ExactDecimal)
    ]
    assert columns
    for column in columns:
        assert column.type.scale == bounds.AMOUNT_SCALE, column
        integer_digits = column.type.precision - column.type.scale
        assert Decimal(10) ** integer_digits >= bounds.AMOUNT_LIMIT * 1000, f"{column}: room for sums"


def test_every_bounded_text_fits_its_column() -> None:
    def length(column: object) -> int:
        assert isinstance(column.type, String)  # type: ignore[attr-defined]
        return int(column.type.length)  # type: ignore[attr-defined]

    assert length(clients.c.name) >= bounds.NAME_MAX
    assert length(enrollments.c.name) >= bounds.NAME_MAX
    assert length(enrollments.c.company) >= bounds.NAME_MAX
    assert length(clients.c.email) >= bounds.EMAIL_MAX
    assert length(client_links.c.external_id) >= bounds.IDENTIFIER_MAX
    assert length(subscription_charges.c.description) >= bounds.DESCRIPTION_MAX
    longest_payment = len("BB-PAYMENT-") + len(str(bounds.ID_MAX)) + 1 + bounds.REFERENCE_MAX
    assert length(ledger_entries.c.reference) >= longest_payment
    assert isinstance(clients.c.id.type, Integer) and bounds.ID_MAX == 2**31 - 1
