"""Leases and job runs on every database: one holder per lease, a new token per acquisition, runs in order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bridge.store import jobs as store
from bridge.store.tables import leases
from bridge.store.unit_of_work import UnitOfWork
from tests.support.store import NOW

TTL = timedelta(minutes=5)


def acquire(uow: UnitOfWork, owner: str, after: timedelta = timedelta(0)) -> str | None:
    with uow.writing() as tx:
        return store.try_acquire_lease(tx, "job:x", owner, NOW + after, TTL)


def held(uow: UnitOfWork, token: str, after: timedelta = timedelta(0)) -> bool:
    with uow.reading() as tx:
        return bool(tx.scalar(select(store.holds("job:x", token, NOW + after))))


def test_a_lease_has_one_holder_until_it_expires_and_each_acquisition_has_its_own_token(
    uow: UnitOfWork,
) -> None:
    first = acquire(uow, "daemon-a")
    refused = acquire(uow, "daemon-b", after=TTL - timedelta(seconds=1))
    again = acquire(uow, "daemon-a", after=timedelta(seconds=1))
    taken_over = acquire(uow, "daemon-b", after=timedelta(seconds=1) + TTL)
    assert first is not None and again is not None and taken_over is not None
    assert refused is None
    assert len({first, again, taken_over}) == 3
    assert not held(uow, first) and not held(uow, again, after=TTL + timedelta(seconds=1))
    assert held(uow, taken_over, after=TTL + timedelta(seconds=1))
    assert not held(uow, taken_over, after=2 * TTL + timedelta(seconds=1)), "expired at its own now"
    with uow.reading() as tx:
        (row,) = tx.execute(select(leases)).all()
    assert (row.owner, row.expires_at) == ("daemon-b", NOW + timedelta(seconds=1) + 2 * TTL)


def test_only_the_current_token_renews_or_releases_and_not_once_expired(uow: UnitOfWork) -> None:
    old = acquire(uow, "daemon-a")
    current = acquire(uow, "daemon-a")
    assert old is not None and current is not None
    with uow.writing() as tx:
        renewed = [
            store.renew_lease(tx, "job:x", old, NOW, TTL),
            store.renew_lease(tx, "job:x", current, NOW + timedelta(minutes=4), TTL),
            store.renew_lease(tx, "job:x", current, NOW + timedelta(minutes=10), TTL),
        ]
        store.release_lease(tx, "job:x", old)
    assert renewed == [False, True, False]
    assert held(uow, current, after=timedelta(minutes=8))
    with uow.writing() as tx:
        store.release_lease(tx, "job:x", current)
    assert acquire(uow, "daemon-b") is not None


def test_runs_are_recorded_read_newest_first_and_pruned_by_age_but_never_while_running(
    uow: UnitOfWork,
) -> None:
    with uow.writing() as tx:
        old = store.start_run(tx, "push", "daemon-a", NOW - timedelta(days=40))
        store.finish_run(tx, old, "succeeded", NOW - timedelta(days=40) + timedelta(seconds=90), None)
        stuck = store.start_run(tx, "push", "daemon-a", NOW - timedelta(days=39))
        failed = store.start_run(tx, "push", "daemon-b", NOW)
        store.finish_run(tx, failed, "failed", NOW + timedelta(seconds=2), "VendorError: HTTP 500")
        other = store.start_run(tx, "invoicing", "daemon-a", NOW - timedelta(hours=1))
    with uow.reading() as tx:
        last = store.last_run(tx, "push")
        last_ok = store.last_run(tx, "push", status="succeeded")
        listed = store.runs(tx, "push")
        everything = store.runs(tx, limit=2)
    assert last is not None and (last.id, last.status, last.error) == (
        failed,
        "failed",
        "VendorError: HTTP 500",
    )
    assert last.duration_seconds == 2
    assert last_ok is not None and last_ok.duration_seconds == 90 and last_ok.started_at.tzinfo is not None
    assert [run.id for run in listed] == [failed, stuck, old]
    assert [run.id for run in everything] == [other, failed]
    with uow.writing() as tx:
        pruned = store.prune_runs(tx, NOW - timedelta(days=30))
    with uow.reading() as tx:
        kept = [run.id for run in store.runs(tx)]
    assert pruned == 1
    assert kept == [other, failed, stuck]
