"""Billing cycles: the half-open spans of time that one invoice covers.

Months begin at 00:00 local time in the configured IANA time zone (WHMCS and Fleio bill in their own
time zone), so a cycle boundary is a local midnight turned into a UTC instant: November 2024 in
Europe/Berlin starts at 2024-10-31 23:00 UTC, April 2024 in Pacific/Auckland at 2024-03-31 11:00 UTC.
Cycles are ``[start, end)``; the end of one is the start of the next, so every instant belongs to exactly
one cycle and nothing is billed twice at a month edge (the peers' time-zone double invoices).

Two schedules (seed 001):

* **calendar month**: from the 1st 00:00 to the next 1st 00:00 (:func:`calendar_cycle_containing`);
* **anniversary**: from the anchor day of one month to the anchor day of the next; an anchor of 29-31
  clamps to the last day of shorter months, so a Jan 31 start gives Feb 28 (29 in a leap year), then
  Mar 31 (:func:`anniversary_cycle_containing`).

Both are a :class:`BillingPeriod` (monthly on an invoice day; seed 004 adds yearly on a day and month).
A local midnight that a DST change skips maps to the first instant of that day; one that happens twice
maps to the first occurrence; either way the boundaries only move forward.
"""

from __future__ import annotations

import bisect
import calendar
import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.domain.instants import as_utc

Frequency = Literal["monthly", "yearly"]
TimeZone = str | ZoneInfo

_TICK = timedelta(microseconds=1)


def zone_of(tz: TimeZone) -> ZoneInfo:
    """The ZoneInfo for an IANA name (``"Europe/Berlin"``) or a ZoneInfo loaded by name."""
    if isinstance(tz, ZoneInfo):
        zone = tz
    else:
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}; use an IANA name such as 'Europe/Berlin'") from None
    if zone.key is None:
        raise ValueError("a time zone loaded from a file has no IANA name; load it with ZoneInfo(name)")
    return zone


@dataclass(frozen=True)
class BillingPeriod:
    """When cycles recharge: monthly on ``invoice_day``, or yearly on ``invoice_day`` of ``invoice_month``.

    An invoice day that a month lacks clamps to that month's last day (31 -> Apr 30, Feb 28 or 29), and a
    yearly Feb 29 recharges on Feb 28 in non-leap years. Monthly on day 1 is the calendar month.
    """

    frequency: Frequency = "monthly"
    invoice_day: int = 1
    invoice_month: int | None = None

    def __post_init__(self) -> None:
        if self.frequency not in ("monthly", "yearly"):
            raise ValueError(f"billing frequency {self.frequency!r} is unknown; use 'monthly' or 'yearly'")
        if not 1 <= self.invoice_day <= 31:
            raise ValueError(f"invoice day {self.invoice_day} is not a day of a month; use 1 to 31")
        if self.frequency == "monthly" and self.invoice_month is not None:
            raise ValueError("a monthly billing period has no invoice month; leave it out")
        if self.frequency == "yearly":
            self._check_yearly_date()

    def _check_yearly_date(self) -> None:
        month = self.invoice_month
        if month is None or not 1 <= month <= 12:
            raise ValueError(f"a yearly billing period needs an invoice month 1 to 12, got {month!r}")
        longest = calendar.monthrange(2024, month)[1]  # 2024 is a leap year: Feb 29 is allowed
        if self.invoice_day > longest:
            raise ValueError(f"{calendar.month_name[month]} has no day {self.invoice_day}")

    @classmethod
    def monthly(cls, invoice_day: int) -> BillingPeriod:
        return cls("monthly", invoice_day)

    @classmethod
    def yearly(cls, invoice_day: int, invoice_month: int) -> BillingPeriod:
        return cls("yearly", invoice_day, invoice_month)

    @property
    def step_months(self) -> int:
        return 1 if self.frequency == "monthly" else 12

    def recharge_date(self, index: int) -> date:
        """The recharge date in month number ``index`` (``year * 12 + month - 1``), clamped."""
        year, month0 = divmod(index, 12)
        last_day = calendar.monthrange(year, month0 + 1)[1]
        return date(year, month0 + 1, min(self.invoice_day, last_day))

    def next_recharge_date(self, today: date) -> date:
        """The first recharge strictly after local date ``today``; on the invoice day itself, the next one."""
        index = self._index_near(today)
        if self.recharge_date(index) <= today:
            index += self.step_months
        return self.recharge_date(index)

    def cycle_containing(self, instant: datetime, tz: TimeZone) -> BillingCycle:
        """The cycle of this period, in time zone ``tz``, that ``instant`` falls in."""
        zone = zone_of(tz)
        instant = as_utc(instant)
        index = self._index_near(instant.astimezone(zone).date())
        while self._boundary(index, zone) > instant:
            index -= self.step_months
        while self._boundary(index + self.step_months, zone) <= instant:
            index += self.step_months
        return self._cycle(index, zone)

    def _index_near(self, day: date) -> int:
        month = day.month if self.invoice_month is None else self.invoice_month
        return day.year * 12 + month - 1

    def _boundary(self, index: int, zone: ZoneInfo) -> datetime:
        return local_midnight(self.recharge_date(index), zone)

    def _cycle(self, index: int, zone: ZoneInfo) -> BillingCycle:
        start = self._boundary(index, zone)
        end = self._boundary(index + self.step_months, zone)
        return BillingCycle(start, end, _zone_key(zone), self)


