"""The part of a usage window a suspended client is billed for: each window's share inside a suspension
is left out, its hours (and tokens) spread evenly over the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bridge.domain.suspension import Suspension, billable_part, time_inside
from bridge.domain.usage import UsageRecord, Window

T0 = datetime(2022, 10, 21, 10, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def record(start: datetime, hours: str = "1", tokens: str | None = None) -> UsageRecord:
    return UsageRecord(
        "openstack" if tokens is None else "solusvm",
        "vm-1",
        "web-1",
        "p-1",
        "m1.large",
        Window(start, start + HOUR),
        Decimal(hours),
        None if tokens is None else Decimal(tokens),
    )


def suspended(start: datetime, end: datetime | None = None) -> Suspension:
    return Suspension(1, start, end, "up-to-date credit under the credit limit", "process_clients")


def test_a_window_outside_every_suspension_is_billed_whole() -> None:
    window = record(T0)
    assert billable_part(window, [suspended(T0 + HOUR, T0 + 5 * HOUR)]) is window
    assert billable_part(window, []) is window


def test_a_window_inside_a_suspension_is_not_billed() -> None:
    assert billable_part(record(T0), [suspended(T0 - HOUR)]) is None  # still suspended
    assert billable_part(record(T0), [suspended(T0, T0 + HOUR)]) is None


def test_suspended_at_10_15_an_hour_window_of_10_00_bills_its_first_quarter() -> None:
    part = billable_part(record(T0, hours="0.8"), [suspended(T0 + 15 * MINUTE)])
    assert part is not None
    assert part.hours == Decimal("0.2")  # 0.8 h reported, 15 of its 60 minutes before the suspension
    assert part.window == record(T0).window  # the window stays as collected


def test_resumed_at_10_40_the_last_20_minutes_are_billed_with_their_tokens() -> None:
    part = billable_part(record(T0, hours="1", tokens="7"), [suspended(T0 - HOUR, T0 + 40 * MINUTE)])
    assert part is not None
    assert (part.hours, part.tokens) == (Decimal(1) / 3, Decimal(7) / 3)


def test_two_suspensions_in_one_window_each_take_their_share() -> None:
    spans = [suspended(T0, T0 + 10 * MINUTE), suspended(T0 + 30 * MINUTE, T0 + 45 * MINUTE)]
    part = billable_part(record(T0, hours="0.6"), spans)
    assert part is not None and part.hours == Decimal("0.35")  # 35 of 60 minutes: 0.6 x 35/60
    assert time_inside(T0, T0 + HOUR, spans, T0 + HOUR) == 25 * MINUTE
