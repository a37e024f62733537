"""Many rows in one driver call, for the store's hot writes (usage ingest: millions of rows a month).

SQLAlchemy Core binds every value of every row through its column's type and builds a parameter
dictionary per row; at hundreds of thousands of rows a window that is most of an insert's time, and the
database's own work the smaller part. Here a statement's text is built once per call for the dialect,
rows are plain tuples in the order of :attr:`Columns.names`, and values are converted by the columns' own
types (the dialect's implementation of the type, as Core picks it, and its ``bind_processor``: the very
conversion Core applies), so what is stored is identical.

A column that repeats a few values over a whole window (the source, the window's start and end, the
collection time, whole hours) is converted once per distinct value (:meth:`Columns.binder` with
``repeated=True``): values that compare equal convert alike (an instant in any zone is stored in UTC, a
Decimal to its column's places), except a zero, whose sign a Decimal keeps, so zeros convert each time.
String columns bind as they are on SQLite, PyMySQL and psycopg (no bind processor); :meth:`Columns.binder`
says so for a column whose type needs none, and the callers pass those values untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

from bridge.store.types import once_per_value

Binder = Callable[[Any], Any]


def _unchanged(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Columns:
    """Some of a table's columns, in the order a row tuple gives their values."""

    table: Table
    names: tuple[str, ...]

    def binder(self, dialect: Dialect, name: str, *, repeated: bool = False) -> Binder:
        """The conversion Core applies to ``name``'s values on ``dialect``; with ``repeated``, each
        distinct value is converted once (for a column whose few values repeat over many rows)."""
        processor = self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is None:
            return _unchanged
        return once_per_value(processor) if repeated else processor

    def insert(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """INSERT ``rows`` (values already bound) in one executemany."""
        if rows:
            connection.exec_driver_sql(self._insert_sql(connection.dialect), list(rows))

    def update(self, connection: Connection, key: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """UPDATE the rows whose ``key`` columns equal each tuple's last values, setting :attr:`names` to
        its first ones, in one executemany."""
        if rows:
            connection.exec_driver_sql(self._update_sql(connection.dialect, key), list(rows))

    def _insert_sql(self, dialect: Dialect) -> str:
        quote = dialect.identifier_preparer.quote
        marks = ", ".join(_marker(dialect) for _ in self.names)
        return (
            f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(name) for name in self.names)}) "
            f"VALUES ({marks})"
        )

    def _update_sql(self, dialect: Dialect, key: Sequence[str]) -> str:
        quote, mark = dialect.identifier_preparer.quote, _marker(dialect)
        assignments = ", ".join(f"{quote(name)} = {mark}" for name in self.names)
        condition = " AND ".join(f"{quote(name)} = {mark}" for name in key)
        return f"UPDATE {quote(self.table.name)} SET {assignments} WHERE {condition}"


def _marker(dialect: Dialect) -> str:
    """A positional parameter: ``?`` for sqlite3, ``%s`` for PyMySQL and psycopg (both take tuples)."""
    if dialect.paramstyle == "qmark":
        return "?"
    if dialect.paramstyle in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(f"bulk writes know no {dialect.paramstyle!r} parameters ({dialect.driver})")
