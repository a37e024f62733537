"""Issue 14's numbers end to end: the fake node's life -> the client's lists -> evidence -> the runtime rule.

An operator drives a fake SolusVM node through October 2022 (servers created, stopped, started, deleted
at instants of an injected clock) and syncs as the bridge would, polling the server list every hour or
every day, or not at all for three days. At the end the task list and the activity log are read and the
month is billed. The switches of the fake serve the same history with PHP date objects, without any
timestamp, or without any task or activity-log entry, so every fallback of the rule is exercised.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bridge.clock import FixedClock
from bridge.domain.money import round_money
from bridge.domain.pricing import PlanRate
from bridge.domain.runtime import Change, Event, MonthRuntime, Poll, PowerState, build_timeline, month_runtime
from bridge.solusvm.client import Server, SolusVMClient
from bridge.solusvm.events import ActivityLogEntry, ServerTask, SolusVMEventLog
from bridge.solusvm.evidence import Listed, activity_event, poll, server_evidence, task_event
from tests.fakes.solusvm import FakeSolusVM, Timestamps

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
OCTOBER = (datetime(2022, 10, 1, tzinfo=UTC), datetime(2022, 11, 1, tzinfo=UTC))
TOKEN_PRICE = Decimal("0.01")


def at(day: int, hour: int = 0, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2022, month, day, hour, minute, tzinfo=UTC)


def every(step: timedelta, start: datetime, end: datetime) -> Iterator[datetime]:
    while start <= end:
        yield start
        start += step


class Operator:
    """Drives the fake node and syncs as the bridge would: polls, and when each record was first listed."""

    def __init__(self, node: FakeSolusVM, clock: FixedClock, client: SolusVMClient, read_logs: bool) -> None:
        self.node, self.clock, self.client = node, clock, client
        self.log = SolusVMEventLog(client, clock)
        self.read_logs = read_logs
        self.polls: dict[int, list[Poll]] = defaultdict(list)
        self.created: dict[int, datetime] = {}
        self.listed: dict[tuple[str, int], Listed] = {}
        self.last_sync: datetime | None = None
        user = node.add_user("ann@example.com")
        self.user_id = user["id"]

    def plan(self, tokens_per_hour: int = 2, tokens_per_month: int = 0) -> int:
        return int(
            self.node.add_plan("Small", tokens_per_hour=tokens_per_hour, tokens_per_month=tokens_per_month)[
                "id"
            ]
        )

    def at(self, instant: datetime, act: Callable[[], object]) -> None:
        self.clock.set(instant)
        act()

    def live(self, syncs: list[datetime], changes: dict[datetime, Callable[[], object]]) -> None:
        """Syncs and changes, each at its instant, in time order."""
        for instant in sorted({*syncs, *changes}):
            if instant in changes:
                self.at(instant, changes[instant])
            if instant in syncs:
                self.sync(instant)

    def sync(self, instant: datetime) -> None:
        self.clock.set(instant)
        for server in self.client.servers():
            self._observe(server, instant)
        if self.read_logs:
            for server_id in self.created:
                for task in self.log.server_tasks(server_id):
                    self.listed.setdefault(("task", task.id), (self.last_sync, instant))
            for entry in self.log.activity_log():
                self.listed.setdefault(("activity", entry.id), (self.last_sync, instant))
        self.last_sync = instant

    def _observe(self, server: Server, instant: datetime) -> None:
        self.created[server.id] = server.created_at
        seen = poll(server, instant)
        if seen is not None:
            self.polls[server.id].append(seen)

    def october(self, server_id: int) -> MonthRuntime:
        plan = next(p for p in self.client.plans())
        evidence = server_evidence(
            server_id,
            self.created[server_id],
            self.polls[server_id],
            self.log.server_tasks(server_id),
            self.log.activity_log(),
            self.listed,
        )
        rate = PlanRate(plan.tokens_per_hour, plan.tokens_per_month or None)
        return month_runtime(build_timeline(evidence), *OCTOBER, rate)


@pytest.fixture
def operator(request: pytest.FixtureRequest, make_client: Callable[..., SolusVMClient]) -> Iterator[Operator]:
    """An operator of a node serving ``timestamps`` ("iso" by default), or no events ("none-at-all")."""
    mode: str = getattr(request, "param", "iso")
    clock = FixedClock(at(1, month=9))
    timestamps: Timestamps = "none" if mode == "none-at-all" else mode  # type: ignore[assignment]
    with FakeSolusVM(
        per_page=50, clock=clock, timestamps=timestamps, record_events=mode != "none-at-all"
    ) as node:
        client = make_client(url=node.url, token=node.token)
        yield Operator(node, clock, client, read_logs=mode != "iso")


def amount(tokens: int) -> Decimal:
    return round_money(tokens * TOKEN_PRICE, "USD")


ALL_MODES = ["iso", "php", "none", "none-at-all"]
DAILY = list(every(DAY, at(21, 6, month=9), at(1, 6, month=11)))
HOURLY = list(every(HOUR, at(20, 13, month=9), at(1, 1, month=11)))
THREE_DAY_GAP = [i for i in HOURLY if not at(9) <= i < at(12)]


def month_long_server(operator: Operator, syncs: list[datetime], tokens_per_month: int = 0) -> int:
    plan = operator.plan(tokens_per_month=tokens_per_month)
    server: dict[str, int] = {}
    operator.at(
        at(20, 12, month=9),
        lambda: server.update(operator.node.create_server("web", user_id=operator.user_id, plan_id=plan)),
    )
    for instant in syncs:
        operator.sync(instant)
    return server["id"]


@pytest.mark.parametrize("operator", ALL_MODES, indirect=True)
def test_daily_syncs_bill_a_month_long_server_744_hours(operator: Operator) -> None:
    bill = operator.october(month_long_server(operator, DAILY))

    assert (bill.billed_hours, bill.tokens, amount(bill.tokens)) == (744, 1488, Decimal("14.88"))
    assert (bill.observed_hours, bill.inferred_hours) == (31, 713)


@pytest.mark.parametrize("syncs", [HOURLY, THREE_DAY_GAP], ids=["hourly", "three-day gap"])
def test_hourly_syncs_with_or_without_a_gap_bill_744_hours(operator: Operator, syncs: list[datetime]) -> None:
    bill = operator.october(month_long_server(operator, syncs))

    assert (bill.billed_hours, bill.tokens, amount(bill.tokens)) == (744, 1488, Decimal("14.88"))


def test_the_monthly_cap_from_the_plan(operator: Operator) -> None:
    bill = operator.october(month_long_server(operator, DAILY, tokens_per_month=1000))

    assert (bill.billed_hours, bill.tokens, amount(bill.tokens), bill.capped) == (
        744,
        1000,
        Decimal("10.00"),
        True,
    )


@pytest.mark.parametrize("operator", ALL_MODES, indirect=True)
def test_created_and_deleted_two_days_later_bills_48_hours(operator: Operator) -> None:
    plan = operator.plan()
    server: dict[str, int] = {}
    operator.at(
        at(10, 8, 30),
        lambda: server.update(operator.node.create_server("web", user_id=operator.user_id, plan_id=plan)),
    )
    for instant in every(HOUR, at(10, 9), at(12, 8)):
        operator.sync(instant)
    operator.at(at(12, 8, 10), lambda: operator.client.delete_server(server["id"]))
    for instant in every(HOUR, at(12, 9), at(12, 11)):
        operator.sync(instant)

    bill = operator.october(server["id"])

    # With the delete request's timestamp: 47 h 40 min; without it, until last seen running: 47 h 30 min.
    expected = timedelta(hours=47, minutes=40 if operator.node.timestamps != "none" else 30)
    assert bill.runtime == expected
    assert (bill.billed_hours, bill.tokens, amount(bill.tokens)) == (48, 96, Decimal("0.96"))


@pytest.mark.parametrize(
    ("operator", "hours"),
    [("iso", 744 - 168), ("php", 744 - 168), ("none", 552), ("none-at-all", 552)],
    indirect=["operator"],
)
def test_a_week_stopped_bills_only_the_running_hours(operator: Operator, hours: int) -> None:
    server_id = month_long_server(operator, [])
    operator.live(
        DAILY,
        {
            at(10, 12): lambda: operator.node.stop_server(server_id),
            at(17, 12): lambda: operator.node.start_server(server_id),
        },
    )

    bill = operator.october(server_id)

    # With timestamps the task log places the stop and the start; without, the day each fell in is
    # unknown (between the syncs that saw the server running and stopped) and not billed.
    assert (bill.billed_hours, bill.tokens) == (hours, 2 * hours)
    assert bill.billed_hours <= 744 - 168


def test_suspended_days_are_not_billed_unless_the_setting_says_so(operator: Operator) -> None:
    server_id = month_long_server(operator, [])
    operator.live(
        DAILY,
        {
            at(5, 12): lambda: operator.node.suspend_server(server_id),
            at(7, 12): lambda: operator.node.resume_server(server_id),
        },
    )
    evidence = server_evidence(
        server_id,
        operator.created[server_id],
        operator.polls[server_id],
        operator.log.server_tasks(server_id),
    )
    timeline = build_timeline(evidence)

    assert month_runtime(timeline, *OCTOBER, PlanRate(2)).billed_hours == 744 - 48
    assert month_runtime(timeline, *OCTOBER, PlanRate(2), suspended_billed=True).billed_hours == 744


# --------------------------------------------------------------------------- what each record says


def server(status: str, is_suspended: bool = False) -> Server:
    return Server(1, "u", "web", status, is_suspended, 1, "ann@example.com", 1, at(1))


@pytest.mark.parametrize(
    ("status", "is_suspended", "state"),
    [
        ("started", False, PowerState.RUNNING),
        ("stopped", False, PowerState.STOPPED),
        ("paused", False, PowerState.STOPPED),
        ("not exists", False, PowerState.GONE),
        ("started", True, PowerState.SUSPENDED),
        ("processing", False, None),
        ("unavailable", False, None),
    ],
)
def test_what_a_poll_says(status: str, is_suspended: bool, state: PowerState | None) -> None:
    seen = poll(server(status, is_suspended), at(2))

    assert (seen.state if seen else None) is state


def task(action: str, status: str = "done", *stamps: datetime | None) -> ServerTask:
    created, started, finished = (*stamps, None, None, None)[:3]
    return ServerTask(7, 1, action, status, created, started, finished)


def test_a_change_that_begins_billing_counts_from_when_it_finished() -> None:
    assert task_event(task("vm-start", "done", at(2, 10), at(2, 10, 1), at(2, 10, 3))) == Event(
        Change.STARTED, at(2, 10, 3)
    )


def test_a_change_that_ends_billing_counts_from_when_it_was_asked_for() -> None:
    assert task_event(task("vm-stop", "done", at(2, 10), at(2, 10, 1), at(2, 10, 3))) == Event(
        Change.STOPPED, at(2, 10)
    )


def test_a_start_without_finished_at_is_a_change_at_an_unknown_moment_after_its_request() -> None:
    assert task_event(task("vm-start", "done", at(2, 10)), (at(2, 6), at(3, 6))) == Event(
        Change.STARTED, None, not_before=at(2, 10), not_after=at(3, 6)
    )


@pytest.mark.parametrize("status", ["done_with_errors", "pending", "queued", "running"])
def test_a_task_that_may_or_may_not_have_acted_has_no_instant(status: str) -> None:
    event = task_event(task("vm-stop", status, at(2, 10), at(2, 10), at(2, 10)))

    assert event == Event(Change.STOPPED, None, not_before=at(2, 10))


@pytest.mark.parametrize(
    ("action", "status"), [("vm-stop", "failed"), ("vm-stop", "canceled"), ("vm-reinstall", "done")]
)
def test_tasks_that_changed_nothing_are_no_evidence(action: str, status: str) -> None:
    assert task_event(task(action, status, at(2))) is None


def test_activity_entries_about_a_servers_life() -> None:
    def entry(event: str, created: datetime | None) -> ActivityLogEntry:
        return ActivityLogEntry(3, event, None, created, 1)

    assert activity_event(entry("compute_resource_vm_delete_requested", at(2))) == Event(
        Change.DELETED, at(2)
    )
    assert activity_event(entry("additional_ip_created", at(2))) == Event(Change.IP_ADDED, at(2))
    assert activity_event(entry("user_created", at(2))) is None
    assert activity_event(entry("compute_resource_vm_created", None), (None, at(3))) == Event(
        Change.CREATED, None, not_after=at(3)
    )


def test_only_the_servers_own_entries_are_its_evidence() -> None:
    mine = ActivityLogEntry(1, "compute_resource_vm_delete_requested", None, at(2), 1)
    other = ActivityLogEntry(2, "compute_resource_vm_delete_requested", None, at(3), 2)
    unnamed = ActivityLogEntry(3, "compute_resource_vm_delete_requested", None, at(4), None)

    evidence = server_evidence(1, at(1), [], entries=[other, unnamed, mine])

    assert evidence.events == (Event(Change.DELETED, at(2)),)