CALENDAR_MONTH = BillingPeriod("monthly", 1)


@dataclass(frozen=True)
class BillingCycle:
    """One billing cycle: the half-open span ``[start, end)`` of aware UTC instants.

    ``zone`` is the IANA time zone its boundaries were drawn in and ``period`` the schedule it belongs to
    (its frequency decides whether the billable-seconds cap applies: only on monthly cycles).
    """

    start: datetime
    end: datetime
    zone: str = "UTC"
    period: BillingPeriod = CALENDAR_MONTH

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if self.end <= self.start:
            raise ValueError(
                f"cycle end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )
        zone_of(self.zone)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(self.tz)

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(self.tz)

    @property
    def is_monthly(self) -> bool:
        return self.period.frequency == "monthly"

    @property
    def is_calendar_month(self) -> bool:
        """Whether this cycle is exactly one calendar month in its time zone."""
        month = calendar_cycle_containing(self.start, self.zone)
        return (month.start, month.end) == (self.start, self.end)

    @property
    def hours(self) -> Decimal:
        """The cycle's length in hours (743 for March in Berlin: the clocks skip one)."""
        return Decimal((self.end - self.start) // _TICK) / Decimal(3_600_000_000)

    @functools.cached_property
    def label(self) -> str:
        """``2022-10`` for a calendar month, else the local start date (``2024-01-31``); worked out once
        per cycle (a month end asks each invoice's cycle for it about a dozen times)."""
        if self.is_calendar_month:
            return self.local_start.strftime("%Y-%m")
        return self.local_start.date().isoformat()

    def contains(self, instant: datetime) -> bool:
        return self.start <= as_utc(instant) < self.end

    def __str__(self) -> str:
        return f"{self.local_start.isoformat()}..{self.local_end.isoformat()} ({self.zone})"


def local_midnight(day: date, tz: TimeZone) -> datetime:
    """The UTC instant at which local ``day`` begins in ``tz``."""
    return datetime(day.year, day.month, day.day, tzinfo=zone_of(tz)).astimezone(UTC)


def calendar_cycle_containing(instant: datetime, tz: TimeZone) -> BillingCycle:
    """The calendar month (1st 00:00 local to the next 1st) that ``instant`` falls in."""
    return CALENDAR_MONTH.cycle_containing(instant, tz)


def anniversary_cycle_containing(instant: datetime, anchor_day: int, tz: TimeZone) -> BillingCycle:
    """The anniversary cycle that ``instant`` falls in, the anchor day clamped to short months."""
    return BillingPeriod.monthly(anchor_day).cycle_containing(instant, tz)


def next_cycle(cycle: BillingCycle) -> BillingCycle:
    """The cycle of ``cycle.period`` that starts where ``cycle`` ends."""
    return cycle.period.cycle_containing(cycle.end, cycle.zone)


def previous_cycle(cycle: BillingCycle) -> BillingCycle:
    """The cycle of ``cycle.period`` that ends where ``cycle`` starts.

    For the first cycle after a switch to calendar months this is the calendar month before it, not the
    anniversary cycle the client actually had; use :func:`cycle_after_calendar_switch` for that history.
    """
    return cycle.period.cycle_containing(cycle.start - _TICK, cycle.zone)


def cycle_for_invoice_date(
    invoice_date: date, tz: TimeZone, period: BillingPeriod = CALENDAR_MONTH
) -> BillingCycle:
    """The cycle an invoice dated ``invoice_date`` bills: the last one ended when that local day begins.

    Invoices are made on the 1st for the previous month (seed 002), so ``invoice --date 2022-11-01``
    bills October 2022 in ``tz``, and so does any later day of November. For an anniversary ``period``
    it is the last anniversary cycle that has ended by then.
    """
    if isinstance(invoice_date, datetime):
        raise TypeError("pass the invoice date as a date, not a datetime")
    return previous_cycle(period.cycle_containing(local_midnight(invoice_date, tz), tz))


def billing_anchor(calendar_months: bool, created_at: datetime, tz: TimeZone) -> int | None:
    """The day a client's usage cycles start on: None for calendar months, else the local day of the month
    the client was created (its anniversary, seed 001)."""
    if calendar_months:
        return None
    return as_utc(created_at).astimezone(zone_of(tz)).day


def client_period(calendar_months: bool, created_at: datetime, tz: TimeZone) -> BillingPeriod:
    """The period a client's usage cycles follow: calendar months, else monthly on its anniversary day
    (:func:`billing_anchor`)."""
    anchor_day = billing_anchor(calendar_months, created_at, tz)
    return CALENDAR_MONTH if anchor_day is None else BillingPeriod.monthly(anchor_day)


def client_cycle(anchor_day: int | None, instant: datetime, tz: TimeZone) -> BillingCycle:
    """The client's usage cycle containing ``instant``: the calendar month when ``anchor_day`` is None,
    else the anniversary cycle on that day (see :func:`billing_anchor`)."""
    if anchor_day is None:
        return calendar_cycle_containing(instant, tz)
    return anniversary_cycle_containing(instant, anchor_day, tz)


@functools.lru_cache(maxsize=256)
def cycles_to_invoice(
    anchor_day: int | None, tz: TimeZone, invoice_date: date, catch_up: int
) -> tuple[BillingCycle, ...]:
    """The cycles an invoicing run for ``invoice_date`` looks at: the last one ended by that local day's
    midnight, and the ``catch_up`` before it, oldest first.

    Cached: in one run every calendar-month client (and every client of one anniversary day) shares them.
    """
    midnight = local_midnight(invoice_date, tz)
    cycle = client_cycle(anchor_day, midnight - _TICK, tz)
    cycles = [cycle if cycle.end <= midnight else previous_cycle(cycle)]
    for _ in range(catch_up):
        cycles.insert(0, previous_cycle(cycles[0]))
    return tuple(cycles)


def cycles_overlapping(
    start: datetime, end: datetime, period: BillingPeriod, tz: TimeZone
) -> list[BillingCycle]:
    """Every cycle of ``period`` that overlaps ``[start, end)``, in order (for catching up missed runs)."""
    end = as_utc(end)
    if end <= as_utc(start):
        raise ValueError(
            f"the range {start.isoformat()}..{end.isoformat()} is empty; its end must be after its start"
        )
    cycles: list[BillingCycle] = []
    cycle = period.cycle_containing(start, tz)
    while cycle.start < end:
        cycles.append(cycle)
        cycle = next_cycle(cycle)
    return cycles


def first_calendar_cycle(created_at: datetime, tz: TimeZone) -> BillingCycle:
    """A new service's first cycle under calendar months: from its creation to the next 1st (seed 001)."""
    month = calendar_cycle_containing(created_at, tz)
    return BillingCycle(created_at, month.end, month.zone, CALENDAR_MONTH)


def calendar_switch_stub(ongoing: BillingCycle) -> BillingCycle | None:
    """The short cycle between the end of ``ongoing`` and the next 1st, after a switch to calendar months.

    Seed 001: a switch takes effect only when the ongoing cycle has ended; if that is on the 15th, the
    next cycle lasts until the end of the month. None when ``ongoing`` already ends on a 1st.
    """
    month = calendar_cycle_containing(ongoing.end, ongoing.zone)
    if month.start == ongoing.end:
        return None
    return BillingCycle(ongoing.end, month.end, ongoing.zone, CALENDAR_MONTH)


def cycle_after_calendar_switch(instant: datetime, ongoing: BillingCycle) -> BillingCycle:
    """The cycle of ``instant`` for a client who switched to calendar months during ``ongoing``.

    Before ``ongoing`` ends the old schedule holds; then the stub to month end; then calendar months.
    """
    if as_utc(instant) < ongoing.end:
        return ongoing.period.cycle_containing(instant, ongoing.zone)
    stub = calendar_switch_stub(ongoing)
    if stub is not None and stub.contains(instant):
        return stub
    return calendar_cycle_containing(instant, ongoing.zone)


def _zone_key(zone: ZoneInfo) -> str:
    assert zone.key is not None  # zone_of refuses zones without a key
    return zone.key


# -- a client's cycles over time: switches between schedules, never an hour twice -------------------------


@dataclass(frozen=True)
class ScheduleChange:
    """From ``since`` on, the client's cycles that start are calendar months (``calendar_months``) or
    anniversary cycles."""

    since: datetime
    calendar_months: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", as_utc(self.since))


@dataclass(frozen=True)
class CycleSchedule:
    """Which cycles a client has had, and has: its configuration history, reduced to what cycles need.

    ``origin`` is the creation of the client's first service (seed 001): its first cycle starts there and
    its anniversary is that local day, whenever the client was added or imported. ``changes`` say which
    schedule holds from when, oldest first; before the first one, the first one's schedule holds.

    A cycle follows the schedule in force when it *starts*: a switch takes effect after the ongoing cycle
    (seed 001), so switching anniversary to calendar on 11-20 during 11-15 → 12-15 gives that cycle, then
    the stub 12-15 → 01-01, then calendar months.
    """

    origin: datetime
    zone: str
    changes: tuple[ScheduleChange, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "origin", as_utc(self.origin))
        zone_of(self.zone)
        if not self.changes:
            raise ValueError("a cycle schedule needs at least one schedule; give the configuration's")
        if any(later.since < earlier.since for earlier, later in itertools.pairwise(self.changes)):
            raise ValueError("schedule changes must be given oldest first")

    @property
    def anchor_day(self) -> int:
        """The anniversary: the local day of the month the first service was created."""
        return self.origin.astimezone(zone_of(self.zone)).day

    def calendar_at(self, instant: datetime) -> bool:
        """Whether a cycle starting at ``instant`` is a calendar month (else an anniversary cycle)."""
        instant = as_utc(instant)
        index = bisect.bisect_right([change.since for change in self.changes], instant) - 1
        return self.changes[max(index, 0)].calendar_months

    def period_at(self, instant: datetime) -> BillingPeriod:
        """The schedule of a cycle starting at ``instant``."""
        return CALENDAR_MONTH if self.calendar_at(instant) else BillingPeriod.monthly(self.anchor_day)

    def observed(self, calendar_months: bool, at: datetime) -> CycleSchedule:
        """This schedule with ``calendar_months`` in force from ``at`` on, when that is a change."""
        if self.changes[-1].calendar_months == calendar_months:
            return self
        return replace(self, changes=(*self.changes, ScheduleChange(at, calendar_months)))


Span = tuple[datetime, datetime]
"""A half-open span ``[start, end)`` an invoice already covers."""


def cycle_from(schedule: CycleSchedule, point: datetime, stop: datetime | None = None) -> BillingCycle:
    """The cycle that starts at ``point``: up to the next boundary of the schedule in force at ``point``,
    cut short at ``stop`` (the start of an invoiced span) so it never overlaps what is invoiced."""
    period = schedule.period_at(point)
    end = period.cycle_containing(point, schedule.zone).end
    if stop is not None and point < stop < end:
        end = stop
    return BillingCycle(point, end, schedule.zone, period)


def cycle_timeline(
    schedule: CycleSchedule, invoiced: Iterable[Span], until: datetime, *, since: datetime | None = None
) -> tuple[BillingCycle, ...]:
    """The client's cycles, oldest first, that start before ``until``: its invoiced spans as they were
    invoiced, and between and after them the cycles of :func:`cycle_from`. No two overlap, so no hour is
    ever on two cycles whatever the schedule did.

    The timeline begins at the origin (or an earlier invoiced span). ``since`` leaves out cycles that end
    by then: the walk resumes at the last invoiced span ending by then, and jumps over whole cycles of an
    unchanging schedule, so a run over many old clients stays cheap.
    """
    spans = sorted((as_utc(start), as_utc(end)) for start, end in invoiced)
    until = as_utc(until)
    point = min([schedule.origin, *(start for start, _ in spans[:1])])
    if since is not None:
        point = max([point, *(end for _, end in spans if end <= since)])
    index = bisect.bisect_left(spans, (point, point))
    cycles: list[BillingCycle] = []
    while point < until:
        while index < len(spans) and spans[index][0] < point:  # overlaps what is behind: never again
            point = max(point, spans[index][1])
            index += 1
        if point >= until:
            break
        if index < len(spans) and spans[index][0] == point:
            start, end = spans[index]
            cycles.append(BillingCycle(start, end, schedule.zone, schedule.period_at(start)))
            point, index = end, index + 1
            continue
        stop = spans[index][0] if index < len(spans) else None
        if since is not None:
            point = _skip_whole_cycles(schedule, point, min([since, *([stop] if stop else [])]))
        cycle = cycle_from(schedule, point, stop)
        cycles.append(cycle)
        point = cycle.end
    return tuple(cycle for cycle in cycles if since is None or cycle.end > since)


def _skip_whole_cycles(schedule: CycleSchedule, point: datetime, target: datetime) -> datetime:
    """Where the walk from ``point`` toward ``target`` may resume: the start of the cycle containing
    ``target`` when ``point`` is a boundary of the schedule and it holds unchanged until ``target``."""
    if target <= point or any(point < change.since <= target for change in schedule.changes):
        return point
    period = schedule.period_at(point)
    if period.cycle_containing(point, schedule.zone).start != point:
        return point
    return max(point, period.cycle_containing(target, schedule.zone).start)


def cycles_ended_by(
    schedule: CycleSchedule, invoiced: Iterable[Span], invoice_date: date, catch_up: int
) -> tuple[BillingCycle, ...]:
    """The cycles a run for ``invoice_date`` looks at: the last one ended when that local day begins, and
    the ``catch_up`` before it, oldest first (fewer for a young client; none before its first cycle ends).
    """
    midnight = local_midnight(invoice_date, schedule.zone)
    since = midnight - timedelta(days=32 * (catch_up + 1))
    ended = [
        cycle for cycle in cycle_timeline(schedule, invoiced, midnight, since=since) if cycle.end <= midnight
    ]
    return tuple(ended[-(catch_up + 1) :])


def current_and_previous(
    schedule: CycleSchedule, invoiced: Iterable[Span], now: datetime
) -> tuple[BillingCycle, BillingCycle]:
    """The client's current cycle and the one before it (before its first cycle: the schedule's)."""
    invoiced = tuple(invoiced)
    current = cycle_at(schedule, invoiced, now)
    before = current.start - _TICK
    if before < schedule.origin and not any(start <= before < end for start, end in invoiced):
        return current, schedule.period_at(before).cycle_containing(before, schedule.zone)
    return current, cycle_at(schedule, invoiced, before)


def cycle_at(schedule: CycleSchedule, invoiced: Iterable[Span], instant: datetime) -> BillingCycle:
    """The client's cycle containing ``instant`` (its current one, for ``now``)."""
    instant = as_utc(instant)
    since = instant - timedelta(days=32)
    timeline = cycle_timeline(schedule, invoiced, instant + _TICK, since=since)
    if not timeline or not timeline[-1].contains(instant):
        return schedule.period_at(instant).cycle_containing(instant, schedule.zone)
    return timeline[-1]
