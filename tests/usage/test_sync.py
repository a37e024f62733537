"""Usage collection never loses or doubles an hour: re-runs, crashes, vendor errors, late links."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, update
from structlog.testing import capture_logs

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.domain.usage import UsageRecord, Window
from bridge.errors import VendorError
from bridge.fleio.connection import connect
from bridge.fleio.nova_usage import NovaUsageCollector
from bridge.fleio.settings import OpenStackSettings
from bridge.solusvm.client import SolusVMClient
from bridge.solusvm.events import SolusVMEventLog
from bridge.solusvm.runtime_reader import SolusVMRuntimeReader
from bridge.store import usage as store
from bridge.store.database import make_engine
from bridge.store.tables import leases, solusvm_polls, solusvm_servers, usage_records, usage_watermarks
from bridge.sync.jobs import JobStopped
from bridge.usage.ports import UsageSource
from bridge.usage.solusvm_runtime import SolusVMRuntime
from bridge.usage.sync import Current, Feed, Settled, UsageSync
from tests.fakes.nova import FakeOpenStack, Fault, RecordedRequest
from tests.fakes.solusvm import FakeSolusVM
from tests.support.cli import run_cli

OCT = datetime(2022, 10, 1, tzinfo=UTC)
NOV = datetime(2022, 11, 1, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
UTC_ZONE = ZoneInfo("UTC")


@dataclass
class ScriptedNova:
    """The collector port, answering from a script: project -> instance -> hours in every window."""

    instances: dict[str, tuple[str, Decimal]] = field(default_factory=dict)
    fail_at: datetime | None = None
    calls: list[Window] = field(default_factory=list)
    source: str = "openstack"

    def collect(self, window: Window) -> list[UsageRecord]:
        self.calls.append(window)
        if self.fail_at == window.start:
            raise VendorError("openstack", "/os-simple-tenant-usage", "HTTP 500 after 5 attempts")
        return [
            UsageRecord("openstack", uuid, f"vm-{uuid}", project, "m1.small", window, hours)
            for uuid, (project, hours) in self.instances.items()
        ]


def nova_feed(source: UsageSource, zone: ZoneInfo = UTC_ZONE) -> Feed:
    """OpenStack's feed: hourly windows that ended 15 minutes ago."""
    return Feed(source, Settled(zone))


@pytest.fixture
def nova() -> ScriptedNova:
    return ScriptedNova({"i-1": ("p-1", Decimal(1)), "i-2": ("p-2", Decimal("0.25"))})


@pytest.fixture
def sync(app: App, clock: FixedClock, nova: ScriptedNova) -> UsageSync:
    return UsageSync(app.uow, clock, [nova_feed(nova)])


