"""Billing periods, subscriptions, charges and recharges as pure rules (seed 004)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bridge.domain.cycles import BillingPeriod
from bridge.domain.periods import (
    Charge,
    PendingCharge,
    PeriodSpan,
    Recharge,
    RecurringItem,
    Subscription,
    discounted_items,
    fee_value,
    period_of,
    recharge,
)
from bridge.domain.terms import ClientTerms, Discount, PlanAssignment
from tests.domain.builders import utc


def test_moving_the_1st_to_the_6th_lengthens_the_current_period_to_36_days() -> None:
    span = PeriodSpan.opened(BillingPeriod.monthly(1), date(2022, 10, 10))
    assert (span.started_on, span.next_recharge_on, span.days) == (date(2022, 10, 1), date(2022, 11, 1), 31)
    moved = span.with_schedule(BillingPeriod.monthly(6), date(2022, 10, 20))
    assert (moved.started_on, moved.next_recharge_on, moved.days) == (
        date(2022, 10, 1),
        date(2022, 11, 6),
        36,
    )
    assert (moved.recharged().started_on, moved.recharged().next_recharge_on) == (
        date(2022, 11, 6),
        date(2022, 12, 6),
    )


def test_moving_the_30th_to_the_22nd_on_the_20th_shortens_the_period_by_8_days() -> None:
    span = PeriodSpan.opened(BillingPeriod.monthly(30), date(2022, 11, 1))
    assert (span.started_on, span.next_recharge_on) == (date(2022, 10, 30), date(2022, 11, 30))
    moved = span.with_schedule(BillingPeriod.monthly(22), date(2022, 11, 20))
    assert moved.next_recharge_on == date(2022, 11, 22)
    assert span.days - moved.days == 8


def test_a_yearly_period_on_feb_29_recharges_on_feb_28_in_other_years() -> None:
    span = PeriodSpan.opened(period_of("yearly", 29, 2), date(2023, 3, 1))
    assert (span.started_on, span.next_recharge_on) == (date(2023, 2, 28), date(2024, 2, 29))
    assert span.recharged().next_recharge_on == date(2025, 2, 28)
    moved = span.with_schedule(period_of("yearly", 1, 6), date(2023, 3, 1))
    assert (moved.started_on, moved.next_recharge_on) == (date(2023, 2, 28), date(2023, 6, 1))


def test_a_period_keeps_its_frequency() -> None:
    span = PeriodSpan.opened(BillingPeriod.monthly(1), date(2022, 10, 10))
    with pytest.raises(ValueError, match="frequency never changes"):
        span.with_schedule(BillingPeriod.yearly(1, 1), date(2022, 10, 10))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("monthly", 32, None), "--invoice-day 32 is not a day of a month"),
        (("monthly", 5, 3), "--invoice-month is only for yearly periods"),
        (("yearly", 5, None), "needs --invoice-month"),
        (("yearly", 30, 2), "--invoice-day 30 does not exist in February; use 1 to 29"),
        (("weekly", 1, None), "--frequency 'weekly' is unknown"),
    ],
)
def test_a_bad_schedule_names_the_option_and_the_fix(args: tuple[str, int, int | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        period_of(*args)


def test_a_charge_added_on_the_15th_stays_prorated_to_the_old_billing_date() -> None:
    """Seed 004: charge on Oct 15 (billing date the 1st), date moved to the 6th on Oct 20."""
    span = PeriodSpan.opened(BillingPeriod.monthly(1), date(2022, 10, 10))
    before = Charge.added(Decimal("31.00"), date(2022, 10, 15), span, prorate=True)
    moved = span.with_schedule(BillingPeriod.monthly(6), date(2022, 10, 20))
    after = Charge.added(Decimal("36.00"), date(2022, 10, 25), moved, prorate=True)
    assert before.value() == Decimal("17.00")  # 17 of October's 31 days, to Nov 1
    assert after.value() == Decimal("12.00")  # 12 of the 36-day period's days, to Nov 6
    assert Charge.added(Decimal("31.00"), date(2022, 10, 15), span, prorate=False).value() == Decimal("31.00")


def test_a_fee_is_prorated_only_for_its_first_partial_period_never_for_a_date_change() -> None:
    span = PeriodSpan.opened(BillingPeriod.monthly(1), date(2022, 10, 10))
    moved = span.with_schedule(BillingPeriod.monthly(6), date(2022, 10, 20))
    first = fee_value(
        Decimal("36.00"), started_on=date(2022, 10, 10), billed_until=None, span=moved, prorate=True
    )
    assert first == Decimal("27.00")  # Oct 10 to Nov 6: 27 of 36 days
    later = moved.recharged()
    full = fee_value(
        Decimal("36.00"),
        started_on=date(2022, 10, 10),
        billed_until=date(2022, 11, 6),
        span=moved,
        prorate=True,
    )
    assert full == Decimal("36.00")
    assert later.days == 30


def test_recurring_items_take_fee_discounts_by_subscription_name() -> None:
    items = [
        RecurringItem("support", "support", Decimal("10")),
        RecurringItem("backup", "backup", Decimal("4")),
    ]
    discounts = [
        Discount("percentage", Decimal(10), utc(2022, 10, 1), source="fees", resource_kind="support"),
        Discount("fixed", Decimal("5"), utc(2022, 10, 1), source="openstack"),
    ]
    assert [(amount, note) for _, amount, note in discounted_items(items, discounts, "EUR")] == [
        (Decimal("9.00"), ", 10% off"),
        (Decimal("4.00"), ""),
    ]


# -- a recharge -------------------------------------------------------------------------------------------

MONTHLY_ON_1ST = PeriodSpan(BillingPeriod.monthly(1), date(2022, 10, 1), date(2022, 11, 1))


def support(**fields: object) -> Subscription:
    values: dict[str, object] = {
        "id": 3,
        "name": "support",
        "amount": Decimal("30.00"),
        "prorate": False,
        "started_on": date(2022, 9, 20),
        "billed_until": date(2022, 10, 1),
    }
    values.update(fields)
    return Subscription(**values)  # type: ignore[arg-type]


def recharged(
    subscriptions: list[Subscription],
    *,
    charges: tuple[PendingCharge, ...] = (),
    terms: ClientTerms | None = None,
    plan_fees: dict[str, dict[str, Decimal]] | None = None,
    periods: int | None = None,
    charged: int = 0,
    zero: bool = False,
) -> Recharge:
    return recharge(
        client_id=42,
        period_id=7,
        span=MONTHLY_ON_1ST,
        charged=charged,
        periods=periods,
        subscriptions=subscriptions,
        charges=charges,
        terms=terms or ClientTerms(),
        plan_fees=plan_fees or {},
        currency="EUR",
        invoice_zero_amounts=zero,
        zone="Europe/Berlin",
    )


def test_a_recharge_bills_the_span_that_ends_on_the_recharge_date_and_starts_the_next() -> None:
    done = recharged([support()])
    assert done.invoice is not None
    assert done.invoice.reference == "BB-42-P7-2022-11-01"
    assert done.invoice.notes == "BB-42-P7-2022-11-01: recurring charges 2022-10-01 to 2022-10-31"
    assert [(item.description, item.amount) for item in done.invoice.items] == [
        ("support 2022-10-01 to 2022-10-31", Decimal("30.00"))
    ]
    (line,) = done.invoice.lines
    assert (line.source, line.line_reference, line.resource_id) == ("fees", "fee:3", "subscription:3")
    assert done.invoice.period == (utc(2022, 9, 30, 22), utc(2022, 10, 31, 23))
    assert done.next_span == PeriodSpan(BillingPeriod.monthly(1), date(2022, 11, 1), date(2022, 12, 1))
    assert (done.subscriptions, done.charged, done.ended_on) == ((3,), 1, None)


def test_the_plan_in_force_at_the_span_end_sets_the_fee_and_fee_discounts_apply() -> None:
    terms = ClientTerms(
        assignments=(PlanAssignment("gold", utc(2022, 10, 15)),),
        discounts=(Discount("percentage", Decimal(10), utc(2022, 10, 1), source="fees"),),
    )
    done = recharged([support()], terms=terms, plan_fees={"gold": {"support": Decimal("20.00")}})
    assert done.invoice is not None
    assert [(item.description, item.amount) for item in done.invoice.items] == [
        ("support 2022-10-01 to 2022-10-31, 10% off", Decimal("18.00"))
    ]
    assert done.invoice.lines[0].plan == "gold"


def test_a_charge_added_during_the_span_is_billed_with_it_and_marked_billed() -> None:
    charge = PendingCharge(
        9, 3, "setup", Charge.added(Decimal("10.00"), date(2022, 10, 16), MONTHLY_ON_1ST, True)
    )
    done = recharged([support()], charges=(charge,))
    assert done.invoice is not None
    assert [(item.description, item.amount) for item in done.invoice.items][1] == (
        "setup, prorated 2022-10-16 to 2022-11-01",
        Decimal("5.16"),
    )
    assert done.charges == (9,)


def test_a_subscription_started_on_the_recharge_day_waits_for_the_next_one() -> None:
    done = recharged([support(started_on=date(2022, 11, 1), billed_until=None)])
    assert done.invoice is None and done.subscriptions == () and done.total == 0


def test_a_zero_recharge_issues_no_invoice_unless_the_configuration_issues_zero_invoices() -> None:
    free = [support(amount=Decimal(0))]
    assert recharged(free).invoice is None
    assert recharged(free, zero=True).invoice is not None


def test_an_empty_period_only_moves_its_dates_and_the_last_recharge_ends_a_limited_one() -> None:
    empty = recharged([])
    assert (empty.invoice, empty.charged, empty.next_span.started_on) == (None, None, date(2022, 11, 1))
    assert recharged([support()], periods=3, charged=2).ended_on == date(2022, 11, 1)
