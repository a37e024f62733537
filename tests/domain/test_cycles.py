"""Billing cycles: which month an hour of usage lands in, wherever the operator's office is."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.domain.cycles import (
    CALENDAR_MONTH,
    BillingCycle,
    BillingPeriod,
    CycleSchedule,
    ScheduleChange,
    anniversary_cycle_containing,
    calendar_cycle_containing,
    calendar_switch_stub,
    client_cycle,
    client_period,
    current_and_previous,
    cycle_after_calendar_switch,
    cycle_at,
    cycle_for_invoice_date,
    cycle_timeline,
    cycles_ended_by,
    cycles_overlapping,
    first_calendar_cycle,
    local_midnight,
    next_cycle,
    previous_cycle,
)
from tests.domain.builders import utc

TICK = timedelta(microseconds=1)


class TestCalendarVersusAnniversary:
    """A client whose service started on Jan 31, through February of a leap and a non-leap year."""

    @pytest.mark.parametrize(("year", "february_end"), [(2024, 29), (2023, 28)])
    def test_anniversary_on_the_31st_clamps_to_the_end_of_february(
        self, year: int, february_end: int
    ) -> None:
        january = anniversary_cycle_containing(utc(year, 2, 10), 31, "UTC")
        assert (january.start, january.end) == (utc(year, 1, 31), utc(year, 2, february_end))
        february = next_cycle(january)
        assert (february.start, february.end) == (utc(year, 2, february_end), utc(year, 3, 31))
        assert next_cycle(february).end == utc(year, 4, 30)

    @pytest.mark.parametrize(("year", "hours"), [(2024, 696), (2023, 672)])
    def test_calendar_february_is_the_whole_month(self, year: int, hours: int) -> None:
        february = calendar_cycle_containing(utc(year, 2, 10), "UTC")
        assert (february.start, february.end) == (utc(year, 2, 1), utc(year, 3, 1))
        assert february.hours == hours
        assert february.is_calendar_month and february.label == f"{year}-02"

    def test_anchor_on_the_30th_comes_back_to_the_30th_after_february(self) -> None:
        february = anniversary_cycle_containing(utc(2023, 3, 1), 30, "UTC")
        assert (february.start, february.end) == (utc(2023, 2, 28), utc(2023, 3, 30))

    def test_an_anniversary_cycle_is_named_by_its_start_date(self) -> None:
        cycle = anniversary_cycle_containing(utc(2024, 2, 10), 31, "UTC")
        assert not cycle.is_calendar_month and cycle.label == "2024-01-31"

    def test_an_anchor_on_the_1st_is_the_calendar_month(self) -> None:
        instant = utc(2024, 5, 17, 12)
        assert anniversary_cycle_containing(instant, 1, "UTC") == calendar_cycle_containing(instant, "UTC")

    def test_the_boundary_instant_starts_the_new_cycle(self) -> None:
        assert calendar_cycle_containing(utc(2024, 3, 1), "UTC").start == utc(2024, 3, 1)
        assert calendar_cycle_containing(utc(2024, 3, 1) - TICK, "UTC").end == utc(2024, 3, 1)


class TestMonthEdgesInTheOperatorsTimeZone:
    def test_berlin_november_starts_at_23_utc_on_october_31(self) -> None:
        november = calendar_cycle_containing(utc(2024, 11, 15), "Europe/Berlin")
        assert november.start == utc(2024, 10, 31, 23) and november.end == utc(2024, 11, 30, 23)

    def test_berlin_summer_months_start_at_22_utc(self) -> None:
        april = calendar_cycle_containing(utc(2024, 4, 15), "Europe/Berlin")
        assert april.start == utc(2024, 3, 31, 22)

    def test_an_hour_before_berlin_midnight_is_still_last_month(self) -> None:
        # 22:30 UTC on Oct 31 is 23:30 in Berlin: October. 23:30 UTC is already 00:30 on Nov 1 in Berlin:
        # November, although in UTC it is still October 31.
        assert calendar_cycle_containing(utc(2024, 10, 31, 22, 30), "Europe/Berlin").label == "2024-10"
        assert calendar_cycle_containing(utc(2024, 10, 31, 23, 30), "Europe/Berlin").label == "2024-11"

    def test_berlin_march_is_one_hour_short_and_october_one_hour_long(self) -> None:
        assert calendar_cycle_containing(utc(2024, 3, 15), "Europe/Berlin").hours == 743
        assert calendar_cycle_containing(utc(2024, 10, 15), "Europe/Berlin").hours == 745

    def test_auckland_months_begin_on_the_previous_utc_day(self) -> None:
        april = calendar_cycle_containing(utc(2024, 4, 15), "Pacific/Auckland")
        assert april.start == utc(2024, 3, 31, 11)  # 00:00 NZDT (+13)
        july = calendar_cycle_containing(utc(2024, 7, 15), "Pacific/Auckland")
        assert july.start == utc(2024, 6, 30, 12)  # 00:00 NZST (+12)

    def test_march_31_in_utc_can_already_be_april_in_auckland(self) -> None:
        assert calendar_cycle_containing(utc(2024, 3, 31, 11, 30), "Pacific/Auckland").label == "2024-04"
        assert calendar_cycle_containing(utc(2024, 3, 31, 10, 59), "Pacific/Auckland").label == "2024-03"

    def test_new_york_october_ends_at_4_utc_and_december_starts_at_5(self) -> None:
        assert calendar_cycle_containing(utc(2022, 10, 15), "America/New_York").end == utc(2022, 11, 1, 4)
        assert calendar_cycle_containing(utc(2022, 12, 15), "America/New_York").start == utc(2022, 12, 1, 5)

    def test_a_month_whose_local_midnight_never_happened_starts_at_the_first_instant(self) -> None:
        # Asuncion moved its clocks from 00:00 to 01:00 on 2023-10-01.
        october = calendar_cycle_containing(utc(2023, 10, 15), "America/Asuncion")
        assert october.start == utc(2023, 10, 1, 4)
        assert october.local_start.hour == 1
        assert previous_cycle(october).end == october.start

    def test_a_zoneinfo_object_works_like_its_name(self) -> None:
        by_name = calendar_cycle_containing(utc(2024, 1, 5), "Europe/Berlin")
        assert calendar_cycle_containing(utc(2024, 1, 5), ZoneInfo("Europe/Berlin")) == by_name


class TestInvoiceDateOverride:
    """``invoice --date 2022-11-01`` bills October 2022, as the WHMCS override does (seed 002)."""

    def test_the_first_of_november_bills_october(self) -> None:
        october = cycle_for_invoice_date(date(2022, 11, 1), "Europe/Berlin")
        assert october.label == "2022-10"
        assert october.start == utc(2022, 9, 30, 22) and october.end == utc(2022, 10, 31, 23)

    def test_a_later_day_of_november_still_bills_october(self) -> None:
        assert cycle_for_invoice_date(date(2022, 11, 17), "UTC").label == "2022-10"

    def test_january_bills_december_of_the_year_before(self) -> None:
        assert cycle_for_invoice_date(date(2023, 1, 1), "Pacific/Auckland").label == "2022-12"

    def test_an_anniversary_client_gets_the_last_cycle_that_has_ended(self) -> None:
        on_the_15th = BillingPeriod.monthly(15)
        assert cycle_for_invoice_date(date(2022, 11, 15), "UTC", on_the_15th).label == "2022-10-15"
        assert cycle_for_invoice_date(date(2022, 11, 14), "UTC", on_the_15th).label == "2022-09-15"

    def test_a_datetime_is_refused_to_avoid_guessing_its_zone(self) -> None:
        with pytest.raises(TypeError, match="date"):
            cycle_for_invoice_date(utc(2022, 11, 1), "UTC")


class TestServiceCreatedMidMonth:
    def test_first_calendar_cycle_runs_from_creation_to_the_end_of_the_month(self) -> None:
        created = datetime(2024, 3, 17, 10, 30, tzinfo=ZoneInfo("Europe/Berlin"))
        first = first_calendar_cycle(created, "Europe/Berlin")
        assert first.start == created and first.local_end == datetime(
            2024, 4, 1, tzinfo=ZoneInfo("Europe/Berlin")
        )
        assert first.hours == Decimal("348.5")  # 14 days 13.5 h, less the hour skipped on Mar 31
        assert first.label == "2024-03-17"
        assert next_cycle(first) == calendar_cycle_containing(utc(2024, 4, 10), "Europe/Berlin")

    def test_created_on_the_first_at_midnight_is_a_whole_month(self) -> None:
        assert first_calendar_cycle(utc(2024, 5, 1), "UTC").is_calendar_month


class TestSwitchToCalendarMonths:
    """Seed 001: the ongoing cycle ends first, then a cycle to the end of the month, then calendar months."""

    def test_ongoing_cycle_ending_on_the_15th_is_followed_by_a_stub_then_calendar_months(self) -> None:
        ongoing = anniversary_cycle_containing(utc(2024, 1, 20), 15, "UTC")
        assert (ongoing.start, ongoing.end) == (utc(2024, 1, 15), utc(2024, 2, 15))
        stub = calendar_switch_stub(ongoing)
        assert stub is not None and (stub.start, stub.end) == (utc(2024, 2, 15), utc(2024, 3, 1))
        assert cycle_after_calendar_switch(utc(2024, 1, 30), ongoing) == ongoing
        assert cycle_after_calendar_switch(utc(2024, 2, 20), ongoing) == stub
        march = cycle_after_calendar_switch(utc(2024, 3, 20), ongoing)
        assert march.is_calendar_month and march.start == stub.end

    def test_earlier_instants_keep_the_old_anniversary_schedule(self) -> None:
        ongoing = anniversary_cycle_containing(utc(2024, 1, 20), 15, "UTC")
        assert cycle_after_calendar_switch(utc(2023, 12, 20), ongoing).start == utc(2023, 12, 15)

    def test_an_ongoing_cycle_that_ends_on_the_1st_needs_no_stub(self) -> None:
        ongoing = BillingCycle(utc(2024, 1, 15), utc(2024, 2, 1), "UTC", CALENDAR_MONTH)
        assert calendar_switch_stub(ongoing) is None
        assert cycle_after_calendar_switch(utc(2024, 2, 5), ongoing).label == "2024-02"


class TestNeighboursAndCatchUp:
    def test_previous_and_next_are_the_adjacent_months(self) -> None:
        june = calendar_cycle_containing(utc(2024, 6, 10), "Europe/Berlin")
        assert previous_cycle(june).label == "2024-05" and next_cycle(june).label == "2024-07"
        assert previous_cycle(june).end == june.start and next_cycle(june).start == june.end

    def test_missed_runs_are_caught_up_month_by_month(self) -> None:
        cycles = cycles_overlapping(utc(2024, 9, 1), utc(2024, 12, 1), CALENDAR_MONTH, "UTC")
        assert [cycle.label for cycle in cycles] == ["2024-09", "2024-10", "2024-11"]

    def test_a_window_ending_mid_month_still_includes_that_month(self) -> None:
        cycles = cycles_overlapping(utc(2024, 9, 20), utc(2024, 10, 2), CALENDAR_MONTH, "UTC")
        assert [cycle.label for cycle in cycles] == ["2024-09", "2024-10"]

    def test_an_empty_catch_up_range_is_refused(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            cycles_overlapping(utc(2024, 9, 1), utc(2024, 9, 1), CALENDAR_MONTH, "UTC")


class TestBillingPeriod:
    """Seed 004: monthly on an invoice day, or yearly on a day and month, with the next recharge date."""

    def test_monthly_on_the_9th(self) -> None:
        period = BillingPeriod.monthly(9)
        assert period.next_recharge_date(date(2024, 1, 5)) == date(2024, 1, 9)
        assert period.next_recharge_date(date(2024, 1, 9)) == date(2024, 2, 9)
        assert period.next_recharge_date(date(2024, 12, 20)) == date(2025, 1, 9)

    def test_monthly_on_the_31st_recharges_at_the_end_of_short_months(self) -> None:
        period = BillingPeriod.monthly(31)
        assert period.next_recharge_date(date(2024, 4, 1)) == date(2024, 4, 30)
        assert period.next_recharge_date(date(2023, 2, 1)) == date(2023, 2, 28)

    def test_yearly_on_february_29_recharges_on_the_28th_in_non_leap_years(self) -> None:
        period = BillingPeriod.yearly(29, 2)
        assert period.next_recharge_date(date(2023, 1, 10)) == date(2023, 2, 28)
        assert period.next_recharge_date(date(2023, 2, 28)) == date(2024, 2, 29)
        assert period.next_recharge_date(date(2024, 3, 1)) == date(2025, 2, 28)

    def test_a_yearly_cycle_spans_a_year_and_is_not_monthly(self) -> None:
        cycle = BillingPeriod.yearly(15, 6).cycle_containing(utc(2024, 1, 1), "UTC")
        assert (cycle.start, cycle.end) == (utc(2023, 6, 15), utc(2024, 6, 15))
        assert not cycle.is_monthly and cycle.label == "2023-06-15"

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            (("monthly", 0), "1 to 31"),
            (("monthly", 32), "1 to 31"),
            (("monthly", 5, 3), "no invoice month"),
            (("yearly", 5), "invoice month 1 to 12"),
            (("yearly", 5, 13), "invoice month 1 to 12"),
            (("yearly", 30, 2), "February has no day 30"),
            (("yearly", 31, 4), "April has no day 31"),
            (("weekly", 1), "unknown"),
        ],
    )
    def test_impossible_periods_are_refused(self, arguments: tuple[object, ...], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            BillingPeriod(*arguments)  # type: ignore[arg-type]


class TestBillingCycleValue:
    def test_naive_instants_are_refused(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            BillingCycle(datetime(2024, 1, 1), utc(2024, 2, 1))

    def test_an_empty_or_backwards_cycle_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not after its start"):
            BillingCycle(utc(2024, 2, 1), utc(2024, 2, 1))

    def test_an_unknown_zone_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus_Mons'; use an IANA name"):
            BillingCycle(utc(2024, 1, 1), utc(2024, 2, 1), "Mars/Olympus_Mons")

    def test_instants_are_kept_in_utc(self) -> None:
        berlin = datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))
        cycle = BillingCycle(berlin, utc(2024, 2, 1))
        assert cycle.start == utc(2023, 12, 31, 23) and cycle.start.utcoffset() == timedelta(0)

    def test_local_midnight(self) -> None:
        assert local_midnight(date(2024, 7, 1), "Pacific/Auckland") == utc(2024, 6, 30, 12)


INSTANTS = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 12, 1)).map(
    lambda naive: naive.replace(tzinfo=ZoneInfo("UTC"))
)
ZONES = st.one_of(
    st.sampled_from(
        ["Europe/Berlin", "Pacific/Auckland", "America/New_York", "America/Asuncion", "Asia/Kolkata"]
    ),
    st.timezone_keys(),
)
PERIODS = st.one_of(
    st.builds(BillingPeriod.monthly, st.integers(1, 31)),
    st.builds(
        lambda month, day: BillingPeriod.yearly(min(day, 28), month), st.integers(1, 12), st.integers(1, 31)
    ),
)


@settings(max_examples=300)
@given(INSTANTS, ZONES, PERIODS)
def test_cycles_tile_time_with_no_gap_and_no_overlap(
    instant: datetime, zone: str, period: BillingPeriod
) -> None:
    cycle = period.cycle_containing(instant, zone)
    assert cycle.contains(instant)
    following = period.cycle_containing(cycle.end, zone)
    preceding = period.cycle_containing(cycle.start - TICK, zone)
    assert following.start == cycle.end and following == next_cycle(cycle)
    assert preceding.end == cycle.start and preceding == previous_cycle(cycle)
    assert period.cycle_containing(cycle.start, zone) == cycle
    assert period.cycle_containing(cycle.end - TICK, zone) == cycle


@given(INSTANTS, ZONES, st.integers(1, 31))
def test_monthly_cycles_last_about_a_month(instant: datetime, zone: str, anchor_day: int) -> None:
    cycle = anniversary_cycle_containing(instant, anchor_day, zone)
    assert timedelta(days=26) < cycle.end - cycle.start < timedelta(days=33)


def test_a_clients_cycles_are_calendar_months_or_monthly_on_the_local_day_it_was_created() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    created = utc(2024, 1, 30, 23, 30)  # 31 January, 00:30 in Berlin
    assert client_period(True, created, berlin) == CALENDAR_MONTH
    assert client_period(False, created, berlin) == BillingPeriod.monthly(31)
    in_february = utc(2024, 2, 10)
    for calendar_months in (True, False):  # the period and the invoicing run's cycle agree
        anchor = None if calendar_months else 31
        assert client_period(calendar_months, created, berlin).cycle_containing(
            in_february, berlin
        ) == client_cycle(anchor, in_february, berlin)


class TestAClientsTimeline:
    """The cycles a client has had, whatever its configuration did: never two over one hour (issue 15)."""

    OCT_15 = utc(2022, 10, 15)
    ANNIVERSARY = ScheduleChange(OCT_15, calendar_months=False)
    SWITCHED = CycleSchedule(OCT_15, "UTC", (ANNIVERSARY, ScheduleChange(utc(2022, 11, 20), True)))

    @staticmethod
    def spans(cycles: tuple[BillingCycle, ...]) -> list[tuple[datetime, datetime]]:
        return [(cycle.start, cycle.end) for cycle in cycles]

    def test_a_switch_to_calendar_months_waits_for_the_ongoing_cycle_then_a_stub_to_the_1st(self) -> None:
        invoiced = [(self.OCT_15, utc(2022, 11, 15))]
        timeline = cycle_timeline(self.SWITCHED, invoiced, utc(2023, 2, 1))
        assert self.spans(timeline) == [
            (utc(2022, 10, 15), utc(2022, 11, 15)),
            (utc(2022, 11, 15), utc(2022, 12, 15)),  # the ongoing cycle when it switched on 11-20
            (utc(2022, 12, 15), utc(2023, 1, 1)),  # the stub to the next 1st
            (utc(2023, 1, 1), utc(2023, 2, 1)),
        ]
        assert [cycle.label for cycle in timeline[2:]] == ["2022-12-15", "2023-01"]

    def test_invoiced_on_the_1st_after_the_switch_nothing_is_due_and_nothing_is_billed_again(self) -> None:
        invoiced = [(self.OCT_15, utc(2022, 11, 15))]
        (last,) = cycles_ended_by(self.SWITCHED, invoiced, date(2022, 12, 1), 0)
        assert (last.start, last.end) == (utc(2022, 10, 15), utc(2022, 11, 15))  # already invoiced
        caught_up = cycles_ended_by(self.SWITCHED, invoiced, date(2022, 12, 1), 3)
        assert self.spans(caught_up) == [(utc(2022, 10, 15), utc(2022, 11, 15))]

    def test_a_switch_back_to_anniversary_waits_for_the_month_then_runs_to_the_anniversary(self) -> None:
        schedule = CycleSchedule(
            utc(2022, 9, 15),
            "UTC",
            (ScheduleChange(utc(2022, 9, 15), True), ScheduleChange(utc(2022, 11, 20), False)),
        )
        timeline = cycle_timeline(schedule, [], utc(2023, 1, 1))
        assert self.spans(timeline) == [
            (utc(2022, 9, 15), utc(2022, 10, 1)),  # the first calendar cycle, from the first service
            (utc(2022, 10, 1), utc(2022, 11, 1)),
            (utc(2022, 11, 1), utc(2022, 12, 1)),
            (utc(2022, 12, 1), utc(2022, 12, 15)),
            (utc(2022, 12, 15), utc(2023, 1, 15)),
        ]

    def test_the_first_calendar_cycle_runs_from_the_first_service_to_the_1st(self) -> None:
        origin = utc(2022, 10, 15, 12)
        schedule = CycleSchedule(origin, "UTC", (ScheduleChange(origin, True),))
        (first,) = cycles_ended_by(schedule, [], date(2022, 11, 1), 2)
        assert (first.start, first.end) == (origin, utc(2022, 11, 1))
        assert first == first_calendar_cycle(origin, "UTC")

    def test_the_anniversary_is_the_local_day_of_the_first_service(self) -> None:
        origin = utc(2024, 1, 30, 23, 30)  # 31 January, 00:30 in Berlin
        schedule = CycleSchedule(origin, "Europe/Berlin", (ScheduleChange(origin, False),))
        assert schedule.anchor_day == 31
        current, previous = current_and_previous(schedule, [], utc(2024, 3, 10))
        assert (current.local_start.date(), current.local_end.date()) == (
            date(2024, 2, 29),
            date(2024, 3, 31),
        )
        assert (previous.start, previous.end) == (origin, current.start)

    def test_invoiced_spans_stay_as_they_were_and_new_cycles_stop_where_they_begin(self) -> None:
        calendar = CycleSchedule(utc(2022, 9, 1), "UTC", (ScheduleChange(utc(2022, 9, 1), True),))
        invoiced = [(utc(2022, 9, 15), utc(2022, 10, 15))]  # an invoice of an older schedule
        timeline = cycle_timeline(calendar, invoiced, utc(2022, 12, 1))
        assert self.spans(timeline) == [
            (utc(2022, 9, 1), utc(2022, 9, 15)),
            (utc(2022, 9, 15), utc(2022, 10, 15)),
            (utc(2022, 10, 15), utc(2022, 11, 1)),
            (utc(2022, 11, 1), utc(2022, 12, 1)),
        ]
        assert cycle_at(calendar, invoiced, utc(2022, 10, 1)) == timeline[1]

    def test_a_schedule_needs_one_entry_in_order(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            CycleSchedule(self.OCT_15, "UTC", ())
        with pytest.raises(ValueError, match="oldest first"):
            CycleSchedule(self.OCT_15, "UTC", tuple(reversed(self.SWITCHED.changes)))


SWITCH_DAYS = st.lists(st.tuples(st.integers(0, 400), st.booleans()), max_size=6)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    origin_hours=st.integers(0, 24 * 60),
    switches=SWITCH_DAYS,
    invoice_every=st.sets(st.integers(0, 40), max_size=8),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Auckland"]),
)
def test_a_timeline_is_gapless_never_overlaps_and_keeps_what_is_invoiced(
    origin_hours: int, switches: list[tuple[int, bool]], invoice_every: set[int], zone: str
) -> None:
    """Spans invoiced under another schedule (anniversary all along) and a random history of switches:
    the timeline keeps every invoiced span as it is, covers every instant from the first service on
    exactly once, and a resumed walk (``since``) agrees with the whole one."""
    origin = utc(2022, 1, 1) + timedelta(hours=origin_hours)
    changes = tuple(
        sorted(
            [ScheduleChange(origin, True)]
            + [ScheduleChange(origin + timedelta(days=day), calendar) for day, calendar in switches],
            key=lambda change: change.since,
        )
    )
    schedule = CycleSchedule(origin, zone, changes)
    invoiced: list[tuple[datetime, datetime]] = []
    until = origin + timedelta(days=500)
    anniversary = CycleSchedule(origin, zone, (ScheduleChange(origin, False),))
    for step, cycle in enumerate(cycle_timeline(anniversary, [], until)):
        if step in invoice_every:
            invoiced.append((cycle.start, cycle.end))
    timeline = cycle_timeline(schedule, invoiced, until)
    assert timeline[0].start == origin
    assert all(before.end == after.start for before, after in itertools.pairwise(timeline))
    assert set(invoiced) <= {(cycle.start, cycle.end) for cycle in timeline}
    since = origin + timedelta(days=250)
    assert cycle_timeline(schedule, invoiced, until, since=since) == tuple(
        cycle for cycle in timeline if cycle.end > since
    )
