"""What is actually billed for a SolusVM server, against random true histories (issue 14's property).

tests/domain/test_runtime_properties.py checks the pure rule (``month_runtime``). Here the same random
histories go through the path an invoice takes: the timeline the sync builds, the hourly usage records it
writes (:func:`bridge.usage.solusvm_runtime.hour_records`), and the SolusVM line pricing makes of the
month's records (bridge/domain/pricing.py: the month's sum rounded up, ``tokens_per_month`` cap). The
billed hours must never exceed the true runtime rounded up, must equal it when the task log carries every
transition's timestamp, and must equal ``month_runtime``'s for the same evidence, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.domain.cycles import BillingCycle
from bridge.domain.pricing import PlanRate, PriceBook, price_resource
from bridge.domain.runtime import Change, Evidence, PowerState, build_timeline, month_runtime, started_hours
from bridge.solusvm.client import Plan, Server
from bridge.solusvm.events import (
    TASK_DONE,
    VM_DELETE,
    VM_RESTART,
    VM_RESUME,
    VM_START,
    VM_STOP,
    VM_SUSPEND,
    ServerTask,
)
from bridge.solusvm.runtime_reader import RuntimeReading, SolusVMRuntimeReader
from bridge.store.solusvm_evidence import StoredServer
from bridge.store.tables import (
    solusvm_polls,
    solusvm_records,
    solusvm_servers,
    usage_records,
    usage_watermarks,
)
from bridge.usage.solusvm_runtime import SolusVMRuntime, hour_records, open_months, runtime_split
from bridge.usage.sync import Current, Feed, UsageSync
from tests.support.solusvm_histories import (
    EARLIEST,
    LAST_SYNC,
    MONTH_END,
    MONTH_START,
    History,
    evidence,
    histories,
    poll_instants,
)

PLAN = 3
TOKENS_PER_HOUR = 7
OCTOBER = BillingCycle(MONTH_START, MONTH_END)


def rates() -> st.SearchStrategy[PlanRate]:
    """The plan's rate: without a cap, or with one that a long runtime reaches."""
    return st.sampled_from([None, 0, 1000, 5000]).map(lambda cap: PlanRate(TOKENS_PER_HOUR, cap))


def invoiced(ev: Evidence, rate: PlanRate) -> tuple[Decimal, int]:
    """(billed hours, tokens) of October as the sync writes it at ``LAST_SYNC`` and invoicing prices it."""
    server = StoredServer(1, "web-1", 10, PLAN, ev.created_at, LAST_SYNC)
    timeline = build_timeline(ev)
    records = hour_records(
        server, timeline, open_months(LAST_SYNC, ZoneInfo("UTC")), LAST_SYNC, {PLAN: TOKENS_PER_HOUR}
    )
    october = [record for record in records if MONTH_START <= record.window.start < MONTH_END]
    book = PriceBook("EUR", token_price=Decimal("0.01"), plans={str(PLAN): rate})
    lines = price_resource(october, OCTOBER, book) if october else ()
    assert len(lines) <= 1
    return (lines[0].billed_hours, lines[0].tokens or 0) if lines else (Decimal(0), 0)


def check(history: History, ev: Evidence, rate: PlanRate, *, exact: bool) -> None:
    hours, tokens = invoiced(ev, rate)
    truth = started_hours(history.runtime(MONTH_START, MONTH_END, suspended_billed=False))
    rule = month_runtime(build_timeline(ev), MONTH_START, MONTH_END, rate)

    assert hours <= truth
    if exact:
        assert hours == truth
    assert hours == rule.billed_hours
    assert tokens == rule.tokens
    cap = rate.tokens_per_month
    assert tokens == (int(hours) * TOKENS_PER_HOUR if cap is None else min(int(hours) * TOKENS_PER_HOUR, cap))


@settings(max_examples=300, derandomize=True, deadline=None)
@given(data=st.data(), rate=rates())
def test_with_every_transition_timed_the_invoice_bills_exactly_the_true_runtime_rounded_up(
    data: st.DataObject, rate: PlanRate
) -> None:
    history = data.draw(histories())
    polled = data.draw(poll_instants(history))

    check(history, evidence(history, polled, [True] * len(history.transitions)), rate, exact=True)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(data=st.data(), rate=rates())
def test_without_timestamps_the_invoice_never_bills_more_than_ran_and_agrees_with_the_rule(
    data: st.DataObject, rate: PlanRate
) -> None:
    history = data.draw(histories())
    polled = data.draw(poll_instants(history))
    count = len(history.transitions)
    timed = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))

    check(history, evidence(history, polled, timed), rate, exact=False)


# -- several syncs over the month, through the sync loop and a real SQLite store --------------------------

_ACTIONS = {
    Change.STARTED: VM_START,
    Change.STOPPED: VM_STOP,
    Change.RESTARTED: VM_RESTART,
    Change.SUSPENDED: VM_SUSPEND,
    Change.RESUMED: VM_RESUME,
    Change.DELETED: VM_DELETE,
}
_STATUSES = {PowerState.RUNNING: "started", PowerState.STOPPED: "stopped", PowerState.SUSPENDED: "stopped"}
_PLAN = Plan(PLAN, "small", TOKENS_PER_HOUR, 0, 0, 0, None, None)


