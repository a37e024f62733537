"""Chunk claims: several workers (daemons on several hosts) share one run's clients through the database.

A run is named by what it does and for when (``invoicing 2022-11-01``, ``process_clients``). Its clients
are split by id into fixed ranges of ``size`` ids, one ``work_chunks`` row per range: the ranges follow
from the largest client id alone, so every worker that opens the run writes the same rows, and the
primary key lets exactly one of them in. A worker claims the first chunk nobody holds (never claimed, or
its claim expired) with a new token, and marks it done, fenced on that token, in the transaction that
stores the chunk's work: a worker that lost its claim (paused past the expiry, the chunk taken over)
writes nothing, and a worker killed mid-chunk leaves the chunk to expire and be taken by another.

The claim is ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB, so racing workers take
different chunks without waiting for each other; on SQLite the writing transaction's ``BEGIN IMMEDIATE``
already admits one writer at a time.

Generations: a run whose chunks are all done (or that nobody has touched for two claim times: every
worker died) is finished, and opening it again starts a new generation over every client; a worker that
starts while a generation is still being worked joins it instead.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bridge.store.tables import clients, work_chunks


@dataclass(frozen=True)
class Claim:
    """One chunk as a worker holds it: the client ids ``first_client`` … ``last_client`` (inclusive), and
    the token its writes are fenced on."""

    run: str
    generation: int
    chunk: int
    first_client: int
    last_client: int
    token: str
    expires_at: datetime


class ChunkTaken(Exception):
    """The chunk's claim is no longer this worker's (it expired and another worker took it, or it is
    done): the transaction that tried to finish it must roll back."""


def open_run(connection: Connection, run: str, *, size: int, now: datetime, ttl: timedelta) -> int:
    """The generation of ``run`` to work on: the one being worked, or a new one over every client.

    Race-safe: two workers opening a new generation at once insert the same rows, and the one that loses
    on the primary key joins the winner's (its caller opens the run in a savepoint-free transaction of its
    own, so the loss is seen as :class:`IntegrityError` and read again).
    """
    for _ in range(3):
        current = _current_generation(connection, run)
        if current is not None and _live(connection, run, current, now, ttl):
            return current
        generation = (current or 0) + 1
        try:
            with connection.begin_nested():
                _insert_chunks(connection, run, generation, size, now)
        except IntegrityError:
            continue  # another worker opened it first: join it
        return generation
    raise RuntimeError(f"could not open or join run {run!r}")  # pragma: no cover - three lost races


def claim_next(
    connection: Connection, run: str, generation: int, holder: str, *, now: datetime, ttl: timedelta
) -> Claim | None:
    """Claim the first chunk of the generation that is neither done nor held unexpired; None when none is
    left to take (all done, or the rest held by live workers)."""
    free = and_(
        work_chunks.c.run == run,
        work_chunks.c.generation == generation,
        work_chunks.c.done_at.is_(None),
        or_(work_chunks.c.expires_at.is_(None), work_chunks.c.expires_at <= now),
    )
    found = connection.execute(
        select(work_chunks.c.chunk, work_chunks.c.first_client, work_chunks.c.last_client)
        .where(free)
        .order_by(work_chunks.c.chunk)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if found is None:
        return None
    token = secrets.token_hex(16)
    expires_at = now + ttl
    taken = connection.execute(
        update(work_chunks)
        .where(free, work_chunks.c.chunk == found.chunk)
        .values(holder=holder, token=token, claimed_at=now, expires_at=expires_at)
    ).rowcount
    if taken != 1:  # pragma: no cover - the row is locked (or, on SQLite, the database is) since the SELECT
        return None
    return Claim(run, generation, found.chunk, found.first_client, found.last_client, token, expires_at)


def finish(connection: Connection, claim: Claim, now: datetime) -> None:
    """Mark the claimed chunk done, in the transaction that stores its work; :class:`ChunkTaken` (and
    nothing written) unless the chunk is still claimed with ``claim``'s token.

    The token alone fences: taking a chunk over gives it a new one, so a claim past its expiry that nobody
    took is still this worker's to finish. Called first in its transaction, so the row is locked (and, on
    SQLite, the write lock held) before the chunk's work is written.
    """
    done = connection.execute(
        update(work_chunks)
        .where(_held(claim), work_chunks.c.done_at.is_(None))
        .values(done_at=now, expires_at=None)
    ).rowcount
    if done != 1:
        raise ChunkTaken(
            f"chunk {claim.chunk} of {claim.run} (generation {claim.generation}) was taken over after its "
            "claim expired; the other worker finishes it"
        )


@dataclass(frozen=True)
class RunProgress:
    """Where a generation of a run stands: chunks done, held by a worker, and not yet claimed."""

    generation: int
    done: int
    held: int
    waiting: int


def progress(connection: Connection, run: str, now: datetime) -> RunProgress | None:
    """The latest generation of ``run``, counted; None if it was never opened."""
    generation = _current_generation(connection, run)
    if generation is None:
        return None
    held = and_(work_chunks.c.done_at.is_(None), work_chunks.c.expires_at > now)
    done, holding, total = connection.execute(
        select(
            func.count(work_chunks.c.done_at),
            func.coalesce(func.sum(case((held, 1), else_=0)), 0),
            func.count(),
        ).where(work_chunks.c.run == run, work_chunks.c.generation == generation)
    ).one()
    return RunProgress(generation, int(done), int(holding), int(total) - int(done) - int(holding))


def _held(claim: Claim) -> ColumnElement[bool]:
    return and_(
        work_chunks.c.run == claim.run,
        work_chunks.c.generation == claim.generation,
        work_chunks.c.chunk == claim.chunk,
        work_chunks.c.token == claim.token,
    )


def _current_generation(connection: Connection, run: str) -> int | None:
    generation = connection.scalar(select(func.max(work_chunks.c.generation)).where(work_chunks.c.run == run))
    return None if generation is None else int(generation)


def _live(connection: Connection, run: str, generation: int, now: datetime, ttl: timedelta) -> bool:
    """Whether the generation still has chunks to do and a worker touched it within two claim times
    (``ttl``): otherwise it is finished, or abandoned by workers that all died, and a new generation
    starts over. Within that time a chunk whose worker died is taken over in the same generation."""
    this = and_(work_chunks.c.run == run, work_chunks.c.generation == generation)
    undone = connection.scalar(select(func.count()).where(this, work_chunks.c.done_at.is_(None)))
    if not undone:
        return False
    since = now - 2 * ttl
    touched = or_(
        work_chunks.c.opened_at > since, work_chunks.c.claimed_at > since, work_chunks.c.done_at > since
    )
    return bool(connection.scalar(select(func.count()).where(this, touched)))


def _insert_chunks(connection: Connection, run: str, generation: int, size: int, now: datetime) -> None:
    """One row per ``size`` client ids up to the largest id (at least one row, so an empty store's run is
    opened and finished like any other)."""
    largest = int(connection.scalar(select(func.max(clients.c.id))) or 0)
    count = max(1, -(-largest // size))
    connection.execute(
        insert(work_chunks),
        [
            {
                "run": run,
                "generation": generation,
                "chunk": n,
                "first_client": n * size + 1,
                "last_client": (n + 1) * size,
                "opened_at": now,
            }
            for n in range(count)
        ],
    )
