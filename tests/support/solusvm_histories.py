"""Random true histories of a SolusVM server, with the polls and task log a sync would see of them.

Shared by the property tests of the runtime rule (tests/domain/test_runtime_properties.py) and of the
wired sync-and-invoice path (tests/usage/test_solusvm_runtime_properties.py). The truth is the history
itself; the code under test sees only the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from bridge.domain.runtime import Change, Event, Evidence, Poll, PowerState, bound_by_log_order

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
