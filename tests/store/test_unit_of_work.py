"""The unit of work: a write commits; a dry-run or an exception leaves nothing; SQLite writers lock first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, insert, select

from bridge.store.database import DatabaseTimeout, make_engine
from bridge.store.tables import clients
from bridge.store.unit_of_work import Conflict, Tx, UnitOfWork

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> UnitOfWork:
    return UnitOfWork(engine)


def add_client(tx: Tx, email: str) -> None:
    row = {"email": email, "name": email, "currency": "EUR", "configuration": "default", "created_at": AT}
    tx.execute(insert(clients).values(**row))


def emails(uow: UnitOfWork) -> list[str]:
    with uow.reading() as tx:
        return sorted(tx.execute(select(clients.c.email)).scalars())


class Boom(Exception):
    pass


def test_a_write_is_committed_at_the_end_of_the_block(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        add_client(tx, "a@example.com")
    assert emails(uow) == ["a@example.com"]


def test_a_dry_run_runs_the_same_writes_and_leaves_nothing(uow: UnitOfWork) -> None:
    with uow.writing(dry_run=True) as tx:
        add_client(tx, "a@example.com")
        assert tx.execute(select(func.count()).select_from(clients)).scalar() == 1
    assert emails(uow) == []


def test_an_exception_rolls_the_transaction_back_and_propagates(uow: UnitOfWork) -> None:
    with pytest.raises(Boom), uow.writing() as tx:
        add_client(tx, "a@example.com")
        raise Boom
    assert emails(uow) == []


def test_a_duplicate_is_a_conflict_and_the_whole_transaction_is_undone(uow: UnitOfWork) -> None:
    with pytest.raises(Conflict), uow.writing() as tx:
        add_client(tx, "a@example.com")
        add_client(tx, "a@example.com")
    assert emails(uow) == []


def test_a_failed_savepoint_undoes_only_its_own_writes(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        add_client(tx, "kept@example.com")
        with pytest.raises(Boom), tx.begin_nested():
            add_client(tx, "undone@example.com")
            raise Boom
    assert emails(uow) == ["kept@example.com"]


def test_a_reading_transaction_keeps_nothing_it_writes(uow: UnitOfWork) -> None:
    with uow.reading() as tx:
        add_client(tx, "stray@example.com")
    assert emails(uow) == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_on_sqlite_a_writer_holds_the_write_lock_from_its_begin(uow: UnitOfWork, database_url: str) -> None:
    impatient = make_engine(database_url, lock_timeout=0)
    other = UnitOfWork(impatient)
    with uow.writing():  # nothing read or written yet
        with pytest.raises(DatabaseTimeout), other.writing() as tx:
            add_client(tx, "second@example.com")
        assert emails(other) == []  # readers are not blocked
    impatient.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_on_sqlite_a_reader_does_not_hold_back_a_writer(uow: UnitOfWork, database_url: str) -> None:
    impatient = make_engine(database_url, lock_timeout=0)
    with uow.reading() as reading:
        reading.execute(select(clients.c.email)).all()
        with UnitOfWork(impatient).writing() as tx:
            add_client(tx, "writer@example.com")
    impatient.dispose()
    assert emails(uow) == ["writer@example.com"]
