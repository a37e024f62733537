"""Plans and discounts as pure rules (seed 003): the terms in force, and a cycle priced under them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bridge.domain.cycles import calendar_cycle_containing
from bridge.domain.invoicing import LateUsage, draft_with_terms
from bridge.domain.pricing import PriceBook, price_usage
from bridge.domain.terms import (
    ClientTerms,
    Discount,
    PlanAssignment,
    PriceSchedule,
    price_with_terms,
    resolve_start,
)
from tests.domain.builders import HOUR, book, daily, usage, utc, whole_cycle

OCTOBER = calendar_cycle_containing(utc(2022, 10, 15), "UTC")
NOVEMBER = calendar_cycle_containing(utc(2022, 11, 15), "UTC")


def gold(base: PriceBook | None = None) -> PriceBook:
    """The "gold" plan: m1.small at 0.05 instead of 0.10, tokens at 0.00050 instead of 0.00100."""
    base = base or book()
    flavors = {**base.flavor_prices, "m1.small": Decimal("0.05")}
    return PriceBook(base.currency, flavors, Decimal("0.00050"), base.plans)


def schedule(terms: ClientTerms) -> PriceSchedule:
    books = {"default": book(), "gold": gold()}
    return PriceSchedule(terms, {name: books[name] for name in terms.plans()})


# -- terms ----------------------------------------------------------------------------------------------


def test_the_plan_in_force_is_the_latest_started_and_of_equal_starts_the_last_given() -> None:
    terms = ClientTerms(
        (
            PlanAssignment("gold", utc(2022, 11, 1), order=1),
            PlanAssignment("silver", utc(2022, 11, 1), order=2),
            PlanAssignment("gold", utc(2022, 12, 1), order=3),
        )
    )
    assert terms.plan_at(utc(2022, 10, 31, 23)) == "default"
    assert terms.plan_at(utc(2022, 11, 1)) == "silver"
    assert terms.plan_at(utc(2022, 12, 5)) == "gold"


def test_giving_the_plan_or_discount_in_force_again_changes_nothing() -> None:
    terms = ClientTerms().with_assignment("gold", utc(2022, 11, 1))
    assert terms.with_assignment("gold", utc(2022, 11, 1)) is terms
    assert terms.with_assignment("gold", utc(2022, 11, 20)) is terms
    ten = Discount("percentage", Decimal(10), utc(2022, 11, 1))
    with_ten = terms.with_discount(ten)
    assert with_ten.with_discount(ten) is with_ten
    assert len(with_ten.with_discount(Discount("percentage", Decimal(10), utc(2022, 11, 2))).discounts) == 2


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("percentage", "0", "above 0 and at most 100"),
        ("percentage", "100.5", "above 0 and at most 100"),
        ("fixed", "-5", "an amount above 0"),
    ],
)
def test_a_discount_out_of_range_is_refused(kind: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Discount(kind, Decimal(value), utc(2022, 11, 1))  # type: ignore[arg-type]


# -- pricing under terms --------------------------------------------------------------------------------


def test_plain_terms_price_exactly_like_the_price_book() -> None:
    records = [whole_cycle(OCTOBER), *daily(utc(2022, 10, 3), 5, resource_id="vm-2", plan="m1.large")]
    priced = price_with_terms(records, OCTOBER, schedule(ClientTerms()))
    assert priced == price_usage(records, OCTOBER, book())


def test_a_plan_from_the_start_of_the_period_prices_the_whole_period() -> None:
    terms = ClientTerms().with_assignment("gold", OCTOBER.start)
    (line,) = price_with_terms([whole_cycle(OCTOBER)], OCTOBER, schedule(terms)).lines
    assert (line.billed_hours, line.unit_price, line.amount, line.capped) == (
        Decimal("666.666667"),
        Decimal("0.05"),
        Decimal("33.33"),
        True,
    )
    assert line.reference == "openstack:vm-1:m1.small:2022-10"


def test_a_plan_from_a_moment_splits_the_period_and_the_cap_takes_the_last_hours() -> None:
    """744 h always on, capped at 666.666667 h; gold from hour 400: 400 h at 0.10, the rest at 0.05."""
    terms = ClientTerms().with_assignment("gold", OCTOBER.start + 400 * HOUR)
    records = [usage(OCTOBER.start + n * HOUR, OCTOBER.start + (n + 1) * HOUR) for n in range(744)]
    before, after = price_with_terms(records, OCTOBER, schedule(terms)).lines
    assert (before.billed_hours, before.unit_price, before.amount) == (
        Decimal(400),
        Decimal("0.10"),
        Decimal("40.00"),
    )
    assert (after.billed_hours, after.unit_price, after.amount) == (
        Decimal("266.666667"),
        Decimal("0.05"),
        Decimal("13.33"),
    )
    assert before.reference == "openstack:vm-1:m1.small:2022-10"
    assert after.reference == "openstack:vm-1:m1.small:2022-10@20221017T160000Z"
    assert (
        before.description()
        == "web-1 (m1.small) 2022-10-01 to 2022-10-17: 400.000000 hours x 0.10 EUR, capped"
    )
    assert after.description().startswith("web-1 (m1.small) 2022-10-17 16:00 to 2022-10-31: 266.666667 hours")


def test_hours_after_the_cap_was_reached_under_the_old_plan_are_on_the_new_plans_line_at_no_charge() -> None:
    """744 h always on; gold from hour 700, after the cap (666.666667 h) was reached: the 44 gold hours
    cost nothing, yet are on a line (0.00, capped), so every collected hour is on one."""
    terms = ClientTerms().with_assignment("gold", OCTOBER.start + 700 * HOUR)
    records = [usage(OCTOBER.start + n * HOUR, OCTOBER.start + (n + 1) * HOUR) for n in range(744)]
    before, after = price_with_terms(records, OCTOBER, schedule(terms)).lines
    assert (before.hours, before.billed_hours, before.amount) == (
        Decimal(700),
        Decimal("666.666667"),
        Decimal("66.67"),
    )
    assert (after.hours, after.billed_hours, after.amount, after.capped) == (
        Decimal(44),
        0,
        Decimal("0.00"),
        True,
    )


def test_solusvm_tokens_are_shared_out_in_time_order_under_the_monthly_cap() -> None:
    """Plan 7: 744 h x 7 = 5208 tokens, capped at 5000; the cheaper token price from hour 700."""
    terms = ClientTerms().with_assignment("gold", OCTOBER.start + 700 * HOUR)
    records = [
        usage(OCTOBER.start + n * HOUR, OCTOBER.start + (n + 1) * HOUR, source="solusvm", plan="7")
        for n in range(744)
    ]
    before, after = price_with_terms(records, OCTOBER, schedule(terms)).lines
    assert (before.tokens, before.amount) == (4900, Decimal("4.90"))
    assert (after.tokens, after.unit_price, after.amount) == (100, Decimal("0.00050"), Decimal("0.05"))


def test_a_percentage_discount_on_one_source_and_a_fixed_amount_never_below_zero() -> None:
    terms = (
        ClientTerms()
        .with_discount(Discount("percentage", Decimal("12.5"), OCTOBER.start, source="openstack"))
        .with_discount(Discount("fixed", Decimal("50"), OCTOBER.start))
    )
    records = [
        *daily(utc(2022, 10, 1), 3, plan="m1.large"),  # 72 h x 0.40 = 28.80 -> 25.20 after 12.5%
        *daily(utc(2022, 10, 1), 1, source="solusvm", resource_id="s1", name="solus-1", plan="7"),
    ]
    openstack, solusvm = price_with_terms(records, OCTOBER, schedule(terms)).lines
    assert (openstack.unit_price, openstack.amount) == (Decimal("0.40"), Decimal("0.00"))
    assert openstack.description().endswith("x 0.40 EUR, 12.5% off, 25.20 EUR off")
    assert (solusvm.tokens, solusvm.amount) == (168, Decimal("0.00"))  # 0.168 left of the 50.00, taken too


def test_a_fixed_discount_is_taken_once_from_the_lines_in_order() -> None:
    terms = ClientTerms().with_discount(Discount("fixed", Decimal("5"), OCTOBER.start))
    records = [*daily(utc(2022, 10, 1), 1, plan="m1.large"), *daily(utc(2022, 10, 1), 1, resource_id="vm-2")]
    lines = price_with_terms(records, OCTOBER, schedule(terms)).lines
    assert [(line.resource_id, line.amount) for line in lines] == [
        ("vm-1", Decimal("4.60")),  # 24 h x 0.40 = 9.60, less 5.00
        ("vm-2", Decimal("2.40")),
    ]


def test_a_discount_limited_to_a_resource_kind_leaves_the_other_flavors_alone() -> None:
    terms = ClientTerms().with_discount(
        Discount("percentage", Decimal(50), OCTOBER.start, resource_kind="m1.large")
    )
    records = [*daily(utc(2022, 10, 1), 1, plan="m1.large"), *daily(utc(2022, 10, 1), 1, resource_id="vm-2")]
    assert [line.amount for line in price_with_terms(records, OCTOBER, schedule(terms)).lines] == [
        Decimal("4.80"),
        Decimal("2.40"),
    ]


def test_a_discount_that_starts_mid_period_applies_only_from_then() -> None:
    terms = ClientTerms().with_discount(Discount("percentage", Decimal(50), utc(2022, 10, 11)))
    before, after = price_with_terms(daily(utc(2022, 10, 1), 20), OCTOBER, schedule(terms)).lines
    assert (before.amount, after.amount) == (Decimal("24.00"), Decimal("12.00"))


def test_late_usage_is_priced_with_the_plan_in_force_at_the_end_of_its_period() -> None:
    terms = ClientTerms().with_assignment("gold", utc(2022, 10, 20))
    invoiced = price_usage(daily(utc(2022, 10, 1), 2), OCTOBER, book()).lines
    late = LateUsage(OCTOBER, tuple(daily(utc(2022, 10, 1), 3)), invoiced)
    result = draft_with_terms("42", "EUR", NOVEMBER, [], schedule(terms), late_usage=[late])
    (line,) = result.draft.lines
    assert (line.late, line.billed_hours, line.unit_price, line.amount) == (
        True,
        Decimal(24),
        Decimal("0.05"),
        Decimal("1.20"),
    )


# -- when a change starts (seed 003) --------------------------------------------------------------------


def test_start_keywords_and_seconds_since_1970() -> None:
    now = utc(2022, 11, 2, 9)
    assert resolve_start("current-period", now, NOVEMBER, 3).at == utc(2022, 11, 1)
    assert resolve_start("now", now, NOVEMBER, 3).at == now
    assert resolve_start("1667260800", now, NOVEMBER, 3).at == utc(2022, 11, 1)  # startTimeInSeconds
    previous = resolve_start("previous-period", now, NOVEMBER, 3)
    assert (previous.at, previous.reaches_previous, previous.previous) == (utc(2022, 10, 1), True, OCTOBER)


def test_the_previous_period_is_reachable_only_in_its_grace_period() -> None:
    assert resolve_start("previous-period", utc(2022, 11, 3, 23, 59), NOVEMBER, 3).reaches_previous
    with pytest.raises(ValueError, match="grace period of 3 days ended at 2022-11-04T00:00:00"):
        resolve_start("previous-period", utc(2022, 11, 4), NOVEMBER, 3)
    with pytest.raises(ValueError, match="grace period of 0 days"):
        resolve_start("previous-period", utc(2022, 11, 1, 1), NOVEMBER, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1661990400", "is before the previous billing period"),  # 2022-09-01
        ("yesterday", "is not one of now, current-period, previous-period"),
        ("99999999999999999999", "out of range"),
    ],
)
def test_a_start_that_cannot_be_used_is_refused_naming_the_option(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        resolve_start(text, utc(2022, 11, 2), NOVEMBER, 3)
    assert "--start" in str(error.value)


# -- billing periods (seed 004) -------------------------------------------------------------------------
