"""Collected usage on every database: a window upserted once and never lowered, hours to eight places,
sums exact (SQLite sums integers of 10**-8, not floats), watermarks that only move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bridge.domain.clients import LinkKind
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.store import clients
from bridge.store import usage as store
from bridge.store.unit_of_work import UnitOfWork
from tests.support.store import NOW, new_client

OCT = datetime(2022, 10, 1, tzinfo=UTC)


def window(hour: int) -> Window:
    return Window(OCT + timedelta(hours=hour), OCT + timedelta(hours=hour + 1))


def record(
    resource: str,
    hours: str,
    hour: int = 0,
    *,
    owner: str = "p-1",
    source: Source = "openstack",
    tokens: Decimal | None = None,
) -> UsageRecord:
    """What a cloud reports for ``resource`` in the ``hour``-th hour of October 2022."""
    name = f"vm-{resource}"
    return UsageRecord(source, resource, name, owner, "m1.small", window(hour), Decimal(hours), tokens)


def ingest(uow: UnitOfWork, *records: UsageRecord, at: datetime = NOW) -> store.IngestResult:
    """Store one window's records (all of the first record's source and window)."""
    with uow.writing() as tx:
        return store.ingest_window(tx, records[0].source, records[0].window, list(records), at)


def hours(uow: UnitOfWork) -> dict[str, Decimal]:
    with uow.reading() as tx:
        found = store.usage_of_owners(tx, [("openstack", "p-1")], OCT, OCT + timedelta(days=31))
    return {row.resource_id: row.hours for row in found}


def test_a_window_collected_again_adds_no_row_and_only_more_hours_replace_the_record(uow: UnitOfWork) -> None:
    first = ingest(uow, record("i-1", "1"), record("i-2", "0.5"))
    again = ingest(
        uow, record("i-1", "0.25"), record("i-2", "0.75"), record("i-3", "1"), at=NOW + timedelta(hours=1)
    )
    assert (first.inserted, first.raised, first.unchanged) == (2, 0, 0)
    assert (again.inserted, again.raised, again.unchanged) == (1, 1, 1)
    assert hours(uow) == {"i-1": Decimal(1), "i-2": Decimal("0.75"), "i-3": Decimal(1)}
    with uow.reading() as tx:
        rows = store.usage_of_owners(tx, [("openstack", "p-1")], OCT, OCT + timedelta(hours=1))
    assert {row.resource_id: row.collected_at for row in rows} == {
        "i-1": NOW,
        "i-2": NOW + timedelta(hours=1),
        "i-3": NOW + timedelta(hours=1),
    }


def test_hours_are_kept_to_eight_places_and_come_back_as_decimals(uow: UnitOfWork) -> None:
    ingest(uow, record("i-1", "0.123456789"), record("i-2", "0.99999999"), record("i-3", "1.000000004"))
    stored = hours(uow)
    assert stored == {"i-1": Decimal("0.12345679"), "i-2": Decimal("0.99999999"), "i-3": Decimal(1)}
    assert all(isinstance(value, Decimal) for value in stored.values())


def test_usage_is_read_per_source_and_owner_in_the_range_ordered(uow: UnitOfWork) -> None:
    ingest(uow, record("i-2", "1"), record("i-1", "1"), record("i-9", "1", owner="p-2"))
    ingest(uow, record("i-1", "1", 1))
    with uow.writing() as tx:
        store.ingest_window(
            tx, "solusvm", window(0), [record("s-1", "1", source="solusvm", tokens=Decimal(3))], NOW
        )
    with uow.reading() as tx:
        rows = store.usage_of_owners(tx, [("openstack", "p-1")], OCT, OCT + timedelta(hours=2))
        first_hour = store.usage_of_owners(tx, [("openstack", "p-1")], OCT, OCT + timedelta(hours=1))
        nobody = store.usage_of_owners(tx, [], OCT, OCT + timedelta(hours=2))
    assert [(row.resource_id, row.window_start) for row in rows] == [
        ("i-1", OCT),
        ("i-1", OCT + timedelta(hours=1)),
        ("i-2", OCT),
    ]
    assert rows[0].window_end == OCT + timedelta(hours=1) and rows[0].tokens is None
    assert len(first_hour) == 2 and nobody == []


def test_totals_are_exact_sums_per_resource_since_each_owners_start(uow: UnitOfWork) -> None:
    for hour in range(10):
        ingest(uow, record("i-1", "0.1", hour), record("i-2", "123456789.12345678", hour, owner="p-2"))
    with uow.writing() as tx:
        store.ingest_window(
            tx,
            "solusvm",
            window(0),
            [record("s-1", "1", source="solusvm", owner="7", tokens=Decimal("0.33333333"))],
            NOW,
        )
        store.ingest_window(
            tx,
            "solusvm",
            window(1),
            [record("s-1", "1", 1, source="solusvm", owner="7", tokens=Decimal("0.33333334"))],
            NOW,
        )
    since = {("openstack", "p-1"): OCT, ("openstack", "p-2"): OCT + timedelta(hours=8), ("solusvm", "7"): OCT}
    with uow.reading() as tx:
        totals = {
            total.resource_id: total for total in store.totals_since(tx, since, OCT + timedelta(hours=9))
        }
        nothing = store.totals_since(tx, {}, OCT)
    assert totals["i-1"].hours == Decimal("0.90000000")
    assert totals["i-2"].hours == Decimal("123456789.12345678")
    assert (totals["s-1"].hours, totals["s-1"].tokens) == (Decimal(2), Decimal("0.66666667"))
    assert totals["i-1"].tokens is None
    assert totals["i-1"].last_window_end == OCT + timedelta(hours=9)
    assert totals["i-1"].last_window_end.tzinfo is not None
    assert nothing == []


def test_a_watermark_moves_forward_counting_records_and_an_error_leaves_it_where_it_was(
    uow: UnitOfWork,
) -> None:
    with uow.writing() as tx:
        store.record_error(tx, "solusvm", "HTTP 502", NOW)
        store.advance_watermark(tx, "openstack", OCT + timedelta(hours=1), 2, NOW)
        store.advance_watermark(tx, "openstack", OCT + timedelta(hours=2), 3, NOW + timedelta(hours=1))
        store.record_error(tx, "openstack", "HTTP 500 after 5 attempts", NOW + timedelta(hours=2))
    with uow.reading() as tx:
        openstack, solusvm = store.watermark(tx, "openstack"), store.watermark(tx, "solusvm")
    assert openstack is not None and solusvm is not None
    assert (openstack.collected_until, openstack.records_collected) == (OCT + timedelta(hours=2), 5)
    assert (openstack.last_error, openstack.last_error_at) == (
        "HTTP 500 after 5 attempts",
        NOW + timedelta(hours=2),
    )
    assert (solusvm.collected_until, solusvm.records_collected, solusvm.last_error) == (None, 0, "HTTP 502")
    with uow.writing() as tx:
        store.advance_watermark(tx, "openstack", OCT + timedelta(hours=3), 0, NOW)
        cleared = store.watermark(tx, "openstack")
    assert cleared is not None and (cleared.last_error, cleared.last_error_at) == (None, None)


def test_owners_without_a_link_of_their_kind_are_reported_with_their_first_and_last_window(
    uow: UnitOfWork,
) -> None:
    ingest(uow, record("i-1", "1", owner="p-1"), record("i-2", "1", owner="p-2"))
    ingest(uow, record("i-1", "1", 5, owner="p-1"), record("i-3", "1", 5, owner="p-1"))
    with uow.writing() as tx:
        acme = new_client(tx)
        clients.insert_link(
            tx, client_id=acme, kind=LinkKind.OPENSTACK_PROJECT, external_id="p-2", created_at=NOW
        )
        clients.insert_link(tx, client_id=acme, kind=LinkKind.SOLUSVM_USER, external_id="p-1", created_at=NOW)
    with uow.reading() as tx:
        (unlinked,) = store.unlinked_owners(tx)
    assert unlinked == store.UnlinkedOwner("openstack", "p-1", 2, 3, OCT, OCT + timedelta(hours=5))
    assert unlinked.last_window.tzinfo is not None


def test_plan_rates_are_inserted_then_updated(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        store.save_plan_rates(
            tx, [store.PlanRate("1", "small", 2, 1400, NOW), store.PlanRate("2", "big", 8, 5600, NOW)]
        )
        store.save_plan_rates(tx, [store.PlanRate("1", "small v2", 3, 2100, NOW + timedelta(days=1))])
    with uow.reading() as tx:
        rates = store.plan_rates(tx)
    assert rates == {
        "1": store.PlanRate("1", "small v2", 3, 2100, NOW + timedelta(days=1)),
        "2": store.PlanRate("2", "big", 8, 5600, NOW),
    }
