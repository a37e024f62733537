"""SolusVM runtime evidence on every database: servers kept after deletion, polls stored once, records
upserted with their first sighting kept, instants back as aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.store import solusvm_evidence as store
from bridge.store.unit_of_work import UnitOfWork

OCT = datetime(2022, 10, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def server(server_id: int, listed_at: datetime, *, plan_id: int = 1) -> store.StoredServer:
    return store.StoredServer(server_id, f"vps-{server_id}", 7, plan_id, OCT - 10 * DAY, listed_at)


def task(
    record_id: int, status: str, listed_after: datetime | None, listed_at: datetime, *, done: bool = False
) -> store.StoredRecord:
    finished = OCT + DAY if done else None
    return store.StoredRecord(
        store.TASK, record_id, 1, "vm-stop", status, OCT, OCT, finished, listed_after, listed_at
    )


def test_servers_are_upserted_and_kept_after_they_stop_being_listed(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        store.save_servers(tx, [server(1, OCT), server(2, OCT)])
    with uow.writing() as tx:
        store.save_servers(tx, [server(1, OCT + DAY, plan_id=3)])  # server 2 was deleted in SolusVM
    with uow.reading() as tx:
        since_oct = store.servers_listed_since(tx, OCT)
        since_later = store.servers_listed_since(tx, OCT + DAY)
        by_id = store.servers_by_id(tx, [2, 9])
    assert since_oct == [server(1, OCT + DAY, plan_id=3), server(2, OCT)]
    assert since_later == [server(1, OCT + DAY, plan_id=3)]
    assert by_id == {2: server(2, OCT)}
    assert since_oct[0].created_at.tzinfo is not None


def test_a_poll_is_stored_once_and_read_from_each_servers_cutoff(uow: UnitOfWork) -> None:
    polls = [store.StoredPoll(1, OCT + n * DAY, "running") for n in range(3)]
    polls.append(store.StoredPoll(2, OCT, "stopped"))
    with uow.writing() as tx:
        assert store.save_polls(tx, polls) == 4
    with uow.writing() as tx:
        assert store.save_polls(tx, polls[:2]) == 0
    with uow.reading() as tx:
        assert store.polls_of(tx, [1, 2]) == {1: polls[:3], 2: polls[3:]}
        assert store.last_polls_at(tx, [1, 2, 3], OCT + DAY + timedelta(hours=1)) == {1: OCT + DAY, 2: OCT}
        assert store.polls_from(tx, {1: OCT + DAY, 2: None}) == {1: polls[1:3], 2: polls[3:]}


def test_a_record_updates_with_solusvm_but_keeps_when_it_was_first_listed(uow: UnitOfWork) -> None:
    first = task(5, "pending", OCT, OCT + DAY)
    with uow.writing() as tx:
        assert store.save_records(tx, [first]) == [first]
    later = task(5, "done", OCT + DAY, OCT + 2 * DAY, done=True)
    with uow.writing() as tx:
        changed = store.save_records(tx, [later])
    with uow.writing() as tx:
        unchanged = store.save_records(tx, [task(5, "done", OCT + 2 * DAY, OCT + 3 * DAY, done=True)])
    with uow.reading() as tx:
        stored = store.records_of(tx, [1])
    kept = task(5, "done", OCT, OCT + DAY, done=True)
    assert changed == [kept] and unchanged == []
    assert stored == {1: [kept]}


def test_tasks_and_activity_entries_with_the_same_id_are_different_records(uow: UnitOfWork) -> None:
    entry = store.StoredRecord(
        store.ACTIVITY, 5, 1, "compute_resource_vm_created", None, OCT, None, None, None, OCT
    )
    unowned = store.StoredRecord(
        store.ACTIVITY, 6, None, "location_created", None, None, None, None, None, OCT
    )
    with uow.writing() as tx:
        store.save_records(tx, [task(5, "done", None, OCT, done=True), entry, unowned])
    with uow.reading() as tx:
        stored = store.records_of(tx, [1])
    assert [record.key for record in stored[1]] == [(store.ACTIVITY, 5), (store.TASK, 5)]
    assert stored[1][0].created_at == OCT and stored[1][0].status is None


def test_the_servers_seen_in_a_month_include_the_deleted_ones_and_not_those_of_other_months(
    uow: UnitOfWork,
) -> None:
    nov = datetime(2022, 11, 1, tzinfo=UTC)
    gone_before = server(1, OCT - DAY)  # deleted in September
    kept = server(2, nov + 5 * DAY)  # still listed in November: it existed in October
    deleted_early = server(3, OCT - timedelta(hours=1))  # last listed before October, deleted on Oct 1
    deletion = store.StoredRecord(
        store.ACTIVITY, 9, 3, "vm-delete", None, OCT, None, None, OCT - timedelta(hours=1), OCT + DAY
    )
    later = store.StoredServer(4, "vps-4", 7, 1, nov + DAY, nov + DAY)  # created in November
    with uow.writing() as tx:
        store.save_servers(tx, [gone_before, kept, deleted_early, later])
        store.save_records(tx, [deletion])
    with uow.reading() as tx:
        seen = store.servers_seen_between(tx, OCT, nov)
    assert [found.server_id for found in seen] == [2, 3]
