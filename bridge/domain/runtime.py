"""SolusVM runtime from evidence: intervals of known power state, and what a month of them bills.

SolusVM 2 publishes no per-server usage figure, so the bridge reconstructs each server's runtime from
three kinds of evidence (docs/solusvm-runtime.md says where each comes from and which fields are
verified):

* the server's ``created_at``, where its runtime begins;
* each poll: at an instant, the server's power state (and, when known, how many additional IPs it held);
* events, from SolusVM's task list and activity log: a change (created, started, stopped, suspended,
  resumed, restarted, deleted, an IP added or removed) at an instant, or at an unknown instant between
  two bounds when the record carries no usable timestamp.

This module is pure: no I/O, no clock. :func:`build_timeline` turns the evidence into a
:class:`Timeline`; :func:`month_runtime` bills one month of it.

**The rule.** Evidence items with an instant are put in time order (an event before a poll at the same
instant: the poll sees the event's outcome). Each gap between two consecutive items gets one state:

1. the state of the earlier item *carries* to the later one when nothing says otherwise: running at T1
   and running at T2 => running for all of [T1, T2]; running at T1 and a ``stop`` event at T2 => running
   until T2. A daemon down for three days therefore loses nothing when the server ran throughout;
2. the gap is *unknown* when the later item is a poll that saw another state (the change happened at a
   moment no record gives), when the later item is a change that cannot follow the carried state (a
   start after "running": a stop went unrecorded), or when an event without a timestamp may lie in the
   gap and leads to another state than the one carried (see below);
3. nothing is carried past the last item: a server that disappears is billed until its delete event,
   or, without one, until the last moment it was seen running.

Unknown time is never billed. **A change without a timestamp** is placed at the earliest moment the
evidence allows when it ends billing (a stop, a suspension, a deletion) and at the latest when it
begins billing (a start, a resumption): in both cases the gap it may lie in bills nothing, so the rule
never bills time the evidence does not support, and a gap it cannot lie in keeps its carried state, so
the rule never drops time the evidence supports. An event's bounds are its own (``not_before``: when
the task was queued, or the last sync that did not list it; ``not_after``: the first sync that did)
tightened by its neighbours in its log (:func:`bound_by_log_order`): a record lies after the records of
the same log before it and before those after it.

**States.** ``RUNNING`` is billed; ``STOPPED`` and ``GONE`` (deleted, or never created) are not;
``SUSPENDED`` is billed only when the caller says so (``suspended_billed``: issue 15 makes it a setting,
not billed by default); ``UNKNOWN`` is never billed. A resumption returns the server to the state it was
in before the suspension, when the evidence knows it.

**Instants are whole seconds.** Every instant of the evidence (creation, polls, events and their bounds)
is kept with its fraction of a second dropped (:func:`bridge.domain.instants.whole_second`): a poll
instant is the clock's, with microseconds, and a runtime a few microseconds over whole hours would
otherwise bill one more hour here than the sum of its hourly records (each rounded to 8 places) does.

**A month** (:func:`month_runtime`) is a half-open interval of instants given by the caller, so time
zones stay the caller's concern. Per server per month: runtime = the billed seconds inside the month;
billed hours = runtime rounded up to whole hours (SolusVM: "any started hour is billed in full"); tokens =
min(hours x ``tokens_per_hour``, ``tokens_per_month``), no cap when ``tokens_per_month`` is None (the
bridge maps SolusVM's 0 to None, as the plan rate does elsewhere: a zero cap would bill nothing). A run
across a month edge is split at the edge and each month rounds its own part up, as SolusVM's rule is
per month. Additional IPs are billed per IP for the time it was held (whatever the power state, deleted
servers hold none), each IP's hours rounded up and capped by ``ip_tokens_per_month`` like a server's.

**Why an hour is billed.** Each billed hour is *observed* when evidence of the server (a poll, an event
with a timestamp, its creation) falls in the same UTC clock hour as the runtime it covers, and
*inferred* (carried between observations) otherwise. The rounding-up hour counts as observed when any
runtime was observed, so observed + inferred = billed hours.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, TypeVar

from bridge.domain.instants import as_utc, whole_second
from bridge.domain.pricing import PlanRate, capped_tokens

HOUR: Final = timedelta(hours=1)
_T = TypeVar("_T")
_ZERO: Final = timedelta(0)


class PowerState(enum.Enum):
    """What a server was doing over an interval."""

    RUNNING = "running"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    GONE = "gone"
    UNKNOWN = "unknown"


class Change(enum.Enum):
    """What an event from the task list or the activity log says happened to a server."""

    CREATED = "created"
    CREATE_FAILED = "create_failed"
    STARTED = "started"
    RESTARTED = "restarted"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    DELETED = "deleted"
    IP_ADDED = "ip_added"
    IP_REMOVED = "ip_removed"


# The state each power change leads to; RESUMED is resolved from the timeline (the state before suspension).
_LEADS_TO: Final = {
    Change.CREATED: PowerState.RUNNING,
    Change.STARTED: PowerState.RUNNING,
    Change.RESTARTED: PowerState.RUNNING,
    Change.STOPPED: PowerState.STOPPED,
    Change.SUSPENDED: PowerState.SUSPENDED,
    Change.CREATE_FAILED: PowerState.GONE,
    Change.DELETED: PowerState.GONE,
}
# The states a power change can follow; a change after any other state means one went unrecorded.
_CAN_FOLLOW: Final = {
    Change.STARTED: frozenset({PowerState.STOPPED}),
    Change.RESTARTED: frozenset({PowerState.RUNNING}),
    Change.STOPPED: frozenset({PowerState.RUNNING}),
    Change.SUSPENDED: frozenset({PowerState.RUNNING, PowerState.STOPPED}),
    Change.RESUMED: frozenset({PowerState.SUSPENDED}),
}
_IP_CHANGES: Final = frozenset({Change.IP_ADDED, Change.IP_REMOVED})


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Poll:
    """What one sync saw: the server's power state at ``at``, and its additional IPs when known."""

    at: datetime
    state: PowerState
    additional_ips: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", whole_second(self.at))
        if self.state is PowerState.UNKNOWN:
            raise ValueError("a poll that could not tell the power state is no evidence; leave it out")
        if self.additional_ips is not None and self.additional_ips < 0:
            raise ValueError(f"additional_ips must be at least 0, got {self.additional_ips}")