class HistoryReader(SolusVMRuntimeReader):
    """SolusVM as a sync at ``now`` reads it for one true history: the server while it exists (its status
    ``processing``, which says nothing, at the instants in ``busy``), and a task per transition that has
    happened (with or without its timestamps)."""

    def __init__(self, history: History, timed: list[bool], busy: frozenset[datetime]) -> None:
        self._history = history
        self._timed = timed
        self._busy = busy

    def read(self, now: datetime, known_server_ids: Iterable[int]) -> RuntimeReading:
        history = self._history
        state = history.state_at(now)
        listed = now >= history.created_at and state is not PowerState.GONE
        server = Server(
            1,
            "uuid-1",
            "web-1",
            "processing" if now in self._busy else _STATUSES.get(state, "stopped"),
            state is PowerState.SUSPENDED,
            10,
            "ann@example.com",
            PLAN,
            history.created_at,
        )
        logged = zip(history.transitions, self._timed, strict=True)
        tasks = tuple(
            ServerTask(n, 1, _ACTIONS[change], TASK_DONE, *((when,) * 3 if keep else (None,) * 3))
            for n, ((when, change, _), keep) in enumerate(logged, start=1)
            if when <= now
        )
        return RuntimeReading(now, (_PLAN,), (server,) if listed else (), tasks, ())


def _forget_solusvm(app: App) -> None:
    """A fresh SolusVM history for the next example (hypothesis reuses the test's database)."""
    with app.engine.begin() as connection:
        for table in (usage_records, usage_watermarks, solusvm_records, solusvm_polls, solusvm_servers):
            connection.execute(delete(table))


def _synced(app: App, clock: FixedClock, reader: HistoryReader, syncs: list[datetime]) -> Decimal:
    """October's usage hours as stored after a sync at each of ``syncs``."""
    _forget_solusvm(app)
    runtime = SolusVMRuntime(app.uow, clock, reader, ZoneInfo("UTC"))
    sync = UsageSync(
        app.uow, clock, [Feed(runtime, Current(), plans=runtime.plans_seen, derive=runtime.derive)]
    )
    for at in syncs:
        clock.set(at)
        (report,) = sync.run(("solusvm",))
        assert report.error is None, report
    with app.engine.connect() as connection:
        stored = connection.execute(
            select(usage_records.c.hours).where(
                usage_records.c.window_start >= MONTH_START, usage_records.c.window_start < MONTH_END
            )
        ).scalars()
        return sum(stored, Decimal(0))


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_syncs_at_random_instants_bill_what_all_the_stored_evidence_supports(
    app: App, clock: FixedClock, data: st.DataObject
) -> None:
    history = data.draw(histories())
    count = len(history.transitions)
    timed = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))
    span = int((LAST_SYNC - EARLIEST).total_seconds())
    drawn = data.draw(st.lists(st.tuples(st.integers(0, span), st.booleans()), min_size=3, max_size=8))
    syncs = sorted({EARLIEST + timedelta(seconds=offset) for offset, _ in drawn} | {LAST_SYNC})
    busy = frozenset(EARLIEST + timedelta(seconds=offset) for offset, says_nothing in drawn if says_nothing)

    hours = _synced(app, clock, HistoryReader(history, timed, busy - {LAST_SYNC}), syncs)

    billed = int(hours.to_integral_value(rounding=ROUND_CEILING))  # pricing: the month's sum rounded up
    with app.uow.reading() as tx:
        split = runtime_split(tx, [1], MONTH_START, MONTH_END)
    everything_stored = split[1].billed_hours if 1 in split else 0
    truth = started_hours(history.runtime(MONTH_START, MONTH_END, suspended_billed=False))
    assert billed == everything_stored
    assert billed <= truth
    if all(timed) and any(
        history.state_at(at) is not PowerState.GONE and at >= history.created_at for at in syncs
    ):
        assert billed == truth


def test_a_runtime_microseconds_over_a_whole_hour_is_invoiced_as_month_runtime_bills_it() -> None:
    """A poll instant carries microseconds; the evidence keeps whole seconds, so the hourly records (each
    rounded to 8 places) and the month's rule cannot disagree by an hour."""
    created = datetime(2022, 10, 3, 10, 20, tzinfo=UTC)
    history = History(created, ())
    ev = evidence(history, [created + timedelta(hours=1, microseconds=1)], [])

    hours, _ = invoiced(ev, PlanRate(TOKENS_PER_HOUR))

    assert hours == month_runtime(build_timeline(ev), MONTH_START, MONTH_END, PlanRate(7)).billed_hours == 1


def test_a_runtime_one_second_over_a_whole_hour_bills_the_started_hour() -> None:
    created = datetime(2022, 10, 3, 10, 20, tzinfo=UTC)
    history = History(created, ())
    ev = evidence(history, [created + timedelta(hours=1, seconds=1, microseconds=999_999)], [])

    hours, _ = invoiced(ev, PlanRate(TOKENS_PER_HOUR))

    assert hours == month_runtime(build_timeline(ev), MONTH_START, MONTH_END, PlanRate(7)).billed_hours == 2
