"""Usage rolled up per resource, plan and billing day on every database: kept in the window's own
transaction, raised by exactly what a re-collection adds, summed exactly over a cycle, rebuilt for another
zone, and the days kept when the hourly evidence is pruned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bridge.domain.usage import UsageRecord, Window
from bridge.store import usage as store
from bridge.store import usage_rollups as rollups
from bridge.store.tables import usage_records, usage_rollups
from bridge.store.unit_of_work import UnitOfWork

OCT = datetime(2022, 10, 1, tzinfo=UTC)
NOV = datetime(2022, 11, 1, tzinfo=UTC)
AT = NOV + timedelta(hours=6)
OWNERS = [("openstack", "p-1"), ("openstack", "p-2")]


def record(
    hour: int,
    hours: str,
    *,
    resource: str = "i-1",
    plan: str = "m1.small",
    owner: str = "p-1",
    name: str = "",
) -> UsageRecord:
    window = Window(OCT + timedelta(hours=hour), OCT + timedelta(hours=hour + 1))
    return UsageRecord("openstack", resource, name or f"vm-{resource}", owner, plan, window, Decimal(hours))


def ingest(uow: UnitOfWork, *records: UsageRecord, at: datetime = AT) -> store.IngestResult:
    with uow.writing() as tx:
        return store.ingest_window(tx, "openstack", records[0].window, list(records), at)


def october(uow: UnitOfWork, start: datetime = OCT, end: datetime = NOV) -> list[rollups.StoredTotal]:
    with uow.reading() as tx:
        return rollups.totals_of_owners(tx, OWNERS, start, end)


def test_a_window_and_its_day_commit_together_or_not_at_all(uow: UnitOfWork) -> None:
    with pytest.raises(RuntimeError), uow.writing() as tx:
        store.ingest_window(tx, "openstack", record(0, "1").window, [record(0, "1")], AT)
        raise RuntimeError("the process dies before the commit")
    with uow.reading() as tx:
        assert tx.scalar(select(func.count()).select_from(usage_records)) == 0
        assert tx.scalar(select(func.count()).select_from(usage_rollups)) == 0


def test_a_cycle_sums_its_days_exactly_and_a_raise_adds_only_what_it_adds(uow: UnitOfWork) -> None:
    for hour in range(0, 72, 7):  # eleven windows over three days
        ingest(uow, record(hour, "0.33333333"))
    ingest(uow, record(7, "0.5"), at=AT + timedelta(days=1))  # raised
    ingest(uow, record(14, "0.1"), at=AT + timedelta(days=2))  # lower: ignored
    (total,) = october(uow)
    assert (total.hours, total.windows) == (10 * Decimal("0.33333333") + Decimal("0.5"), 11)
    assert (total.first_start, total.last_end) == (OCT, OCT + timedelta(hours=71))
    assert total.collected_at == AT + timedelta(days=1)
    with uow.reading() as tx:
        assert tx.scalar(select(func.count()).select_from(usage_rollups)) == 3  # one row a day


def test_a_window_moved_to_another_plan_or_owner_moves_its_hours(uow: UnitOfWork) -> None:
    ingest(uow, record(1, "0.5"))
    ingest(uow, record(2, "1"))
    ingest(uow, record(1, "0.75", plan="m1.large", owner="p-2"), at=AT + timedelta(hours=1))
    found = {(total.plan, total.owner): (total.hours, total.windows) for total in october(uow)}
    assert found == {("m1.small", "p-1"): (Decimal(1), 1), ("m1.large", "p-2"): (Decimal("0.75"), 1)}


def test_the_name_is_the_one_the_latest_window_reported(uow: UnitOfWork) -> None:
    ingest(uow, record(30, "1", name="web-new"))
    ingest(uow, record(2, "1", name="web-old"))
    (total,) = october(uow)
    assert total.resource_name == "web-new"
    assert total.record.summed and total.record.window == Window(
        OCT + timedelta(hours=2), OCT + timedelta(hours=31)
    )


def test_days_follow_the_billing_zone_and_are_rebuilt_when_it_changes(uow: UnitOfWork) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    berlin_october = (datetime(2022, 9, 30, 22, tzinfo=UTC), datetime(2022, 10, 31, 23, tzinfo=UTC))
    ingest(uow, record(-2, "1"), record(-2, "1", resource="i-2"))  # 22:00 UTC: October 1st in Berlin
    assert october(uow, *berlin_october) == []  # kept in UTC days: September 30th
    with uow.writing() as tx:
        assert rollups.ensure(tx, berlin) == 2
        assert rollups.ensure(tx, berlin) == 0
    ingest(uow, record(-1, "0.5"))
    assert {total.resource_id: total.hours for total in october(uow, *berlin_october)} == {
        "i-1": Decimal("1.5"),
        "i-2": Decimal(1),
    }


def test_pruned_hours_leave_their_days_and_their_windows_are_final(uow: UnitOfWork) -> None:
    ingest(uow, record(0, "1"))
    ingest(uow, record(40, "1"))
    with uow.writing() as tx:
        assert rollups.prune(tx, ZoneInfo("UTC"), OCT + timedelta(days=1)) == 1
    late = ingest(uow, record(0, "1", resource="i-9"), at=AT + timedelta(days=1))
    assert (late.inserted, late.final) == (0, 1)
    (total,) = october(uow)
    assert (total.hours, total.windows) == (Decimal(2), 2)
    with uow.reading() as tx:
        assert tx.scalar(select(func.count()).select_from(usage_records)) == 1


def test_unsettled_totals_reaching_before_the_pruned_hours_count_their_days(uow: UnitOfWork) -> None:
    for hour in (0, 5, 30, 50, 80):
        ingest(uow, record(hour, "0.5"), record(hour, "0.25", resource="i-2", plan="m1.large"))
    since = {("openstack", "p-1"): OCT}
    with uow.reading() as tx:
        before = sorted(store.totals_since(tx, since, NOV), key=lambda total: total.resource_id)
    with uow.writing() as tx:
        rollups.prune(tx, ZoneInfo("UTC"), OCT + timedelta(days=2))
    with uow.reading() as tx:
        after = sorted(store.totals_since(tx, since, NOV), key=lambda total: total.resource_id)
    assert [(t.resource_id, t.plan, t.hours, t.last_window_end) for t in after] == [
        (t.resource_id, t.plan, t.hours, t.last_window_end) for t in before
    ]
    assert [t.hours for t in after] == [Decimal("2.5"), Decimal("1.25")]
