"""The uptime rule: every UTC clock hour a server was seen running or was created in is billed once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.usage import UsageRecord, Window
from bridge.solusvm.client import Plan, Server
from bridge.solusvm.uptime import (
    Observation,
    hour_window,
    hours_to_bill,
    observe,
    records_for_server,
    to_usage_records,
)

MARCH = Window(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
LONG_AGO = datetime(2023, 1, 1, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, minute, second, tzinfo=UTC)


def running(*instants: datetime, plan_id: int | None = None) -> list[Observation]:
    return [Observation(instant, "started", plan_id) for instant in instants]


def stopped(*instants: datetime) -> list[Observation]:
    return [Observation(instant, "stopped") for instant in instants]


def test_created_mid_hour_is_billed_for_that_hour() -> None:
    assert hours_to_bill([], created_at=at(5, 10, 40), window=MARCH) == [at(5, 10)]


def test_stopped_all_hour_is_not_billed() -> None:
    observations = running(at(5, 10, 50)) + stopped(at(5, 11, 5), at(5, 11, 20), at(5, 11, 35), at(5, 11, 50))
    assert hours_to_bill(observations, created_at=LONG_AGO, window=MARCH) == [at(5, 10)]


def test_seen_running_many_times_in_an_hour_is_billed_once() -> None:
    observations = running(*(at(5, 10, minute) for minute in range(0, 60, 5)))
    assert hours_to_bill(observations, created_at=LONG_AGO, window=MARCH) == [at(5, 10)]


def test_a_five_minute_server_is_billed_one_hour() -> None:
    observations = running(at(5, 10, 5)) + stopped(at(5, 10, 7))
    assert hours_to_bill(observations, created_at=at(5, 10, 2), window=MARCH) == [at(5, 10)]


def test_a_five_minute_server_never_seen_running_is_still_billed_its_hour() -> None:
    assert hours_to_bill(stopped(at(5, 10, 59)), created_at=at(5, 10, 54), window=MARCH) == [at(5, 10)]


def test_clock_hours_not_hours_since_start() -> None:
    observations = running(at(5, 10, 50), at(5, 11, 10))
    assert hours_to_bill(observations, created_at=LONG_AGO, window=MARCH) == [at(5, 10), at(5, 11)]


def test_stop_and_start_within_an_hour_is_billed_once() -> None:
    observations = running(at(5, 10, 5)) + stopped(at(5, 10, 20)) + running(at(5, 10, 40))
    assert hours_to_bill(observations, created_at=LONG_AGO, window=MARCH) == [at(5, 10)]


@pytest.mark.parametrize("status", ["stopped", "processing", "paused", "unavailable", "not exists"])
def test_only_started_counts_as_running(status: str) -> None:
    assert hours_to_bill([Observation(at(5, 10, 5), status)], created_at=LONG_AGO, window=MARCH) == []


def test_an_hour_without_any_poll_is_not_billed() -> None:
    observations = running(at(5, 10, 5), at(5, 13, 5))
    assert hours_to_bill(observations, created_at=LONG_AGO, window=MARCH) == [at(5, 10), at(5, 13)]


def test_month_edges() -> None:
    february = Window(datetime(2024, 2, 1, tzinfo=UTC), MARCH.start)
    april = Window(MARCH.end, datetime(2024, 5, 1, tzinfo=UTC))
    observations = running(
        at(29, 23, 45, month=2),
        at(1, 0, 10),
        at(31, 23, 59, 59),
        at(1, 0, 0, 0, month=4),
    )
    created = at(29, 23, 30, month=2)

    assert hours_to_bill(observations, created, february) == [at(29, 23, month=2)]
    assert hours_to_bill(observations, created, MARCH) == [at(1, 0), at(31, 23)]
    assert hours_to_bill(observations, created, april) == [at(1, 0, month=4)]


def test_observations_outside_the_window_are_ignored() -> None:
    observations = running(at(29, 12, month=2), at(2, 12, month=4))
    assert hours_to_bill(observations, created_at=at(29, 11, month=2), window=MARCH) == []


def test_an_hour_across_a_window_edge_goes_to_the_window_it_starts_in() -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    edge = datetime(2024, 4, 1, tzinfo=kolkata)  # 2024-03-31 18:30 UTC
    before = Window(datetime(2024, 3, 1, tzinfo=kolkata), edge)
    after = Window(edge, datetime(2024, 5, 1, tzinfo=kolkata))
    observations = running(at(31, 18, 45))  # after the edge, in the hour that began before it

    assert hours_to_bill(observations, LONG_AGO, before) == [at(31, 18)]
    assert hours_to_bill(observations, LONG_AGO, after) == []


instants = st.datetimes(
    min_value=datetime(2024, 2, 25), max_value=datetime(2024, 3, 5), timezones=st.just(UTC)
)


@given(
    running_at=st.lists(instants, max_size=30),
    created_at=instants,
    split=st.integers(min_value=1, max_value=9 * 24 * 60 - 1),
)
def test_tiling_windows_bill_every_hour_exactly_once(
    running_at: list[datetime], created_at: datetime, split: int
) -> None:
    whole = Window(datetime(2024, 2, 25, tzinfo=UTC), datetime(2024, 3, 6, tzinfo=UTC))
    edge = whole.start + timedelta(minutes=split)
    observations = running(*running_at)

    first = hours_to_bill(observations, created_at, Window(whole.start, edge))
    second = hours_to_bill(observations, created_at, Window(edge, whole.end))

    assert not set(first) & set(second)
    assert first + second == hours_to_bill(observations, created_at, whole)


def test_naive_observation_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        Observation(datetime(2024, 3, 5, 10), "started")


# --------------------------------------------------------------------------- usage records


def test_records_one_per_billed_hour_at_the_plan_rate() -> None:
    records = to_usage_records(
        server_id=17,
        server_name="vps-17",
        user_id=4,
        plan_id=2,
        created_at=at(5, 9, 58),
        observations=running(at(5, 10, 5), at(5, 10, 35)),
        window=MARCH,
        tokens_per_hour={2: 7},
    )

    assert records == [
        UsageRecord(
            source="solusvm",
            resource_id="17",
            resource_name="vps-17",
            owner="4",
            plan="2",
            window=hour_window(at(5, hour)),
            hours=Decimal(1),
            tokens=Decimal(7),
        )
        for hour in (9, 10)
    ]


def test_a_plan_change_bills_the_hour_at_the_plan_last_seen_running() -> None:
    observations = (
        running(at(5, 10, 5), plan_id=1)
        + running(at(5, 10, 50), plan_id=2)
        + running(at(5, 10, 20), plan_id=1)  # order of arrival does not matter, the instant does
        + running(at(5, 11, 5), plan_id=1)
    )
    records = to_usage_records(
        server_id=1,
        server_name="vps",
        user_id=1,
        plan_id=1,
        created_at=LONG_AGO,
        observations=observations,
        window=MARCH,
        tokens_per_hour={1: 3, 2: 9},
    )
    assert [(r.window.start, r.plan, r.tokens) for r in records] == [
        (at(5, 10), "2", Decimal(9)),
        (at(5, 11), "1", Decimal(3)),
    ]


def test_a_plan_without_a_rate_is_an_error_not_a_free_hour() -> None:
    with pytest.raises(ValueError, match="no tokens_per_hour for plan 5 of SolusVM server 1"):
        to_usage_records(
            server_id=1,
            server_name="vps",
            user_id=1,
            plan_id=5,
            created_at=at(5, 10),
            observations=[],
            window=MARCH,
            tokens_per_hour={1: 3},
        )


def test_records_for_a_listed_server() -> None:
    server = Server(
        id=3,
        uuid="u-3",
        name="web",
        status="started",
        is_suspended=False,
        user_id=8,
        user_email="ann@example.com",
        plan_id=2,
        created_at=at(5, 10, 30),
    )
    plan = Plan(2, "Small", 7, 5000, 0, 0, Decimal("0.00100"), None)

    records = records_for_server(server, [observe(server, at(5, 11, 15))], MARCH, [plan])

    assert [(r.window.start, r.owner, r.tokens) for r in records] == [
        (at(5, 10), "8", Decimal(7)),
        (at(5, 11), "8", Decimal(7)),
    ]
    assert all(r.hours == Decimal(1) for r in records)