@dataclass(frozen=True)
class Event:
    """A recorded change: at ``at``, or, without a timestamp, somewhere in [not_before, not_after]."""

    change: Change
    at: datetime | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("at", "not_before", "not_after"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, whole_second(value))

    @property
    def lower(self) -> datetime | None:
        """The earliest moment this change can have happened, when anything bounds it."""
        return self.at if self.at is not None else self.not_before

    @property
    def upper(self) -> datetime | None:
        """The latest moment this change can have happened, when anything bounds it."""
        return self.at if self.at is not None else self.not_after


@dataclass(frozen=True)
class Evidence:
    """Everything known about one server: creation, polls, and events from each log."""

    created_at: datetime | None
    polls: tuple[Poll, ...] = ()
    events: tuple[Event, ...] = ()

    def __post_init__(self) -> None:
        if self.created_at is not None:
            object.__setattr__(self, "created_at", whole_second(self.created_at))


def bound_by_log_order(events: Sequence[Event]) -> tuple[Event, ...]:
    """``events`` of one log, oldest first, each untimed one bounded by its neighbours' instants.

    A record without a timestamp happened after every earlier record of the same log and before every
    later one (task ids and activity-log ids grow with time), so it lies between the latest lower bound
    before it and the earliest upper bound after it. Records of different logs are not ordered this way.
    """
    lowers = list(itertools.accumulate((e.lower for e in events), _later))
    uppers = list(itertools.accumulate((e.upper for e in reversed(events)), _earlier))[::-1]
    bounded: list[Event] = []
    for index, event in enumerate(events):
        if event.at is not None:
            bounded.append(event)
            continue
        before = lowers[index - 1] if index > 0 else None
        after = uppers[index + 1] if index + 1 < len(events) else None
        bounded.append(
            replace(
                event,
                not_before=_later(event.not_before, before),
                not_after=_earlier(event.not_after, after),
            )
        )
    return tuple(bounded)


