"""Reading SolusVM's task list and activity log from the fake node: pages, filters, timestamps, refusals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bridge.clock import FixedClock
from bridge.errors import VendorError
from bridge.solusvm.client import SolusVMClient
from bridge.solusvm.events import ActivityLogEntry, ServerTask, SolusVMEventLog
from tests.fakes.solusvm import FakeSolusVM

CREATED = datetime(2022, 10, 10, 8, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(CREATED)


@pytest.fixture
def node(clock: FixedClock) -> Iterator[FakeSolusVM]:
    with FakeSolusVM(per_page=2, clock=clock) as fake:
        yield fake


@pytest.fixture
def events(node: FakeSolusVM, make_client: Callable[..., SolusVMClient]) -> SolusVMEventLog:
    return SolusVMEventLog(make_client(url=node.url, token=node.token), node.clock)


def a_day_of_life(node: FakeSolusVM, clock: FixedClock) -> tuple[int, int]:
    """Two servers of one user; the first is stopped, started, suspended and resumed. (user id, server id)."""
    user = node.add_user("ann@example.com")
    plan = node.add_plan("Small", tokens_per_hour=2)
    server = node.create_server("web", user_id=user["id"], plan_id=plan["id"])["id"]
    node.create_server("db", user_id=user["id"], plan_id=plan["id"])
    for hours, act in enumerate(
        (node.stop_server, node.start_server, node.suspend_server, node.resume_server), start=1
    ):
        clock.set(CREATED + timedelta(hours=hours))
        act(server)
    return user["id"], server


def test_a_servers_tasks_are_read_over_every_page_oldest_first(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock
) -> None:
    _, server = a_day_of_life(node, clock)

    tasks = events.server_tasks(server)

    assert [(t.action, t.status, t.finished_at) for t in tasks] == [
        ("vm-create", "done", CREATED),
        ("vm-stop", "done", CREATED + timedelta(hours=1)),
        ("vm-start", "done", CREATED + timedelta(hours=2)),
        ("vm-suspend", "done", CREATED + timedelta(hours=3)),
        ("vm-resume", "done", CREATED + timedelta(hours=4)),
    ]
    assert tasks[0] == ServerTask(tasks[0].id, server, "vm-create", "done", CREATED, CREATED, CREATED)
    requests = node.requests_to("GET", "/api/v1/tasks")
    assert [r.query["page"] for r in requests] == [["1"], ["2"], ["3"]]
    assert {r.query["filter[compute_resource_vm_id]"][0] for r in requests} == {str(server)}


def test_task_filters_reach_the_node(node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock) -> None:
    _, server = a_day_of_life(node, clock)

    stops = events.server_tasks(server, action="vm-stop", status="done")

    assert [t.action for t in stops] == ["vm-stop"]
    assert node.requests_to("GET", "/api/v1/tasks")[0].query["filter[action]"] == ["vm-stop"]


def test_activity_log_entries_name_their_server(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock
) -> None:
    user, server = a_day_of_life(node, clock)
    clock.set(CREATED + timedelta(days=1))
    node.delete_server(server)

    entries = events.activity_log(user_id=user)

    assert entries == [
        ActivityLogEntry(entries[0].id, "compute_resource_vm_created", "ann@example.com", CREATED, server),
        ActivityLogEntry(
            entries[1].id, "compute_resource_vm_created", "ann@example.com", CREATED, server + 1
        ),
        ActivityLogEntry(
            entries[2].id,
            "compute_resource_vm_delete_requested",
            "ann@example.com",
            CREATED + timedelta(days=1),
            server,
        ),
    ]
    deletions = events.activity_log(event="compute_resource_vm_delete_requested")
    assert [e.server_id for e in deletions] == [server]


def test_php_date_objects_are_read_in_their_zone(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock
) -> None:
    _, server = a_day_of_life(node, clock)
    node.timestamps = "php"

    tasks = events.server_tasks(server)

    assert [t.created_at for t in tasks][:2] == [CREATED, CREATED + timedelta(hours=1)]


def test_missing_timestamps_are_kept_as_none(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock
) -> None:
    _, server = a_day_of_life(node, clock)
    node.timestamps = "none"

    tasks = events.server_tasks(server)
    entries = events.activity_log()

    assert {(t.created_at, t.started_at, t.finished_at) for t in tasks} == {(None, None, None)}
    assert {e.created_at for e in entries} == {None}


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2021-12-20 16:27:19.602320414 +0000 UTC m=+0.000631810",  # Go's time.String(), as the SDK test has
        {"date": "2022-10-10 08:30:00", "timezone_type": 3, "timezone": "Mars/Olympus"},
        {"date": "2022-10-10 08:30:00", "timezone_type": 2, "timezone": "EST"},
    ],
)
def test_an_unreadable_timestamp_is_kept_as_none_not_guessed(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock, value: object
) -> None:
    _, server = a_day_of_life(node, clock)
    node.tasks[min(node.tasks)]["created_at"] = value

    assert events.server_tasks(server)[0].created_at is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (1665390600, "is neither a timestamp string nor a date object"),
        (["2022-10-10"], "is neither a timestamp string nor a date object"),
        ({"when": "2022-10-10"}, "is neither a timestamp string nor a date object"),
        ("2022-10-10T13:00:00Z", "later than the bridge's clock"),  # the clock reads 12:30
    ],
)
def test_implausible_timestamps_are_refused_naming_the_field(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock, value: object, problem: str
) -> None:
    _, server = a_day_of_life(node, clock)
    node.tasks[min(node.tasks)]["started_at"] = value

    with pytest.raises(VendorError, match=problem) as refused:
        events.server_tasks(server)

    assert refused.value.field == "started_at"


def test_a_task_that_finished_before_it_was_created_is_refused(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock
) -> None:
    _, server = a_day_of_life(node, clock)
    node.tasks[min(node.tasks)]["finished_at"] = CREATED - timedelta(hours=1)

    with pytest.raises(VendorError, match=r"finished .* before it was created") as refused:
        events.server_tasks(server)

    assert refused.value.field == "finished_at"


def test_a_task_of_another_server_is_refused(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock
) -> None:
    _, server = a_day_of_life(node, clock)
    node.tasks[min(node.tasks)]["compute_resource_vm_id"] = server + 1

    with pytest.raises(VendorError, match="ignored filter") as refused:
        events.server_tasks(server)

    assert refused.value.field == "compute_resource_vm_id"


def test_activity_data_of_an_unknown_shape_is_refused(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock
) -> None:
    a_day_of_life(node, clock)
    node.activity_logs[min(node.activity_logs)]["data"] = ["web"]

    with pytest.raises(VendorError, match="is not a JSON object") as refused:
        events.activity_log()

    assert refused.value.field == "data"


def test_an_entry_naming_no_server_is_kept_unattributed(
    node: FakeSolusVM, events: SolusVMEventLog, clock: FixedClock
) -> None:
    a_day_of_life(node, clock)
    node.activity_logs[min(node.activity_logs)]["data"] = None

    assert events.activity_log()[0].server_id is None
