"""Group commit: the push threads share SQLite transactions, each write still failing or succeeding alone."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, func, insert, select

from bridge.store.tables import leases
from bridge.store.unit_of_work import Conflict, UnitOfWork
from bridge.sync.group_commit import GroupCommit
from tests.support.clock import START

THREADS = 8


def lease_row(name: str) -> dict[str, object]:
    return {"name": name, "owner": "push", "acquired_at": START, "expires_at": START, "token": name}


def add(name: str) -> Callable[[Connection], str]:
    def write(connection: Connection) -> str:
        connection.execute(insert(leases).values(lease_row(name)))
        return name

    return write


def names(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.scalars(select(leases.c.name)))


def test_every_threads_write_is_committed_before_it_returns(engine: Engine) -> None:
    group = GroupCommit(UnitOfWork(engine))
    start = threading.Barrier(THREADS)
    returned: list[tuple[str, list[str]]] = []

    def write(n: int) -> None:
        start.wait(timeout=30)
        value = group.run(add(f"w{n}"))
        returned.append((value, names(engine)))

    threads = [threading.Thread(target=write, args=[n]) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(value for value, _ in returned) == [f"w{n}" for n in range(THREADS)]
    assert all(value in seen for value, seen in returned), "each write was visible when it returned"


def test_a_refused_write_fails_alone_in_its_own_thread(engine: Engine) -> None:
    group = GroupCommit(UnitOfWork(engine))
    assert group.run(add("first")) == "first"
    with pytest.raises(Conflict):
        group.run(add("first"))
    failures: list[BaseException] = []
    group.later(add("first"), failures.append)
    group.later(add("second"), failures.append)
    assert names(engine) == ["first"], "a queued write waits for the next batch"
    group.flush()
    assert names(engine) == ["first", "second"]
    assert [type(error) for error in failures] == [Conflict]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(leases)) == 2


def test_while_a_run_commits_a_write_queued_ahead_is_committed_by_the_committer_not_its_thread(
    engine: Engine,
) -> None:
    group = GroupCommit(UnitOfWork(engine))
    committed_by: list[str] = []
    written = threading.Event()
    failures: list[BaseException] = []

    def claim(connection: Connection) -> str:
        committed_by.append(threading.current_thread().name)
        name = add("ahead")(connection)
        written.set()
        return name

    with group.committing():
        write = group.submit(claim)  # queued while the thread is away at its call; it never waits
        assert written.wait(timeout=60), "the committer never took the queued write"  # a hang guard
        assert group.wait(write) == "ahead"
        assert names(engine) == ["ahead"], "committed once waited for"
        group.later(add("recorded"), failures.append)
    assert committed_by == ["push-commit"], "the committer wrote it while its thread was away"
    assert failures == []
    assert names(engine) == ["ahead", "recorded"], "what was queued last is committed when the run ends"
    assert group.run(add("after")) == "after", "outside a run the waiting thread commits for itself"


def test_while_a_run_commits_every_threads_write_is_committed_before_it_returns(engine: Engine) -> None:
    group = GroupCommit(UnitOfWork(engine))
    start = threading.Barrier(THREADS)
    returned: list[tuple[str, list[str]]] = []

    def write(n: int) -> None:
        start.wait(timeout=30)
        for turn in range(5):
            value = group.run(add(f"w{n}-{turn}"))
            returned.append((value, names(engine)))

    with group.committing():
        threads = [threading.Thread(target=write, args=[n]) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert sorted(value for value, _ in returned) == sorted(
        f"w{n}-{r}" for n in range(THREADS) for r in range(5)
    )
    assert all(value in seen for value, seen in returned), "each write was visible when it returned"


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"], indirect=True)
def test_on_a_server_database_a_write_submitted_during_a_run_is_committed_by_a_writer_thread(
    engine: Engine,
) -> None:
    """The claim of a client's next row is committed while its thread is away at the call before it."""
    group = GroupCommit(UnitOfWork(engine))
    committed_by: list[str] = []
    failures: list[BaseException] = []

    def claim(connection: Connection) -> str:
        committed_by.append(threading.current_thread().name)
        return add("ahead")(connection)

    with group.committing():
        group.later(add("recorded"), failures.append)  # the row before's record: goes with the claim
        write = group.submit(claim)
        assert group.wait(write) == "ahead"
        assert names(engine) == ["ahead", "recorded"], "committed, with the record, once waited for"
        refused = group.submit(add("ahead"))
        with pytest.raises(Conflict):
            group.wait(refused)
        group.later(add("last"), failures.append)
    assert committed_by and committed_by[0].startswith("push-write"), "a writer thread committed it"
    assert failures == []
    assert names(engine) == ["ahead", "last", "recorded"], "what was queued last is committed at the end"
    assert group.run(add("after")) == "after", "outside a run the thread commits for itself"
