"""The only place a transaction opens, commits or rolls back.

A service asks for :meth:`UnitOfWork.reading` to look, or :meth:`UnitOfWork.writing` to change the store,
and gets a :class:`Tx` for the duration of a ``with`` block. Two rules live here once, instead of being
remembered at each call site:

- **SQLite's write rule.** A writing transaction takes the write lock when it begins (``BEGIN
  IMMEDIATE``), so a read-then-write waits for another writer instead of failing with "database is locked"
  half-way through. Readers stay concurrent (WAL). MariaDB and PostgreSQL lock rows as usual.
- **Dry-run is roll back.** ``writing(dry_run=True)`` runs the same code path and rolls back at the end,
  so a dry-run shows exactly what a real run would write and leaves nothing.

Any exception leaving the block rolls the transaction back and propagates unchanged.

A :class:`Tx` is the transaction's connection, and the store's functions take it as they are
(``store.insert_invoice(tx, ...)``): they already are the repositories, one module per aggregate, and
binding ~100 of them to a wrapper would duplicate their signatures without changing what any of them does.
So a call site changes in one line (where its transaction opens) and its body not at all. A nested
``tx.begin_nested()`` is a savepoint inside the unit of work, not a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeAlias

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bridge.store.database import SQLITE_BEGIN

Tx: TypeAlias = Connection
"""One open transaction, as the store's functions take it (services name this type, not SQLAlchemy's)."""

Conflict: TypeAlias = IntegrityError
"""A write broke a unique or foreign-key rule: most often another run wrote the same row first. The unit
of work has rolled back (or the savepoint has); the caller decides what that means."""

StoreError: TypeAlias = SQLAlchemyError
"""The store could not do what was asked (not reachable, a timeout); its transaction was rolled back."""


@dataclass(frozen=True)
class UnitOfWork:
    """Opens transactions on one engine; built once by the composition root and shared by the services."""

    engine: Engine

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        """A transaction that only reads; never committed, so a stray write is discarded."""
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def writing(self, *, dry_run: bool = False) -> Iterator[Tx]:
        """A transaction that writes: committed at the end of the block, rolled back on ``dry_run`` or an
        exception. On SQLite it holds the write lock from its first moment (``BEGIN IMMEDIATE``)."""
        with self.engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) as connection:
            transaction = connection.begin()
            try:
                yield connection
            except BaseException:
                transaction.rollback()
                raise
            if dry_run:
                transaction.rollback()
            else:
                transaction.commit()
