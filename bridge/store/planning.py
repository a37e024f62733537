"""Steering SQLite's query planner away from an index that reads far more than the query needs.

SQLite plans without statistics: given ``source = ?`` on a column that leads an index, it may walk that
index (every row of the source) rather than seek the selective one the query is built for. A term wrapped
in :class:`unindexed` is compared as ``+column``, which SQLite documents as the way to keep a term out of
the index choice, and which costs nothing per row (``column || ''`` builds a string for every row, and
inside a correlated subquery it led SQLite to a worse plan still). MariaDB and PostgreSQL choose by their
statistics and get the column as it is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class unindexed(FunctionElement[Any]):
    """A column's value that no index serves on SQLite (``+column``); the column itself elsewhere."""

    name = "unindexed"
    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type  # compared and bound as the column is


@compiles(unindexed)
def _as_it_is(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _out_of_index_choice(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(+{compiler.process(element.clauses, **kw)})"
