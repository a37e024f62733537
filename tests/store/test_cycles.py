"""What a client's cycles are made of, on every database: its schedule history in order, and when its
first service started (the earliest evidence, never after any of its usage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from bridge.domain.clients import LinkKind
from bridge.domain.cycles import ScheduleChange
from bridge.domain.usage import UsageRecord, Window
from bridge.store import cycles as store
from bridge.store import usage, usage_rollups
from bridge.store.clients import insert_link
from bridge.store.solusvm_evidence import StoredServer, save_servers
from bridge.store.unit_of_work import UnitOfWork
from tests.support.store import NOW, new_client

OCT_15 = datetime(2022, 10, 15, 12, tzinfo=UTC)


def ran(source: str, owner: str, start: datetime, hours: int) -> UsageRecord:
    return UsageRecord(
        source,  # type: ignore[arg-type]
        f"{owner}-vm",
        "vm",
        owner,
        "m1.small",
        Window(start, start + timedelta(hours=hours)),
        Decimal(hours),
    )


def test_a_schedule_history_reads_back_oldest_first_per_client(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        acme, beta = new_client(tx, "a@x.org"), new_client(tx, "b@x.org")
        store.record_schedule(tx, acme, ScheduleChange(OCT_15 + timedelta(days=36), True), now=NOW)
        store.record_schedule(tx, acme, ScheduleChange(OCT_15, False), now=NOW)
    with uow.reading() as tx:
        found = store.schedules_of_clients(tx, [acme, beta])
    assert found == {acme: [ScheduleChange(OCT_15, False), ScheduleChange(OCT_15 + timedelta(days=36), True)]}
    assert all(change.since.tzinfo is not None for change in found[acme])


def test_the_first_service_is_the_earliest_window_or_solusvm_creation_of_each_owner(
    uow: UnitOfWork,
) -> None:
    with uow.writing() as tx:
        for record in (
            ran("openstack", "p-1", OCT_15 + timedelta(days=3), 1),
            ran("openstack", "p-1", OCT_15, 12),
            ran("solusvm", "7", OCT_15 + timedelta(days=1), 1),
            ran("openstack", "7", OCT_15 - timedelta(days=9), 1),  # another cloud's owner 7
        ):
            usage.ingest_window(tx, record.source, record.window, [record], NOW)
        created = OCT_15 + timedelta(hours=20)
        save_servers(
            tx, [StoredServer(41, "vps", 7, 3, created, NOW), StoredServer(42, "vps", 8, 3, created, NOW)]
        )
    owners = [("openstack", "p-1"), ("solusvm", "7"), ("solusvm", "8"), ("openstack", "p-2")]
    owners += [("openstack", f"none-{n}") for n in range(250)]  # more than one statement's worth
    with uow.reading() as tx:
        found = store.first_service_starts(tx, owners)
    assert found == {("openstack", "p-1"): OCT_15, ("solusvm", "7"): created, ("solusvm", "8"): created}

    links = {"openstack": LinkKind.OPENSTACK_PROJECT, "solusvm": LinkKind.SOLUSVM_USER}
    with uow.writing() as tx:
        clients = [new_client(tx, f"c{n}@x.org") for n in range(len(owners))]
        for client, (source, owner) in zip(clients, owners, strict=True):
            insert_link(tx, client_id=client, kind=links[source], external_id=owner, created_at=NOW)
    with uow.reading() as tx:
        assert store.first_service_starts(tx, owners) == found  # the same, looked up through the links


def test_after_the_hours_are_pruned_each_owner_keeps_its_own_first_day(uow: UnitOfWork) -> None:
    """The day rollups outlive the pruned hourly rows: a project that started later than another keeps
    its own first window, looked up through its link, not the earliest day of every linked project."""
    later = OCT_15 + timedelta(days=10)
    with uow.writing() as tx:
        for record in (ran("openstack", "p-1", OCT_15, 2), ran("openstack", "p-2", later, 3)):
            usage.ingest_window(tx, record.source, record.window, [record], NOW)
        usage_rollups.prune(tx, ZoneInfo("UTC"), OCT_15 + timedelta(days=40))
        for owner in ("p-1", "p-2"):
            client = new_client(tx, f"{owner}@x.org")
            insert_link(
                tx, client_id=client, kind=LinkKind.OPENSTACK_PROJECT, external_id=owner, created_at=NOW
            )
    owners = [("openstack", "p-1"), ("openstack", "p-2")]
    with uow.reading() as tx:
        assert store.first_service_starts(tx, owners) == {owners[0]: OCT_15, owners[1]: later}