# --------------------------------------------------------------------------- the timeline


@dataclass(frozen=True)
class Interval:
    """[start, end) in one power state."""

    start: datetime
    end: datetime
    state: PowerState


@dataclass(frozen=True)
class IpInterval:
    """[start, end) during which the server held ``count`` additional IPs."""

    start: datetime
    end: datetime
    count: int


@dataclass(frozen=True)
class Timeline:
    """A server's reconstructed history: power states, additional IPs, and when evidence was taken."""

    intervals: tuple[Interval, ...]
    ip_intervals: tuple[IpInterval, ...]
    evidence_at: tuple[datetime, ...]


@dataclass(frozen=True)
class _Item:
    """One timed piece of evidence, as the timeline orders it."""

    at: datetime
    is_poll: bool
    state: PowerState | None  # None: says nothing about the power state (an IP event)
    ips: int | None  # a poll's count
    change: Change | None  # an event's change


def build_timeline(evidence: Evidence) -> Timeline:
    """The intervals of known (and unknown) state the evidence supports; see the module docstring."""
    items = _timed_items(evidence)
    untimed = [event for event in evidence.events if event.at is None]
    return Timeline(
        intervals=tuple(_power_intervals(items, untimed)),
        ip_intervals=tuple(_ip_intervals(items, untimed)),
        evidence_at=tuple(sorted({item.at for item in items})),
    )


def _timed_items(evidence: Evidence) -> list[_Item]:
    items: list[_Item] = []
    if evidence.created_at is not None:
        items.append(_Item(evidence.created_at, False, PowerState.RUNNING, None, Change.CREATED))
    for event in evidence.events:
        if event.at is not None:
            items.append(_Item(event.at, False, _LEADS_TO.get(event.change), None, event.change))
    for poll in evidence.polls:
        items.append(_Item(poll.at, True, poll.state, poll.additional_ips, None))
    items.sort(key=lambda item: (item.at, item.is_poll))  # stable: events keep their log order
    return _resolve_resumptions(items, [event for event in evidence.events if event.at is None])


def _resolve_resumptions(items: list[_Item], untimed: Sequence[Event]) -> list[_Item]:
    """Give each RESUMED event the state the server was in before its suspension (UNKNOWN if unknown).

    That state is known when the evidence shows it just before the suspension and again nothing may
    have changed it unseen; and it is restored only when the evidence shows the server suspended just
    before the resumption.
    """
    resolved: list[_Item] = []
    current: _Item | None = None
    before_suspension: PowerState | None = None
    for item in items:
        if item.change is Change.RESUMED:
            suspended = current is not None and current.state is PowerState.SUSPENDED
            if suspended and current is not None and _undisturbed(current, item.at, untimed):
                item = replace(item, state=before_suspension or PowerState.UNKNOWN)
            else:
                item = replace(item, state=PowerState.UNKNOWN)
        elif item.state is PowerState.SUSPENDED and (current is None or current.state is not item.state):
            before_suspension = None
            if current is not None and current.state in (PowerState.RUNNING, PowerState.STOPPED):
                before_suspension = current.state if _undisturbed(current, item.at, untimed) else None
        if item.state is not None:
            current = item
        resolved.append(item)
    return resolved


