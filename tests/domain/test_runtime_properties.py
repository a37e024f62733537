"""The runtime rule against random true histories: never bills more than ran, bills all when it can know.

Each example draws a server's true history (created, then starts, stops, restarts, suspensions,
resumptions and maybe a deletion at random instants), polls at random instants (days may pass without
one), and the task log that records every transition, with or without its timestamps. The truth is the
history itself; the rule sees only the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.domain.pricing import PlanRate
from bridge.domain.runtime import (
    Change,
    Event,
    Evidence,
    Poll,
    PowerState,
    bound_by_log_order,
    build_timeline,
    month_runtime,
    started_hours,
)

MONTH_START = datetime(2022, 10, 1, tzinfo=UTC)
MONTH_END = datetime(2022, 11, 1, tzinfo=UTC)
EARLIEST = MONTH_START - timedelta(days=5)
LAST_SYNC = MONTH_END + timedelta(minutes=5)  # the sync just before invoicing
HORIZON = MONTH_END + timedelta(days=2)
RUNNING, STOPPED, SUSPENDED, GONE = (
    PowerState.RUNNING,
    PowerState.STOPPED,
    PowerState.SUSPENDED,
    PowerState.GONE,
)

# What each action may follow in a true history, and the state it leads to (None: back from suspension).
ACTIONS: dict[Change, tuple[frozenset[PowerState], PowerState | None]] = {
    Change.STARTED: (frozenset({STOPPED}), RUNNING),
    Change.STOPPED: (frozenset({RUNNING}), STOPPED),
    Change.RESTARTED: (frozenset({RUNNING}), RUNNING),
    Change.SUSPENDED: (frozenset({RUNNING, STOPPED}), SUSPENDED),
    Change.RESUMED: (frozenset({SUSPENDED}), None),
    Change.DELETED: (frozenset({RUNNING, STOPPED, SUSPENDED}), GONE),
}


@dataclass(frozen=True)
class History:
    """What really happened: creation, then each transition at its instant, oldest first."""

    created_at: datetime
    transitions: tuple[tuple[datetime, Change, PowerState], ...]  # instant, change, state after

    def state_at(self, instant: datetime) -> PowerState:
        state = RUNNING if instant >= self.created_at else GONE
        for when, _, after in self.transitions:
            if when <= instant:
                state = after
        return state

    def runtime(self, start: datetime, end: datetime, suspended_billed: bool) -> timedelta:
        billed = {RUNNING, SUSPENDED} if suspended_billed else {RUNNING}
        edges = [(self.created_at, RUNNING)] + [(when, after) for when, _, after in self.transitions]
        total = timedelta(0)
        for (begin, state), (finish, _) in zip(edges, [*edges[1:], (HORIZON, GONE)], strict=True):
            if state in billed:
                total += max(timedelta(0), min(finish, end) - max(begin, start))
        return total


def seconds(low: int, high: int) -> st.SearchStrategy[timedelta]:
    return st.integers(low, high).map(lambda n: timedelta(seconds=n))


@st.composite
def histories(draw: st.DrawFn) -> History:
    created_at = EARLIEST + draw(seconds(0, 20 * 86400))
    state, before_suspension, instant = RUNNING, RUNNING, created_at
    transitions: list[tuple[datetime, Change, PowerState]] = []
    for _ in range(draw(st.integers(0, 14))):
        instant += draw(seconds(1, 5 * 86400))
        possible = [change for change, (follows, _) in ACTIONS.items() if state in follows]
        change = draw(st.sampled_from(possible))
        if instant >= HORIZON or (change is Change.DELETED and draw(st.integers(0, 3))):
            continue  # deletions are rarer, so most histories live on
        if change is Change.SUSPENDED:
            before_suspension = state
        state = ACTIONS[change][1] or before_suspension
        transitions.append((instant, change, state))
        if state is GONE:
            break
    return History(created_at, tuple(transitions))


@st.composite
def poll_instants(draw: st.DrawFn, history: History) -> list[datetime]:
    """Random syncs while the server is listed (none for days is allowed), plus the one before invoicing."""
    count = draw(st.integers(0, 60))
    span = int((HORIZON - EARLIEST).total_seconds())
    offsets = draw(st.lists(seconds(0, span), min_size=count, max_size=count))
    instants = sorted({EARLIEST + offset for offset in offsets} | {LAST_SYNC})
    return [i for i in instants if history.state_at(i) is not GONE and i >= history.created_at]


def evidence(history: History, polled: list[datetime], timed: list[bool]) -> Evidence:
    log = [
        Event(change, when if keep else None)
        for (when, change, _), keep in zip(history.transitions, timed, strict=False)
    ]
    return Evidence(
        history.created_at,
        tuple(Poll(i, history.state_at(i)) for i in polled),
        bound_by_log_order(log),
    )


def billed(history: History, ev: Evidence, suspended_billed: bool) -> tuple[int, int]:
    bill = month_runtime(
        build_timeline(ev), MONTH_START, MONTH_END, PlanRate(2), suspended_billed=suspended_billed
    )
    assert bill.observed_hours + bill.inferred_hours == bill.billed_hours
    assert bill.tokens == 2 * bill.billed_hours
    truth = started_hours(history.runtime(MONTH_START, MONTH_END, suspended_billed))
    return bill.billed_hours, truth


@settings(max_examples=500, derandomize=True, deadline=None)
@given(data=st.data(), suspended_billed=st.booleans())
def test_a_task_log_with_timestamps_bills_exactly_the_true_runtime(
    data: st.DataObject, suspended_billed: bool
) -> None:
    history = data.draw(histories())
    polled = data.draw(poll_instants(history))
    every_timestamp = [True] * len(history.transitions)

    hours, truth = billed(history, evidence(history, polled, every_timestamp), suspended_billed)

    assert hours == truth


@settings(max_examples=500, derandomize=True, deadline=None)
@given(data=st.data(), suspended_billed=st.booleans())
def test_without_timestamps_the_rule_never_bills_more_than_ran(
    data: st.DataObject, suspended_billed: bool
) -> None:
    history = data.draw(histories())
    polled = data.draw(poll_instants(history))
    timed = data.draw(
        st.lists(st.booleans(), min_size=len(history.transitions), max_size=len(history.transitions))
    )

    hours, truth = billed(history, evidence(history, polled, timed), suspended_billed)

    assert hours <= truth
