"""Seed 004 through the service layer: billing periods, moving billing dates, and what they bill."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.errors import InputError, NotFound
from bridge.services.periods import NewPeriod
from bridge.store.tables import invoice_lines, invoices, subscriptions
from tests.support.invoicing import PRICING

PLANS = {"gold": {"fees": {"support": "8.00"}}}


class Periods:
    def __init__(self, app: App) -> None:
        self.app = app
        self.service = app.periods
        self.plans = app.plans
        self.client = app.clients.add(email="ops@acme.com", name="Acme")

    def lines(self, reference: str) -> list[tuple[str, Decimal]]:
        with self.app.engine.connect() as connection:
            invoice_id = connection.scalar(select(invoices.c.id).where(invoices.c.reference == reference))
            rows = connection.execute(
                select(invoice_lines.c.description, invoice_lines.c.amount)
                .where(invoice_lines.c.invoice_id == invoice_id)
                .order_by(invoice_lines.c.position)
            )
            return [(row.description, row.amount) for row in rows]


@pytest.fixture
def periods(make_app: Callable[..., App], clock: FixedClock) -> Callable[..., Periods]:
    def build(**sections: dict[str, Any]) -> Periods:
        sections.setdefault("pricing", PRICING)
        sections.setdefault("plans", PLANS)
        return Periods(make_app(**sections))

    return build


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_a_new_period_is_empty_shows_its_next_recharge_and_bills_nothing(
    periods: Callable[..., Periods], clock: FixedClock
) -> None:
    clock.set(at(2022, 10, 10))
    p = periods()
    view = p.service.create(str(p.client.id), frequency="monthly", invoice_day=15)
    span = view.period.span
    assert (span.started_on, span.next_recharge_on, view.subscriptions) == (
        date(2022, 9, 15),
        date(2022, 10, 15),
        (),
    )
    clock.set(at(2022, 11, 20))
    (rolled, rolled_again) = p.service.recharge()
    assert (rolled.reference, rolled_again.reference) == (None, None)
    assert p.service.get(view.period.id).period.span.next_recharge_on == date(2022, 12, 15)
    assert p.service.get(view.period.id).period.charged == 0


def test_moving_the_1st_to_the_6th_lengthens_the_period_to_36_days_at_no_extra_charge(
    periods: Callable[..., Periods], clock: FixedClock
) -> None:
    clock.set(at(2022, 10, 1))
    p = periods()
    period = p.service.create(str(p.client.id), frequency="monthly", invoice_day=1).period
    p.service.subscribe(str(p.client.id), name="support", amount="31.00", period_id=period.id)
    clock.set(at(2022, 10, 20))
    with capture_logs() as logs:
        change = p.service.modify(period.id, invoice_day=6)
    assert [
        (entry["event"], entry["next_recharge_before"], entry["next_recharge_after"]) for entry in logs
    ] == [("billing date changed", "2022-11-01", "2022-11-06")]
    assert (change.after.started_on, change.after.next_recharge_on, change.after.days, change.days_added) == (
        date(2022, 10, 1),
        date(2022, 11, 6),
        36,
        5,
    )
    clock.set(at(2022, 11, 1))
    assert [item.reference for item in p.service.recharge()] == []
    clock.set(at(2022, 11, 6))
    with capture_logs() as logs:
        (recharge,) = p.service.recharge()
    assert recharge.reference == f"BB-{p.client.id}-P{period.id}-2022-11-06"
    assert [entry for entry in logs if entry["event"] == "period recharged"] == [
        {
            "event": "period recharged",
            "log_level": "info",
            "period": period.id,
            "client": p.client.id,
            "on": "2022-11-06",
            "reference": recharge.reference,
        }
    ]
    assert p.lines(recharge.reference) == [("support 2022-10-01 to 2022-11-05", Decimal("31.00"))]
    assert p.service.get(period.id).period.span.next_recharge_on == date(2022, 12, 6)
    assert p.service.recharge() == [], "a recharge is made once"


def test_moving_the_30th_to_the_22nd_on_the_20th_shortens_the_period_by_8_days_unprorated(
    periods: Callable[..., Periods], clock: FixedClock
) -> None:
    clock.set(at(2022, 10, 30))
    p = periods()
    period = p.service.create(str(p.client.id), frequency="monthly", invoice_day=30).period
    p.service.subscribe(str(p.client.id), name="support", amount="30.00", period_id=period.id)
    clock.set(at(2022, 11, 20))
    change = p.service.modify(period.id, invoice_day=22)
    assert (change.before.next_recharge_on, change.after.next_recharge_on, change.days_added) == (
        date(2022, 11, 30),
        date(2022, 11, 22),
        -8,
    )
    clock.set(at(2022, 11, 22))
    (recharge,) = p.service.recharge()
    assert recharge.total == Decimal("30.00")


def test_a_charge_added_on_the_15th_is_prorated_to_the_old_date_and_later_ones_to_the_new(
    periods: Callable[..., Periods], clock: FixedClock
) -> None:
    clock.set(at(2022, 10, 1))
    p = periods()
    period = p.service.create(str(p.client.id), frequency="monthly", invoice_day=1).period
    support = p.service.subscribe(str(p.client.id), name="support", amount="10.00", period_id=period.id)
    clock.set(at(2022, 10, 15))
    before = p.service.charge(support.id, amount="31.00", description="extra IPs", prorate=True)
    assert (before.bills, before.charge.bill_until) == (Decimal("17.00"), date(2022, 11, 1))
    clock.set(at(2022, 10, 20))
    p.service.modify(period.id, invoice_day=6)
    clock.set(at(2022, 10, 25))
    after = p.service.charge(support.id, amount="36.00", description="more IPs", prorate=True)
    assert (after.bills, after.charge.bill_until) == (Decimal("12.00"), date(2022, 11, 6))

    clock.set(at(2022, 11, 6))
    (recharge,) = p.service.recharge()
    assert p.lines(str(recharge.reference)) == [
        ("support 2022-10-01 to 2022-11-05", Decimal("10.00")),
        ("extra IPs, prorated 2022-10-15 to 2022-11-01", Decimal("17.00")),
        ("more IPs, prorated 2022-10-25 to 2022-11-06", Decimal("12.00")),
    ]
    assert recharge.total == Decimal("39.00")
    clock.set(at(2022, 11, 10))
    later = p.service.charge(support.id, amount="30.00", description="backup", prorate=True)
    assert (later.bills, later.charge.span_start, later.charge.bill_until) == (
        Decimal("26.00"),
        date(2022, 11, 6),
        date(2022, 12, 6),
    )


def test_a_subscriptions_frequency_never_changes(periods: Callable[..., Periods], clock: FixedClock) -> None:
    clock.set(at(2022, 10, 1))
    p = periods()
    monthly = p.service.create(str(p.client.id), frequency="monthly", invoice_day=1).period
    yearly = p.service.create(str(p.client.id), frequency="yearly", invoice_day=1, invoice_month=1).period
    support = p.service.subscribe(str(p.client.id), name="support", amount="10.00", period_id=monthly.id)
    message = (
        f"subscription {support.id} (support) is monthly and period {yearly.id} is yearly; a subscription's "
        "frequency never changes: move it to a monthly period"
    )
    with pytest.raises(InputError, match=re.escape(message)):
        p.service.move(support.id, to=yearly.id)
    with pytest.raises(InputError, match="frequency never changes"):
        p.service.move(support.id, new=NewPeriod(invoice_day=1, invoice_month=1, frequency="yearly"))
    assert [view.period.id for view in p.service.of_client(str(p.client.id))[1]] == [monthly.id, yearly.id]
    assert p.service.get(monthly.id).subscriptions == (support,)

    moved = p.service.move(support.id, new=NewPeriod(invoice_day=15))
    assert (moved.period.frequency, moved.period.span.next_recharge_on) == ("monthly", date(2022, 10, 15))
    assert [item.id for item in moved.subscriptions] == [support.id]


def test_only_an_empty_period_can_be_deleted_and_then_it_is_gone_for_good(
    periods: Callable[..., Periods], clock: FixedClock
) -> None:
    clock.set(at(2022, 10, 1))
    p = periods()
    first = p.service.create(str(p.client.id), frequency="monthly", invoice_day=1).period
    second = p.service.create(str(p.client.id), frequency="monthly", invoice_day=9).period
    support = p.service.subscribe(str(p.client.id), name="support", amount="10.00", period_id=first.id)
    with pytest.raises(
        InputError, match=f"period {first.id} still holds subscription\\(s\\) {support.id}; move"
    ):
        p.service.delete(first.id)
    assert p.service.get(first.id).subscriptions == (support,)
    p.service.move(support.id, to=second.id)
    p.service.delete(first.id)
    with pytest.raises(NotFound, match=f"no billing period {first.id}"):
        p.service.get(first.id)
    with pytest.raises(NotFound):
        p.service.modify(first.id, invoice_day=3)
    with p.app.engine.connect() as connection:
        assert connection.scalar(select(subscriptions.c.period_id)) == second.id


def test_a_yearly_period_on_feb_29_recharges_on_feb_28_outside_leap_years(
    periods: Callable[..., Periods], clock: FixedClock
) -> None:
    clock.set(at(2023, 3, 1))
    p = periods()
    with pytest.raises(InputError, match="--invoice-day 30 does not exist in February; use 1 to 29"):
        p.service.create(str(p.client.id), frequency="yearly", invoice_day=30, invoice_month=2)
    with pytest.raises(InputError, match="needs --invoice-month"):
        p.service.create(str(p.client.id), frequency="yearly", invoice_day=29)
    period = p.service.create(str(p.client.id), frequency="yearly", invoice_day=29, invoice_month=2).period
    assert (period.span.started_on, period.span.next_recharge_on) == (date(2023, 2, 28), date(2024, 2, 29))
    p.service.subscribe(str(p.client.id), name="domain", amount="120.00", period_id=period.id, prorate=True)
    clock.set(at(2024, 2, 29))
    (recharge,) = p.service.recharge()
    assert p.lines(str(recharge.reference)) == [
        ("domain 2023-02-28 to 2024-02-28, prorated from 2023-03-01", Decimal("119.67"))  # 365 of 366 days
    ]
    assert p.service.get(period.id).period.span.next_recharge_on == date(2025, 2, 28)
    clock.set(at(2025, 2, 28))
    (second,) = p.service.recharge()
    assert second.total == Decimal("120.00")


def test_a_plans_fee_and_a_fees_discount_price_a_subscription(
    periods: Callable[..., Periods], clock: FixedClock
) -> None:
    clock.set(at(2022, 10, 1))
    p = periods()
    period = p.service.create(str(p.client.id), frequency="monthly", invoice_day=1, periods=2).period
    p.service.subscribe(str(p.client.id), name="support", amount="10.00", period_id=period.id)
    p.service.subscribe(str(p.client.id), name="backup", amount="4.00", period_id=period.id)
    p.plans.assign(str(p.client.id), "gold", "now")
    p.plans.add_discount(
        str(p.client.id), percent="50", amount=None, start="now", source="fees", resource_kind="backup"
    )
    clock.set(at(2022, 11, 1))
    (october,) = p.service.recharge()
    assert p.lines(str(october.reference)) == [
        ("support 2022-10-01 to 2022-10-31", Decimal("8.00")),
        ("backup 2022-10-01 to 2022-10-31, 50% off", Decimal("2.00")),
    ]
    clock.set(at(2023, 1, 5))
    (november,) = p.service.recharge()  # a term of 2 periods: December is not billed
    assert (november.span.started_on, november.total) == (date(2022, 11, 1), Decimal("10.00"))
    ended = p.service.get(period.id).period
    assert (ended.charged, ended.ended_on) == (2, date(2022, 12, 1))
    with pytest.raises(InputError, match="ended on 2022-12-01"):
        p.service.modify(period.id, invoice_day=3)


def test_a_recharge_dry_run_shows_the_invoice_the_real_recharge_then_issues_and_changes_nothing(
    periods: Callable[..., Periods], clock: FixedClock
) -> None:
    clock.set(at(2022, 10, 1))
    p = periods()
    period = p.service.create(str(p.client.id), frequency="monthly", invoice_day=1).period
    p.service.subscribe(str(p.client.id), name="support", amount="10.00", period_id=period.id)
    clock.set(at(2022, 11, 1))
    previews = [p.service.recharge(dry_run=True) for _ in range(2)]
    assert p.service.get(period.id).period.span.next_recharge_on == date(2022, 11, 1)
    real = p.service.recharge()
    assert previews[0] == previews[1] == real
    assert p.lines(str(real[0].reference)) == [("support 2022-10-01 to 2022-10-31", Decimal("10.00"))]
