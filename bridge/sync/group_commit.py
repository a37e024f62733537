"""Group commit: the push's threads share SQLite's one write transaction (and its one disk flush).

SQLite admits one writer, and each commit waits for the disk. With eight push threads each committing a
claim before its call and a settle after it, the commits queue behind one another and become the run's
critical path (issue 17: 1.45 x the floor on a loaded machine). Here a thread hands its write to
:meth:`GroupCommit.run` and waits; whichever waiting thread gets the write lock first is the leader: it
writes every write queued so far in one transaction, each in its own savepoint (so one refused write
rolls back alone, and its exception goes to its own thread), commits once, and wakes them all. A write
returns only once committed, so a claim is still durable before its call goes out. A settle nobody needs
to wait for (the effect recorded as done) is queued with :meth:`GroupCommit.later` and goes out with the
thread's next claim: one commit per row instead of two. A crash before that commit leaves the row in
doubt, and the next run looks the effect up, as after any crash between the call and its record.

While a run holds :meth:`GroupCommit.committing`, a thread of its own, the committer, leads whenever
something is queued and no batch is being committed, so a write submitted ahead (the claim of a client's
next row, made while the row before it is out) is committed while its thread waits for WHMCS. A thread
that waits for its write still leads the commit itself when no batch is in flight: it is running already,
where the committer might first have to be given the CPU (on a loaded machine, tens of milliseconds).
Outside it, the waiting threads lead as above.

PostgreSQL and MariaDB commit from every thread at once (and group their own commits), so there each
write is its own transaction, except that a settle queued with :meth:`GroupCommit.later` waits for its own
thread's next write and commits with it (or with :meth:`GroupCommit.flush`): one transaction per row there
too, instead of two. :meth:`GroupCommit.run` runs its write at once, in the calling thread. While a run
holds :meth:`GroupCommit.committing`, a write handed to :meth:`GroupCommit.submit` (the claim of a
client's next row, made while the row before it is out) goes to a few writer threads of the run's own, so
its transaction's round trips (about six: the connection's ping, the settle, the invoice's WHMCS id, the
claim, the commit) are made while its thread waits for WHMCS rather than before the call goes out (issue
17: 1.2 to 1.4 x the floor on PostgreSQL, each thread writing for about 10 ms before each 50 ms call).
Its thread still waits for it (:meth:`GroupCommit.wait`) before that row's own call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy import Connection

from bridge.store.unit_of_work import UnitOfWork

T = TypeVar("T")

WRITERS = 4
"""Writer threads of a run on PostgreSQL and MariaDB. Eight push threads each submit about one write per
50 ms call, and a write takes a few milliseconds, so four keep up with room to spare; together with the
push threads' own transactions they stay within the engine's pool (5 connections, 10 more on demand)."""


@dataclass
class Write(Generic[T]):
    work: Callable[[Connection], T]
    value: T | None = None
    error: BaseException | None = None
    done: bool = False
    failed: Callable[[BaseException], None] | None = None
    """Hears the error of a write nobody waits for (:meth:`GroupCommit.later`)."""
    pending: Future[None] | None = None
    """PostgreSQL and MariaDB: the writer thread's commit of this write, while a run commits."""

    def result(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set by the leader when error is None


@dataclass
class GroupCommit:
    """Writes of several threads, committed together on SQLite (see the module docstring)."""

    uow: UnitOfWork
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    _queued: list[Write[object]] = field(default_factory=list)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock)
    _deferred: dict[int, list[Write[object]]] = field(default_factory=dict)
    """PostgreSQL and MariaDB: each thread's writes queued with :meth:`later`, by thread id."""
    _committer: threading.Thread | None = None
    """The thread committing the queue while :meth:`committing` holds; None otherwise."""
    _writers: ThreadPoolExecutor | None = None
    """PostgreSQL and MariaDB: the threads committing submitted writes while :meth:`committing` holds."""
    _in_flight: set[Future[None]] = field(default_factory=set)
    """PostgreSQL and MariaDB: the writer threads' commits not finished yet (changed under the queue lock)."""

    def __post_init__(self) -> None:
        self._queued_more = threading.Condition(self._queue_lock)
        """Wakes the committer: a write was submitted, or the committer is to stop."""
        self._committed = threading.Condition(self._queue_lock)
        """Wakes the threads waiting for their writes: a batch was committed."""
        self._stop = False
        self._running = False
        """Whether the committer takes the queue (read and changed under the queue lock)."""
        self._leading = False
        """Whether a batch taken from the queue is being committed, while the committer runs (read and
        changed under the queue lock)."""

    @property
    def grouped(self) -> bool:
        return self.uow.engine.dialect.name == "sqlite"

    @contextmanager
    def committing(self) -> Iterator[None]:
        """While the block runs, a committer thread commits what is queued as soon as it is (SQLite; on
        PostgreSQL and MariaDB, writer threads commit what is submitted). At its end the committer stops
        (the writers finish) and the queue is flushed."""
        if not self.grouped:
            yield from self._writing_ahead()
            return
        if self._committer is not None:
            yield
            return
        with self._queue_lock:
            self._stop, self._running = False, True
        committer = threading.Thread(target=self._commit_queued, name="push-commit", daemon=True)
        self._committer = committer
        committer.start()
        try:
            yield
        finally:
            with self._queue_lock:
                self._stop = True
                self._queued_more.notify()
            committer.join()
            self._committer = None
            self.flush()

    def _writing_ahead(self) -> Iterator[None]:
        """PostgreSQL and MariaDB: writer threads commit submitted writes while the caller yields."""
        if self._writers is not None:
            yield
            return
        self._writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="push-write")
        try:
            yield
        finally:
            self._writers.shutdown(wait=True)
            self._writers = None
            self.flush()

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction and return its value once that transaction has committed;
        its exception (the transaction, or its savepoint, rolled back) if it raised."""
        if not self.grouped:
            return self.wait(self._commit_now(Write(work)))
        return self.wait(self.submit(work))

    def submit(self, work: Callable[[Connection], T]) -> Write[T]:
        """Queue ``work`` and return at once (on PostgreSQL and MariaDB: run it now); :meth:`wait` for it.
        Another thread's batch may commit it meanwhile (a claim made while this thread's call is out)."""
        write: Write[T] = Write(work)
        if not self.grouped:
            return self._commit_now(write) if self._writers is None else self._commit_ahead(write)
        with self._queue_lock:
            self._queued.append(write)  # type: ignore[arg-type]
            self._queued_more.notify()
        return write

    def wait(self, write: Write[T]) -> T:
        """The submitted write's value once committed (this thread commits the queue if nobody is
        committing a batch)."""
        if write.pending is not None:
            write.pending.result()
        if not write.done and self._running:
            self._lead_or_wait(write)
        if not write.done:
            with self.write_lock:
                if not write.done:
                    with self._queue_lock:
                        batch, self._queued = self._queued, []
                    self._commit(batch)
        return write.result()

    def later(self, work: Callable[[Connection], object], failed: Callable[[BaseException], None]) -> None:
        """Queue ``work`` to be committed with the next batch (on PostgreSQL and MariaDB: with this
        thread's next write), without waiting for it; ``failed`` hears its exception. For a write whose
        loss a crash may cost: a settle the next run redoes by looking the effect up. :meth:`flush`
        commits what is queued."""
        with self._queue_lock:
            if self.grouped:
                self._queued.append(Write(work, failed=failed))
            else:
                self._deferred.setdefault(threading.get_ident(), []).append(Write(work, failed=failed))

    def flush(self) -> None:
        """Commit every write still queued, every thread's (the end of a run, or before a read that needs
        them)."""
        if not self.grouped:
            with self._queue_lock:
                in_flight = list(self._in_flight)
            for pending in in_flight:  # a payment's read needs the records they carry, too
                pending.result()
            with self._queue_lock:
                batches, self._deferred = list(self._deferred.values()), {}
            for batch in batches:
                self._commit(batch)
            return
        with self.write_lock:
            with self._queue_lock:
                batch, self._queued = self._queued, []
            if batch:
                self._commit(batch)

    def _commit_now(self, write: Write[T]) -> Write[T]:
        """PostgreSQL and MariaDB: commit the write, after this thread's deferred ones, in this thread."""
        self._commit([*self._deferred_of_this_thread(), write])  # type: ignore[list-item]
        return write

    def _commit_ahead(self, write: Write[T]) -> Write[T]:
        """PostgreSQL and MariaDB, while a run commits: a writer thread commits the write, after this
        thread's deferred ones; :meth:`wait` waits for it."""
        assert self._writers is not None
        batch: list[Write[object]] = [*self._deferred_of_this_thread(), write]  # type: ignore[list-item]
        with self._queue_lock:
            pending = self._writers.submit(self._commit, batch)
            self._in_flight.add(pending)
        pending.add_done_callback(self._landed)
        write.pending = pending
        return write

    def _landed(self, pending: Future[None]) -> None:
        with self._queue_lock:
            self._in_flight.discard(pending)

    def _deferred_of_this_thread(self) -> list[Write[object]]:
        with self._queue_lock:
            return self._deferred.pop(threading.get_ident(), [])

    def _lead_or_wait(self, write: Write[T]) -> None:
        """While the committer runs: commit the queue (``write`` in it) when no batch is in flight, else
        wait for that batch and look again. Returns once ``write`` is committed, or the committer stopped."""
        while True:
            with self._queue_lock:
                while not write.done and self._leading:
                    self._committed.wait()
                if write.done or not self._running:
                    return
                self._leading = True  # nobody commits: the write is still in the queue
                batch, self._queued = self._queued, []
            self._commit_led(batch)

    def _commit_queued(self) -> None:
        """The committer: commit what is queued whenever no batch is in flight, until told to stop (the
        rest is flushed)."""
        while True:
            with self._queue_lock:
                while (not self._queued or self._leading) and not self._stop:
                    self._queued_more.wait()
                if self._stop:
                    self._running = False  # who still waits commits for itself
                    self._committed.notify_all()
                    return
                self._leading = True
                batch, self._queued = self._queued, []
            self._commit_led(batch)

    def _commit_led(self, batch: list[Write[object]]) -> None:
        """Commit a batch taken while leading, then let the waiting threads and the committer look again."""
        try:
            with self.write_lock:
                self._commit(batch)
        finally:
            with self._queue_lock:
                self._leading = False
                self._committed.notify_all()
                if self._queued:
                    self._queued_more.notify()

    def _commit(self, batch: list[Write[object]]) -> None:
        """Write the batch in one transaction and commit it. Writes are refused rarely (a lease lost), so
        the batch first goes without savepoints (two statements fewer per write); if one write raises,
        that transaction is rolled back whole and the batch written again, each write in its own savepoint,
        so the refused one rolls back alone."""
        try:
            if not self._write(batch, isolated=False):
                self._write(batch, isolated=True)
        except BaseException as error:  # the transaction itself failed: none of the batch was written
            for write in batch:
                write.error = write.error or error
        finally:
            for write in batch:
                write.done = True
                if write.failed is not None and write.error is not None:
                    write.failed(write.error)

    def _write(self, batch: list[Write[object]], *, isolated: bool) -> bool:
        """One transaction of the batch's writes; False (and nothing written) when, not ``isolated``, one
        of them raised."""
        try:
            with self.uow.writing() as connection:
                for write in batch:
                    if not isolated:
                        try:
                            write.value = write.work(connection)
                        except Exception as error:
                            raise _Refused() from error
                        continue
                    try:
                        with connection.begin_nested():
                            write.value = write.work(connection)
                    except Exception as error:  # this write's own failure: its savepoint rolled back
                        write.error = error
        except _Refused:
            return False
        return True


class _Refused(Exception):
    """A write of a batch written without savepoints raised: the batch is written again with them."""