def _undisturbed(item: _Item, until: datetime, untimed: Sequence[Event]) -> bool:
    """Whether no change without a timestamp may have moved the server off ``item``'s state by ``until``."""
    state = item.state
    return state is not None and not any(
        _may_lie_in(event, item.at, until) and not _compatible(event.change, state) for event in untimed
    )


def _power_intervals(items: Sequence[_Item], untimed: Sequence[Event]) -> Iterator[Interval]:
    power = [item for item in items if item.state is not None]
    gaps = (
        Interval(here.at, there.at, _gap_state(here, there, untimed))
        for here, there in itertools.pairwise(power)
        if there.at > here.at
    )
    for (start, end), state in _merged((gap.start, gap.end, gap.state) for gap in gaps):
        yield Interval(start, end, state)


def _merged(
    pieces: Iterable[tuple[datetime, datetime, _T]],
) -> Iterator[tuple[tuple[datetime, datetime], _T]]:
    """Adjacent pieces with the same value joined into one."""
    current: tuple[datetime, datetime, _T] | None = None
    for start, end, value in pieces:
        if current is not None and current[2] == value and current[1] == start:
            current = (current[0], end, value)
            continue
        if current is not None:
            yield (current[0], current[1]), current[2]
        current = (start, end, value)
    if current is not None:
        yield (current[0], current[1]), current[2]


def _gap_state(here: _Item, there: _Item, untimed: Sequence[Event]) -> PowerState:
    carried = here.state
    if carried is None or carried is PowerState.UNKNOWN:
        return PowerState.UNKNOWN
    if there.is_poll and there.state is not carried:
        return PowerState.UNKNOWN
    if there.change is not None and carried not in _CAN_FOLLOW.get(there.change, frozenset(PowerState)):
        return PowerState.UNKNOWN  # e.g. a start after "running": a stop went unrecorded
    if not _undisturbed(here, there.at, untimed):
        return PowerState.UNKNOWN
    return carried


def _compatible(change: Change, carried: PowerState) -> bool:
    """Whether a change at an unknown moment leaves ``carried`` a fair account of the gap."""
    if change in _IP_CHANGES:
        return True
    if change is Change.RESUMED:
        return carried in (PowerState.RUNNING, PowerState.STOPPED)
    return _LEADS_TO[change] is carried


def _may_lie_in(event: Event, start: datetime, end: datetime) -> bool:
    """Whether an untimed event's bounds leave room for it strictly inside (start, end)."""
    return (event.not_before is None or event.not_before < end) and (
        event.not_after is None or event.not_after > start
    )


def _ip_intervals(items: Sequence[_Item], untimed: Sequence[Event]) -> Iterator[IpInterval]:
    """Additional-IP counts: set by polls, stepped by IP events, zero after a deletion; carried alike."""
    ip_untimed = [event for event in untimed if event.change in _IP_CHANGES]
    held = (
        (here.at, there.at, count)
        for (here, count), (there, seen) in itertools.pairwise(_ip_counts(items))
        if there.at > here.at
        and count
        and not (there.is_poll and seen is not None and seen != count)
        and not any(_may_lie_in(event, here.at, there.at) for event in ip_untimed)
    )
    for (start, end), count in _merged(held):
        yield IpInterval(start, end, count)


def _ip_counts(items: Sequence[_Item]) -> list[tuple[_Item, int | None]]:
    """Each item with the additional-IP count known just after it (None: unknown)."""
    counts: list[tuple[_Item, int | None]] = []
    count: int | None = None
    for item in items:
        if item.is_poll:
            count = item.ips if item.ips is not None else count
        elif item.change is Change.IP_ADDED:
            count = count + 1 if count is not None else None
        elif item.change is Change.IP_REMOVED:
            count = max(count - 1, 0) if count is not None else None
        elif item.state is PowerState.GONE:
            count = 0
        counts.append((item, count))
    return counts


# --------------------------------------------------------------------------- a month


