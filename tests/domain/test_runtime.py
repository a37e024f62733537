"""SolusVM runtime from evidence: the numbers of issue 14, and how each kind of evidence counts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bridge.domain.money import round_money
from bridge.domain.pricing import PlanRate, capped_tokens
from bridge.domain.runtime import (
    Change,
    Event,
    Evidence,
    Interval,
    IpInterval,
    MonthRuntime,
    Poll,
    PowerState,
    bound_by_log_order,
    build_timeline,
    month_runtime,
    started_hours,
)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
OCTOBER = (datetime(2022, 10, 1, tzinfo=UTC), datetime(2022, 11, 1, tzinfo=UTC))
TWO_PER_HOUR = PlanRate(tokens_per_hour=2)
TOKEN_PRICE = Decimal("0.01")
RUNNING = PowerState.RUNNING
STOPPED = PowerState.STOPPED
SUSPENDED = PowerState.SUSPENDED


def at(day: int, hour: int = 0, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2022, month, day, hour, minute, tzinfo=UTC)


def every(step: timedelta, start: datetime, end: datetime) -> list[datetime]:
    """``start``, ``start + step``, ... up to and including ``end``."""
    instants = []
    instant = start
    while instant <= end:
        instants.append(instant)
        instant += step
    return instants


def polls(instants: Iterable[datetime], state: PowerState = RUNNING) -> tuple[Poll, ...]:
    return tuple(Poll(instant, state) for instant in instants)


def october(
    evidence: Evidence,
    rate: PlanRate = TWO_PER_HOUR,
    *,
    ip_rate: PlanRate | None = None,
    suspended_billed: bool = False,
) -> MonthRuntime:
    timeline = build_timeline(evidence)
    return month_runtime(timeline, *OCTOBER, rate, ip_rate=ip_rate, suspended_billed=suspended_billed)


def amount(tokens: int) -> Decimal:
    return round_money(tokens * TOKEN_PRICE, "USD")


SEPTEMBER_SERVER = at(20, 12, month=9)


# --------------------------------------------------------------------------- issue 14's numbers


@pytest.mark.parametrize(
    "seen",
    [
        pytest.param(every(DAY, at(30, 6, month=9), at(1, 6, month=11)), id="polls 24 h apart"),
        pytest.param(every(HOUR, at(30, 23, month=9), at(1, 0, month=11)), id="polls every hour"),
        pytest.param(
            [i for i in every(HOUR, at(30, 23, month=9), at(1, 0, month=11)) if not at(9) < i < at(12)],
            id="a three-day gap without a poll",
        ),
    ],
)
def test_a_server_running_all_october_is_744_hours(seen: list[datetime]) -> None:
    bill = october(Evidence(SEPTEMBER_SERVER, polls(seen)))

    assert (bill.runtime, bill.billed_hours, bill.tokens) == (timedelta(hours=744), 744, 1488)
    assert amount(bill.tokens) == Decimal("14.88")
    assert not bill.capped


def test_the_monthly_cap_lowers_the_tokens() -> None:
    seen = every(DAY, at(30, 6, month=9), at(1, 6, month=11))

    bill = october(Evidence(SEPTEMBER_SERVER, polls(seen)), PlanRate(2, tokens_per_month=1000))

    assert (bill.billed_hours, bill.tokens, bill.capped) == (744, 1000, True)
    assert amount(bill.tokens) == Decimal("10.00")


def test_created_and_deleted_two_days_later_is_48_hours() -> None:
    created, deleted = at(10, 8, 30), at(12, 8, 10)
    evidence = Evidence(
        created,
        polls(every(HOUR, at(10, 9), at(12, 8))),
        (Event(Change.DELETED, deleted),),
    )

    bill = october(evidence)

    assert bill.runtime == timedelta(hours=47, minutes=40)
    assert (bill.billed_hours, bill.tokens, amount(bill.tokens)) == (48, 96, Decimal("0.96"))


def test_created_and_deleted_with_polls_a_day_apart_is_still_48_hours() -> None:
    evidence = Evidence(at(10, 8, 30), polls([at(11, 6)]), (Event(Change.DELETED, at(12, 8, 10)),))

    assert october(evidence).billed_hours == 48


def test_stopped_for_a_week_bills_only_the_running_hours() -> None:
    seen = every(DAY, at(30, 6, month=9), at(1, 6, month=11))
    stopped_week = (
        Event(Change.STOPPED, at(10, 12)),
        Event(Change.STARTED, at(17, 12)),
    )
    evidence = Evidence(
        SEPTEMBER_SERVER,
        tuple(Poll(i, STOPPED if at(10, 12) < i < at(17, 12) else RUNNING) for i in seen),
        stopped_week,
    )

    bill = october(evidence)

    assert bill.runtime == timedelta(hours=744 - 7 * 24)
    assert (bill.billed_hours, bill.tokens) == (576, 1152)


@pytest.mark.parametrize(("hours", "tokens"), [(744, 5000), (700, 4900)])
def test_seven_tokens_an_hour_capped_at_5000(hours: int, tokens: int) -> None:
    assert capped_tokens(hours, PlanRate(7, tokens_per_month=5000)) == tokens


def test_no_monthly_cap_when_tokens_per_month_is_none() -> None:
    assert capped_tokens(744, PlanRate(7, tokens_per_month=None)) == 5208


@pytest.mark.parametrize(
    ("runtime", "hours"),
    [(timedelta(0), 0), (timedelta(minutes=5), 1), (HOUR, 1), (HOUR + timedelta(seconds=1), 2)],
)
def test_any_started_hour_is_billed_in_full(runtime: timedelta, hours: int) -> None:
    assert started_hours(runtime) == hours


# --------------------------------------------------------------------------- carrying and gaps


def test_the_state_carries_between_two_observations() -> None:
    timeline = build_timeline(Evidence(None, polls([at(3, 10), at(6, 10)])))

    assert timeline.intervals == (Interval(at(3, 10), at(6, 10), RUNNING),)


def test_a_change_between_two_polls_with_no_record_is_unknown_and_not_billed() -> None:
    evidence = Evidence(None, (Poll(at(3, 10), RUNNING), Poll(at(6, 10), STOPPED), Poll(at(7, 10), STOPPED)))

    assert build_timeline(evidence).intervals == (
        Interval(at(3, 10), at(6, 10), PowerState.UNKNOWN),
        Interval(at(6, 10), at(7, 10), STOPPED),
    )
    assert october(evidence).runtime == timedelta(0)


def test_nothing_is_carried_past_the_last_evidence() -> None:
    evidence = Evidence(at(3, 10), polls([at(3, 11), at(4, 11)]))

    bill = october(evidence)

    assert bill.runtime == timedelta(hours=25)


def test_a_server_that_disappears_without_a_delete_event_is_billed_until_last_seen_running() -> None:
    evidence = Evidence(at(3, 10, 30), polls(every(HOUR, at(3, 11), at(5, 11))))

    assert october(evidence).runtime == timedelta(hours=48, minutes=30)


def test_an_event_at_the_same_instant_as_a_poll_comes_first() -> None:
    evidence = Evidence(
        at(3, 10),
        (Poll(at(4, 10), STOPPED), Poll(at(5, 10), STOPPED)),
        (Event(Change.STOPPED, at(4, 10)),),
    )

    assert october(evidence).runtime == DAY


# --------------------------------------------------------------------------- changes without a timestamp


def test_a_stop_without_a_timestamp_bills_nothing_of_the_gap_it_may_lie_in() -> None:
    evidence = Evidence(
        at(1),
        polls([at(2), at(3), at(4)]) + polls([at(5), at(6)], STOPPED),
        bound_by_log_order([Event(Change.STOPPED)]),
    )

    assert build_timeline(evidence).intervals == (
        Interval(at(1), at(5), PowerState.UNKNOWN),
        Interval(at(5), at(6), STOPPED),
    )


def test_an_untimed_stop_between_timed_neighbours_only_touches_their_gap() -> None:
    log = bound_by_log_order(
        [
            Event(Change.STOPPED, at(1, 12)),
            Event(Change.STARTED, at(2)),
            Event(Change.STOPPED),
            Event(Change.STARTED, at(4)),
        ]
    )
    evidence = Evidence(at(1), (Poll(at(1, 6), RUNNING), Poll(at(5), RUNNING)), log)

    timeline = build_timeline(evidence)

    assert log[2] == Event(Change.STOPPED, None, not_before=at(2), not_after=at(4))
    assert timeline.intervals == (
        Interval(at(1), at(1, 12), RUNNING),
        Interval(at(1, 12), at(2), STOPPED),
        Interval(at(2), at(4), PowerState.UNKNOWN),
        Interval(at(4), at(5), RUNNING),
    )


def test_a_start_after_running_means_a_stop_went_unrecorded() -> None:
    evidence = Evidence(at(1), polls([at(2), at(4)]), (Event(Change.STARTED, at(3)),))

    assert [(i.end, i.state) for i in build_timeline(evidence).intervals] == [
        (at(2), RUNNING),
        (at(3), PowerState.UNKNOWN),
        (at(4), RUNNING),
    ]


def test_an_untimed_start_is_placed_as_late_as_the_evidence_allows() -> None:
    evidence = Evidence(
        None,
        (Poll(at(2), STOPPED), Poll(at(3), RUNNING), Poll(at(4), RUNNING)),
        (Event(Change.STARTED, not_before=at(2, 6), not_after=at(3)),),
    )

    assert october(evidence).runtime == DAY  # from the poll that saw it running, not from 06:00


def test_a_restart_without_a_timestamp_does_not_break_running() -> None:
    evidence = Evidence(None, polls([at(2), at(4)]), (Event(Change.RESTARTED),))

    assert october(evidence).runtime == 2 * DAY


def test_bounds_come_from_the_neighbours_in_the_log() -> None:
    log = [
        Event(Change.CREATED, at(1)),
        Event(Change.STOPPED, not_after=at(9)),
        Event(Change.STARTED),
        Event(Change.STOPPED, at(5)),
    ]

    assert bound_by_log_order(log) == (
        log[0],
        Event(Change.STOPPED, None, not_before=at(1), not_after=at(5)),
        Event(Change.STARTED, None, not_before=at(1), not_after=at(5)),
        log[3],
    )


# --------------------------------------------------------------------------- suspension


def suspended_for_a_day() -> Evidence:
    return Evidence(
        at(1),
        polls([at(2), at(5)]),
        (Event(Change.SUSPENDED, at(3)), Event(Change.RESUMED, at(4))),
    )


def test_suspended_hours_are_not_billed_by_default() -> None:
    assert october(suspended_for_a_day()).runtime == 3 * DAY


def test_suspended_hours_are_billed_when_the_setting_says_so() -> None:
    assert october(suspended_for_a_day(), suspended_billed=True).runtime == 4 * DAY


def test_resuming_returns_to_the_state_before_the_suspension() -> None:
    evidence = Evidence(
        at(1),
        (Poll(at(2), STOPPED), Poll(at(5), STOPPED)),
        (Event(Change.STOPPED, at(1, 12)), Event(Change.SUSPENDED, at(3)), Event(Change.RESUMED, at(4))),
    )

    assert [i.state for i in build_timeline(evidence).intervals] == [RUNNING, STOPPED, SUSPENDED, STOPPED]


# --------------------------------------------------------------------------- months


def test_a_run_across_the_month_edge_rounds_up_in_each_month() -> None:
    evidence = Evidence(
        at(30, 23, 30, month=9),
        polls([at(1, 0, 20)]),
        (Event(Change.DELETED, at(1, 0, 20)),),
    )
    timeline = build_timeline(evidence)

    september = month_runtime(timeline, at(1, month=9), OCTOBER[0], TWO_PER_HOUR)
    bill = month_runtime(timeline, *OCTOBER, TWO_PER_HOUR)

    assert (september.runtime, september.billed_hours) == (timedelta(minutes=30), 1)
    assert (bill.runtime, bill.billed_hours) == (timedelta(minutes=20), 1)


def test_an_empty_or_reversed_month_is_refused() -> None:
    with pytest.raises(ValueError, match="not after its start"):
        month_runtime(build_timeline(Evidence(None)), OCTOBER[1], OCTOBER[0], TWO_PER_HOUR)


# --------------------------------------------------------------------------- observed and inferred


def test_daily_polls_observe_one_hour_a_day_and_infer_the_rest() -> None:
    bill = october(Evidence(SEPTEMBER_SERVER, polls(every(DAY, at(30, 6, month=9), at(1, 6, month=11)))))

    assert (bill.observed_hours, bill.inferred_hours) == (31, 744 - 31)


def test_hourly_polls_observe_every_hour() -> None:
    bill = october(Evidence(SEPTEMBER_SERVER, polls(every(HOUR, at(30, 23, month=9), at(1, 0, month=11)))))

    assert (bill.observed_hours, bill.inferred_hours) == (744, 0)


def test_the_rounding_up_hour_counts_as_observed() -> None:
    evidence = Evidence(at(10, 8, 30), (), (Event(Change.DELETED, at(10, 9, 10)),))

    bill = october(evidence)

    assert (bill.runtime, bill.billed_hours, bill.observed_hours, bill.inferred_hours) == (
        timedelta(minutes=40),
        1,
        1,
        0,
    )


# --------------------------------------------------------------------------- additional IPs


def test_each_additional_ip_is_billed_for_the_hours_it_was_held() -> None:
    evidence = Evidence(
        at(1),
        (Poll(at(2), RUNNING, additional_ips=1), Poll(at(4), STOPPED, additional_ips=1)),
        (
            Event(Change.STOPPED, at(3)),
            Event(Change.IP_ADDED, at(3, 12)),
            Event(Change.IP_REMOVED, at(3, 18)),
            Event(Change.DELETED, at(5)),
        ),
    )
    timeline = build_timeline(evidence)

    bill = month_runtime(timeline, *OCTOBER, TWO_PER_HOUR, ip_rate=PlanRate(3, tokens_per_month=100))

    assert timeline.ip_intervals == (
        IpInterval(at(2), at(3, 12), 1),
        IpInterval(at(3, 12), at(3, 18), 2),
        IpInterval(at(3, 18), at(5), 1),
    )
    assert (bill.ip_hours, bill.ip_tokens) == (72 + 6, 100 + 18)


def test_no_ip_hours_when_no_evidence_counts_ips() -> None:
    bill = october(Evidence(at(1), polls([at(2)])), ip_rate=PlanRate(3))

    assert (bill.ip_hours, bill.ip_tokens) == (0, 0)


def test_a_poll_that_cannot_tell_the_state_is_refused() -> None:
    with pytest.raises(ValueError, match="no evidence"):
        Poll(at(1), PowerState.UNKNOWN)
