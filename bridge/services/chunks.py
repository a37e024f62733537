"""A run's clients, chunk by chunk, shared by every worker on the same database (issue 17).

Month end (``invoice``) and ``process_clients`` take their clients from here: with several daemons on one
PostgreSQL or MariaDB each claims the next free chunk of the run (bridge/store/chunks.py) and finishes it
in the transaction that stores the chunk's work, so every client is worked by one of them, once. A worker
killed mid-chunk loses nothing: its transaction never committed, and the chunk is taken by another worker
once its claim expires (``daemon.lease_seconds`` after it was taken). One worker alone (SQLite, one daemon)
takes every chunk in turn, as the run always did.

A dry run and a run for one client share nothing: they read the clients as they are, in chunks of the
same size, and finish nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from bridge.clock import Clock
from bridge.domain.clients import Client
from bridge.logs import get_logger
from bridge.store import chunks as store
from bridge.store import clients as clients_store
from bridge.store.chunks import ChunkTaken as ChunkTaken
from bridge.store.unit_of_work import Tx, UnitOfWork

log = get_logger(__name__)

CHUNK_SIZE = 500
"""Client ids per chunk: the size the runs read their clients in (a few seconds of work)."""


@dataclass(frozen=True)
class WorkChunk:
    """Clients of one chunk, and the claim this worker holds on it (None when the run is not shared)."""

    clients: list[Client]
    claim: store.Claim | None = None

    def finish(self, connection: Tx, clock: Clock) -> None:
        """Mark the chunk done in ``connection``, the transaction that stores its work; raises
        :class:`ChunkTaken` (roll it back) if another worker took the chunk over meanwhile."""
        if self.claim is not None:
            store.finish(connection, self.claim, clock.now())


class SharedRuns:
    """Hands a worker the chunks of a run that nobody else works: ``holder`` names the worker (the
    daemon's owner), ``ttl`` is how long a claim lasts before another worker may take the chunk."""

    def __init__(
        self, uow: UnitOfWork, clock: Clock, *, holder: str, ttl: timedelta, size: int = CHUNK_SIZE
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._holder = holder
        self._ttl = ttl
        self._size = size

    def chunks(self, run: str) -> Iterator[WorkChunk]:
        """Claim the run's chunks one at a time until none is left to take; each is yielded with its
        clients (empty ranges are finished here). Opens a new generation of the run if none is being
        worked."""
        with self._uow.writing() as connection:
            generation = store.open_run(
                connection, run, size=self._size, now=self._clock.now(), ttl=self._ttl
            )
        while True:
            with self._uow.writing() as connection:
                claim = store.claim_next(
                    connection, run, generation, self._holder, now=self._clock.now(), ttl=self._ttl
                )
            if claim is None:
                return
            with self._uow.reading() as connection:
                clients = clients_store.clients_between(connection, claim.first_client, claim.last_client)
            chunk = WorkChunk(clients, claim)
            if clients:
                yield chunk
                continue
            try:
                with self._uow.writing() as connection:
                    chunk.finish(connection, self._clock)
            except ChunkTaken:
                continue

    def unshared(self, clients: Iterator[list[Client]]) -> Iterator[WorkChunk]:
        """The clients of a run that claims nothing (a dry run, one client), as chunks."""
        for chunk in clients:
            yield WorkChunk(chunk)

    @property
    def size(self) -> int:
        return self._size


def chunk_lost(run: str, error: ChunkTaken) -> None:
    """Log a chunk another worker took over (its work was rolled back here and is done there)."""
    log.warning("chunk taken over by another worker; left to it", run=run, reason=str(error))