@dataclass(frozen=True)
class MonthRuntime:
    """One server's month: runtime, billed hours (observed + inferred), tokens, and additional-IP usage.

    ``capped`` says whether ``tokens_per_month`` lowered the tokens.
    """

    runtime: timedelta
    billed_hours: int
    observed_hours: int
    inferred_hours: int
    tokens: int
    capped: bool
    ip_hours: int = 0
    ip_tokens: int = 0


def started_hours(runtime: timedelta) -> int:
    """Whole hours with any started hour counted in full (5 minutes -> 1, 47 h 40 min -> 48)."""
    if runtime < _ZERO:
        raise ValueError(f"runtime {runtime} is negative")
    return -(-runtime // HOUR)


def month_runtime(
    timeline: Timeline,
    month_start: datetime,
    month_end: datetime,
    rate: PlanRate,
    *,
    ip_rate: PlanRate | None = None,
    suspended_billed: bool = False,
) -> MonthRuntime:
    """Bill [month_start, month_end) of ``timeline`` (see the module docstring)."""
    start, end = as_utc(month_start), as_utc(month_end)
    if end <= start:
        raise ValueError(f"the month ends {end.isoformat()}, not after its start {start.isoformat()}")
    billed = _billed_states(suspended_billed)
    segments = [
        clipped
        for interval in timeline.intervals
        if interval.state in billed
        for clipped in _clip(interval.start, interval.end, start, end)
    ]
    runtime = sum((seg_end - seg_start for seg_start, seg_end in segments), _ZERO)
    hours = started_hours(runtime)
    observed = min(hours, started_hours(_observed(segments, timeline.evidence_at)))
    ip_hours, ip_tokens = _ip_usage(timeline.ip_intervals, start, end, ip_rate)
    return MonthRuntime(
        runtime=runtime,
        billed_hours=hours,
        observed_hours=observed,
        inferred_hours=hours - observed,
        tokens=capped_tokens(hours, rate),
        capped=capped_tokens(hours, rate) < hours * rate.tokens_per_hour,
        ip_hours=ip_hours,
        ip_tokens=ip_tokens,
    )


def _billed_states(suspended_billed: bool) -> frozenset[PowerState]:
    if suspended_billed:
        return frozenset({PowerState.RUNNING, PowerState.SUSPENDED})
    return frozenset({PowerState.RUNNING})


def _clip(start: datetime, end: datetime, lo: datetime, hi: datetime) -> Iterator[tuple[datetime, datetime]]:
    clipped_start, clipped_end = max(start, lo), min(end, hi)
    if clipped_start < clipped_end:
        yield clipped_start, clipped_end


def _observed(segments: Sequence[tuple[datetime, datetime]], evidence_at: Iterable[datetime]) -> timedelta:
    """Billed time inside the UTC clock hours that hold a piece of evidence."""
    hours = sorted({instant.replace(minute=0, second=0, microsecond=0) for instant in evidence_at})
    return sum(
        (
            clip_end - clip_start
            for hour in hours
            for seg_start, seg_end in segments
            for clip_start, clip_end in _clip(seg_start, seg_end, hour, hour + HOUR)
        ),
        _ZERO,
    )


def _ip_usage(
    intervals: Sequence[IpInterval], start: datetime, end: datetime, rate: PlanRate | None
) -> tuple[int, int]:
    """(hours, tokens) of additional IPs: each IP slot rounds its own time up and meets its own cap."""
    most = max((interval.count for interval in intervals), default=0)
    hours = tokens = 0
    for slot in range(1, most + 1):
        held = sum(
            (
                clip_end - clip_start
                for interval in intervals
                if interval.count >= slot
                for clip_start, clip_end in _clip(interval.start, interval.end, start, end)
            ),
            _ZERO,
        )
        slot_hours = started_hours(held)
        hours += slot_hours
        tokens += capped_tokens(slot_hours, rate) if rate is not None else 0
    return hours, tokens


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)