def dump(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(select(usage_records).order_by(usage_records.c.id)).all()
        marks = connection.execute(select(usage_watermarks)).all()
    return [tuple(row) for row in rows] + [tuple(mark) for mark in marks]


def hours_by_instance(engine: Engine) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    with engine.connect() as connection:
        for row in connection.execute(select(usage_records.c.resource_id, usage_records.c.hours)):
            totals[row.resource_id] = totals.get(row.resource_id, Decimal(0)) + row.hours
    return totals


def test_october_is_collected_once_and_a_rerun_changes_nothing(sync: UsageSync, app: App) -> None:
    (report,) = sync.run(("openstack",), until=NOV)
    assert (report.collected_from, report.collected_until) == (OCT, NOV)
    assert report.windows == 31 * 24
    assert hours_by_instance(app.engine) == {"i-1": Decimal(744), "i-2": Decimal(186)}
    before = dump(app.engine)
    (again,) = sync.run(("openstack",), until=NOV)
    assert again.windows == 0
    (forced,) = sync.run(("openstack",), until=NOV, start=OCT)
    assert (forced.windows, forced.inserted) == (744, 0)
    assert dump(app.engine) == before


def test_a_crash_between_windows_resumes_with_no_gap_and_no_overlap(
    app: App, clock: FixedClock, nova: ScriptedNova
) -> None:
    steps = iter(range(100))

    def crash_after_ten_windows() -> None:
        if next(steps) == 10:
            raise JobStopped()

    crashing = UsageSync(app.uow, clock, [nova_feed(nova)], checkpoint=crash_after_ten_windows)
    with pytest.raises(JobStopped):
        crashing.run(("openstack",), until=NOV)
    with app.engine.connect() as connection:
        mark = store.watermark(connection, "openstack")
    assert mark is not None and mark.collected_until == OCT + timedelta(hours=10)
    UsageSync(app.uow, clock, [nova_feed(nova)]).run(("openstack",), until=NOV)
    assert [window.start for window in nova.calls] == [OCT + timedelta(hours=h) for h in range(744)]
    assert hours_by_instance(app.engine)["i-1"] == Decimal(744)
    with app.engine.connect() as connection:
        windows = sorted(
            connection.scalars(
                select(usage_records.c.window_start).where(usage_records.c.resource_id == "i-1")
            )
        )
    assert windows == [OCT + timedelta(hours=h) for h in range(744)]


def test_a_vendor_error_keeps_the_watermark_and_the_next_run_resumes_there(
    sync: UsageSync, app: App, nova: ScriptedNova
) -> None:
    nova.fail_at = OCT + timedelta(hours=5)
    with capture_logs() as logs:
        (report,) = sync.run(("openstack",), until=NOV)
    assert report.error == "openstack /os-simple-tenant-usage: HTTP 500 after 5 attempts"
    assert [entry for entry in logs if entry["log_level"] == "error"] == [
        {
            "event": "usage collection failed",
            "log_level": "error",
            "source": "openstack",
            "error": report.error,
        }
    ]
    with app.engine.connect() as connection:
        mark = store.watermark(connection, "openstack")
    assert mark is not None
    assert mark.collected_until == OCT + timedelta(hours=5)
    assert mark.last_error == report.error
    nova.fail_at = None
    (resumed,) = sync.run(("openstack",), until=NOV)
    assert resumed.collected_from == OCT + timedelta(hours=5)
    with app.engine.connect() as connection:
        mark = store.watermark(connection, "openstack")
    assert mark is not None and mark.last_error is None and mark.collected_until == NOV
    assert hours_by_instance(app.engine)["i-1"] == Decimal(744)


def test_a_later_answer_with_fewer_hours_never_lowers_the_record(
    sync: UsageSync, app: App, nova: ScriptedNova
) -> None:
    """After a resize Nova reports less for a closed window than it first did: the first answer stands."""
    sync.run(("openstack",), until=OCT + timedelta(hours=1), start=OCT)
    nova.instances["i-1"] = ("p-1", Decimal("0.4"))
    sync.run(("openstack",), until=OCT + timedelta(hours=1), start=OCT)
    assert hours_by_instance(app.engine)["i-1"] == Decimal(1)
    nova.instances["i-2"] = ("p-2", Decimal("0.5"))
    (report,) = sync.run(("openstack",), until=OCT + timedelta(hours=1), start=OCT)
    assert report.raised == 1
    assert hours_by_instance(app.engine)["i-2"] == Decimal("0.5")


def test_dry_run_collects_and_reports_but_writes_nothing(sync: UsageSync, app: App) -> None:
    (report,) = sync.run(("openstack",), until=OCT + timedelta(hours=3), start=OCT, dry_run=True)
    assert (report.windows, report.inserted) == (3, 6)
    assert dump(app.engine) == []


def test_only_settled_windows_are_collected(app: App, clock: FixedClock, nova: ScriptedNova) -> None:
    clock.set(datetime(2022, 10, 1, 3, 10, tzinfo=UTC))
    windows = Settled(ZoneInfo("UTC"), settle=timedelta(minutes=15))
    sync = UsageSync(app.uow, clock, [Feed(nova, windows)])
    (report,) = sync.run(("openstack",), start=OCT)
    assert report.collected_until == datetime(2022, 10, 1, 2, tzinfo=UTC)


def test_a_fresh_store_starts_at_the_previous_billing_month_in_the_billing_time_zone(
    app: App, clock: FixedClock, nova: ScriptedNova
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    sync = UsageSync(app.uow, clock, [nova_feed(nova, berlin)])
    windows = sync.windows(sync.feeds[0], clock.now(), until=datetime(2022, 11, 1, tzinfo=berlin))
    assert windows[0].start == datetime(2022, 9, 30, 22, tzinfo=UTC)
    assert windows[-1].end == datetime(2022, 10, 31, 23, tzinfo=UTC)


def test_unlinked_owners_are_kept_and_reported_until_linked(sync: UsageSync, app: App) -> None:
    sync.run(("openstack",), until=OCT + timedelta(hours=2), start=OCT)
    with app.engine.connect() as connection:
        unlinked = store.unlinked_owners(connection)
    assert [(item.source, item.owner, item.resources, item.records) for item in unlinked] == [
        ("openstack", "p-1", 1, 2),
        ("openstack", "p-2", 1, 2),
    ]
    assert unlinked[0].first_window == OCT
    client = app.clients.add(email="ops@acme.com", name="Acme")
    app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, "p-1")
    with app.engine.connect() as connection:
        assert [item.owner for item in store.unlinked_owners(connection)] == ["p-2"]
        billed = store.usage_of_owners(connection, [("openstack", "p-1")], OCT, NOV)
    assert [(row.resource_id, row.hours) for row in billed] == [("i-1", Decimal(1)), ("i-1", Decimal(1))]


@pytest.fixture
def solus() -> Iterator[FakeSolusVM]:
    with FakeSolusVM(per_page=2) as fake:
        yield fake


def test_solusvm_bills_the_runtime_between_observations_hour_by_hour_however_often_it_is_observed(
    app: App, clock: FixedClock, solus: FakeSolusVM
) -> None:
    user = solus.add_user("ann@example.com")
    plan = solus.add_plan("small", tokens_per_hour=7, tokens_per_month=5000)
    solus.add_server("web-1", user_id=user["id"], plan_id=plan["id"], created_at="2022-10-01T09:50:00Z")
    solus.add_server(
        "off-1", user_id=user["id"], plan_id=plan["id"], status="stopped", created_at="2022-09-01T00:00:00Z"
    )
    client = SolusVMClient(solus.url, solus.token, sleep=lambda _s: None)
    reader = SolusVMRuntimeReader(client, SolusVMEventLog(client, clock))
    runtime = SolusVMRuntime(app.uow, clock, reader, ZoneInfo("UTC"))
    feed = Feed(runtime, Current(), plans=runtime.plans_seen, derive=runtime.derive)
    sync = UsageSync(app.uow, clock, [feed])
    for minute in (5, 20, 55):
        clock.set(datetime(2022, 10, 1, 10, minute, tzinfo=UTC))
        sync.run(("solusvm",))
    clock.set(datetime(2022, 10, 1, 11, 1, tzinfo=UTC))
    sync.run(("solusvm",))
    sync.run(("solusvm",))  # a re-run adds nothing
    with app.engine.connect() as connection:
        rows = connection.execute(
            select(
                usage_records.c.resource_name, usage_records.c.window_start, usage_records.c.hours
            ).order_by(usage_records.c.window_start)
        ).all()
        rates = store.plan_rates(connection)
    # created 09:50, seen running until 11:01: 10 min, a full hour, 1 min; the stopped server nothing
    assert [(row.resource_name, row.window_start.hour, row.hours) for row in rows] == [
        ("web-1", 9, Decimal("0.16666666")),
        ("web-1", 10, Decimal(1)),
        ("web-1", 11, Decimal("0.01666666")),
    ]
    assert rates[str(plan["id"])].tokens_per_month == 5000


def test_a_solusvm_dry_run_stores_neither_evidence_nor_hours_and_a_refused_answer_stores_nothing(
    app: App, clock: FixedClock, solus: FakeSolusVM
) -> None:
    user = solus.add_user("ann@example.com")
    plan = solus.add_plan("small", tokens_per_hour=7)
    solus.add_server("web-1", user_id=user["id"], plan_id=plan["id"], created_at="2022-10-01T09:50:00Z")
    client = SolusVMClient(solus.url, solus.token, sleep=lambda _s: None)
    runtime = SolusVMRuntime(
        app.uow, clock, SolusVMRuntimeReader(client, SolusVMEventLog(client, clock)), UTC_ZONE
    )
    sync = UsageSync(
        app.uow, clock, [Feed(runtime, Current(), plans=runtime.plans_seen, derive=runtime.derive)]
    )
    clock.set(datetime(2022, 10, 1, 12, tzinfo=UTC))
    (report,) = sync.run(("solusvm",), dry_run=True)
    assert report.records == 3  # 09:50 to 12:00: what a real run would write
    solus.fail_next(50, path="/tasks")
    (failed,) = sync.run(("solusvm",))
    assert failed.error is not None
    with app.engine.connect() as connection:
        assert connection.execute(select(usage_records)).all() == []
        assert connection.execute(select(solusvm_polls)).all() == []
        assert connection.execute(select(solusvm_servers)).all() == []


def test_impossible_nova_hours_are_not_stored_and_the_window_is_collected_again_later(
    app: App, clock: FixedClock
) -> None:
    """Nova once reported 25 h for a 1 h window and the bridge stored (and would have billed) them."""
    with FakeOpenStack(FixedClock(NOV)) as fake:
        fake.create_server("p-1", at=OCT - timedelta(days=1), server_id="i-1")
        settings = OpenStackSettings(**fake.section())
        nova = NovaUsageCollector(connect(settings), clock=clock, sleep=lambda _: None)
        sync = UsageSync(app.uow, clock, [nova_feed(nova)])
        sync.run(("openstack",), start=OCT, until=OCT + timedelta(hours=2))
        fake.fail_next(Fault.server_field("hours", 25.0))

        (refused,) = sync.run(("openstack",), until=OCT + timedelta(hours=4))

        assert refused.error is not None
        assert "field 'tenant_usages[0].server_usages[0].hours': is 25.0 for instance i-1" in refused.error
        with app.engine.connect() as connection:
            mark = store.watermark(connection, "openstack")
        assert mark is not None and mark.collected_until == OCT + timedelta(hours=2)
        assert mark.last_error == refused.error
        assert hours_by_instance(app.engine) == {"i-1": Decimal(2)}

        (resumed,) = sync.run(("openstack",), until=OCT + timedelta(hours=4))

    assert (resumed.error, resumed.collected_from) == (None, OCT + timedelta(hours=2))
    assert hours_by_instance(app.engine) == {"i-1": Decimal(4)}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_crash_loop_still_moves_the_watermark_with_every_run(tmp_path: Path, database_url: str) -> None:
    """Sync used to commit batches of 20,000 records: a run killed (SIGKILL, no cleanup) before its first
    batch kept nothing, so a crash loop never progressed. Each run here is killed while reading its third
    window and must keep the two windows it read."""
    binary = Path(sys.executable).parent / "billing-bridge"
    runs: list[subprocess.Popen[bytes]] = []
    seen = {"usage requests": 0}
    lock = threading.Lock()

    def kill_the_run_at_every_third_window(_request: RecordedRequest) -> None:
        with lock:
            seen["usage requests"] += 1
            third = seen["usage requests"] % 3 == 0
        if third:
            os.kill(runs[-1].pid, signal.SIGKILL)

    marks = []
    first_lapse = datetime(2000, 1, 1, tzinfo=UTC)
    engine = make_engine(database_url)
    with FakeOpenStack(FixedClock(NOV)) as fake:
        fake.create_server("p-1", at=OCT, server_id="i-1")
        fake.before_usage = kill_the_run_at_every_third_window
        config = tmp_path / "settings.toml"
        section = "".join(f"{key} = {json.dumps(value)}\n" for key, value in fake.section().items())
        config.write_text(f'[database]\nurl = "{database_url}"\n[openstack]\n{section}')
        for _ in range(3):
            sync = ["sync", "--source", "openstack", "--until", "2022-10-02"]
            command = [str(binary), "--config", str(config), *sync]
            runs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            assert runs[-1].wait(timeout=300) == -signal.SIGKILL, "the run was not killed mid-window"
            with engine.begin() as connection:
                mark = store.watermark(connection, "openstack")
                # The dead run's lease lapses (as lease_seconds would let it) before the next run starts.
                connection.execute(
                    update(leases).where(leases.c.name == "job:usage_sync").values(expires_at=first_lapse)
                )
            marks.append(mark.collected_until if mark else None)
    engine.dispose()

    first = datetime(2022, 9, 1, tzinfo=UTC)  # a fresh store starts a billing month before --until's
    assert marks == [first + timedelta(hours=2), first + timedelta(hours=4), first + timedelta(hours=6)]


def test_a_sync_blocked_by_another_transaction_fails_with_one_line_naming_the_timeout(
    tmp_path: Path, database_url: str, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run blocked by another transaction used to wait forever on MariaDB and PostgreSQL."""
    with FakeOpenStack(FixedClock(NOV)) as fake:
        fake.create_server("p-1", at=OCT, server_id="i-1")
        config = tmp_path / "settings.toml"
        section = "".join(f"{key} = {json.dumps(value)}\n" for key, value in fake.section().items())
        config.write_text(
            f'[database]\nurl = "{database_url}"\nlock_timeout_seconds = 1\n'
            f'[logging]\nlevel = "warning"\n[openstack]\n{section}'
        )
        sync = ["--config", str(config), "sync", "--source", "openstack", "--from", "2022-10-01"]
        assert run_cli(capsys, *sync, "--until", "2022-10-01T01:00Z")[0] == 0
        blocker = make_engine(database_url)
        with blocker.connect() as holder:
            holder.begin()
            if backend == "sqlite":
                holder.exec_driver_sql("UPDATE usage_watermarks SET records_collected = records_collected")
            else:
                holder.execute(select(usage_watermarks).with_for_update())

            code, _, err = run_cli(capsys, *sync, "--until", "2022-10-01T03:00Z")

            holder.rollback()
        blocker.dispose()

    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith(
        "error: database: waited more than database.lock_timeout_seconds (1 s) for a lock another "
        "transaction holds, so this transaction was rolled back;"
    )


def test_a_run_reports_the_windows_collected_of_those_cut_as_it_goes(sync: UsageSync) -> None:
    heard: list[tuple[int, int]] = []

    sync.run(("openstack",), until=NOV, progress=lambda done, total: heard.append((done, total)))

    assert heard[0] == (0, 744) and heard[-1] == (744, 744)
    assert [done for done, _ in heard] == [*range(745), 744]  # each window, then the end
