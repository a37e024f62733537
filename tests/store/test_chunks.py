"""Chunk claims on every database: one worker per chunk, skipped while locked, taken over once expired."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from bridge.store import chunks as store
from bridge.store.chunks import ChunkTaken, Claim
from bridge.store.database import DatabaseTimeout, make_engine
from bridge.store.tables import invoices, work_chunks
from bridge.store.unit_of_work import UnitOfWork
from tests.support.store import NOW, invoice_values, new_client

TTL = timedelta(minutes=5)
RUN = "invoicing 2022-11-01"
SIZE = 2


def clients(uow: UnitOfWork, count: int) -> None:
    with uow.writing() as tx:
        for n in range(count):
            new_client(tx, f"client{n}@example.com")


def open_run(uow: UnitOfWork, after: timedelta = timedelta(0)) -> int:
    with uow.writing() as tx:
        return store.open_run(tx, RUN, size=SIZE, now=NOW + after, ttl=TTL)


def claim(uow: UnitOfWork, generation: int, holder: str, after: timedelta = timedelta(0)) -> Claim | None:
    with uow.writing() as tx:
        return store.claim_next(tx, RUN, generation, holder, now=NOW + after, ttl=TTL)


def finish(uow: UnitOfWork, taken: Claim, after: timedelta = timedelta(0)) -> None:
    with uow.writing() as tx:
        store.finish(tx, taken, NOW + after)


def test_a_run_splits_the_client_ids_into_chunks_each_claimed_by_one_worker(uow: UnitOfWork) -> None:
    clients(uow, 5)
    generation = open_run(uow)
    assert open_run(uow) == generation, "a second worker joins the generation being worked"
    taken = [claim(uow, generation, f"worker-{n % 2}") for n in range(4)]
    assert [(c.first_client, c.last_client) for c in taken if c] == [(1, 2), (3, 4), (5, 6)]
    assert taken[3] is None, "every chunk is held"
    assert len({c.token for c in taken if c}) == 3


def test_a_finished_run_opened_again_starts_a_new_generation_over_every_client(uow: UnitOfWork) -> None:
    clients(uow, 3)
    first = open_run(uow)
    while (taken := claim(uow, first, "worker")) is not None:
        finish(uow, taken)
    second = open_run(uow)
    assert second == first + 1
    assert claim(uow, second, "worker") is not None
    with uow.reading() as tx:
        progress = store.progress(tx, RUN, NOW)
    assert progress == store.RunProgress(second, done=0, held=1, waiting=1)


def test_an_expired_claim_is_taken_over_and_the_first_holder_can_no_longer_finish(uow: UnitOfWork) -> None:
    clients(uow, 2)
    generation = open_run(uow)
    first = claim(uow, generation, "killed")
    assert first is not None
    assert claim(uow, generation, "other", after=TTL - timedelta(seconds=1)) is None
    second = claim(uow, generation, "other", after=TTL)
    assert second is not None and second.chunk == first.chunk and second.token != first.token
    with pytest.raises(ChunkTaken), uow.writing() as tx:
        tx.execute(insert(invoices).values(invoice_values(1, "BB-1-2022-10")))
        store.finish(tx, first, NOW + TTL)
    finish(uow, second, after=TTL)
    with uow.reading() as tx:
        assert tx.scalar(select(invoices.c.id)) is None, "the late holder's work was rolled back"
        (row,) = tx.execute(select(work_chunks)).all()
    assert (row.holder, row.done_at) == ("other", NOW + TTL)
    with pytest.raises(ChunkTaken):
        finish(uow, second, after=TTL)


def test_a_claim_past_its_expiry_that_nobody_took_is_still_finished_by_its_holder(uow: UnitOfWork) -> None:
    clients(uow, 1)
    generation = open_run(uow)
    taken = claim(uow, generation, "slow")
    assert taken is not None
    finish(uow, taken, after=2 * TTL)
    assert claim(uow, generation, "other", after=2 * TTL) is None


def test_a_generation_every_worker_abandoned_is_replaced_by_a_new_one(uow: UnitOfWork) -> None:
    clients(uow, 3)
    generation = open_run(uow)
    assert claim(uow, generation, "dead") is not None
    assert open_run(uow, after=2 * TTL - timedelta(seconds=1)) == generation
    assert open_run(uow, after=2 * TTL) == generation + 1


def test_an_empty_store_opens_one_chunk(uow: UnitOfWork) -> None:
    generation = open_run(uow)
    taken = claim(uow, generation, "worker")
    assert taken is not None and (taken.first_client, taken.last_client) == (1, SIZE)


def test_workers_opening_a_run_at_once_share_one_generation(workers: list[UnitOfWork]) -> None:
    uow = workers[0]
    clients(uow, 4)
    start = threading.Barrier(len(workers))
    opened: list[int] = []

    def open_one(worker: UnitOfWork) -> None:
        start.wait(timeout=30)
        opened.append(open_run(worker))

    threads = [threading.Thread(target=open_one, args=[worker]) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert opened == [1] * len(workers)
    with uow.reading() as tx:
        assert len(tx.execute(select(work_chunks)).all()) == 2


def test_a_chunk_locked_by_one_worker_is_skipped_by_the_next(
    backend: str, uow: UnitOfWork, impatient: UnitOfWork
) -> None:
    """PostgreSQL and MariaDB: ``SKIP LOCKED`` hands the second worker the next chunk at once. SQLite
    admits one writer, so the second waits for the first (and here gives up after its lock timeout)."""
    clients(uow, 4)
    generation = open_run(uow)
    with uow.writing() as holding:
        first = store.claim_next(holding, RUN, generation, "a", now=NOW, ttl=TTL)
        if backend == "sqlite":
            with pytest.raises(DatabaseTimeout):
                claim(impatient, generation, "b")
            return
        second = claim(impatient, generation, "b")
    assert first is not None and second is not None
    assert (first.chunk, second.chunk) == (0, 1)


@pytest.fixture
def workers(database_url: str) -> Iterator[list[UnitOfWork]]:
    """Three workers, each with its own engine on the same database."""
    engines = [make_engine(database_url) for _ in range(3)]
    yield [UnitOfWork(engine) for engine in engines]
    for engine in engines:
        engine.dispose()
