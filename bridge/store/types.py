"""Column types that keep money exact and time in UTC on SQLite, MariaDB and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TypeVar

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from bridge.domain.instants import as_utc

MEMO_SIZE: Final = 4096
"""Distinct values a column's conversion remembers before it starts afresh (see :func:`once_per_value`)."""
_MISSING: Final = object()
_T = TypeVar("_T")


def once_per_value(process: Callable[[Any], _T], size: int = MEMO_SIZE) -> Callable[[Any], _T]:
    """``process`` (a conversion of what the driver returns) run once per distinct value.

    A month's rows repeat few values (the same cycle bounds, the same hours on every line), and the
    conversion (SQLite's text parsed to a datetime, made aware; text or NUMERIC made an exact Decimal at
    the column's scale) costs more than a lookup. The values are immutable, so a remembered one is the
    same value; at most ``size`` are kept, then the memo starts afresh. Falsy values (None, "", and a
    zero, whose sign a Decimal keeps while -0 and 0 are equal keys) are converted every time: a -0.00
    remembered must never come back for a 0.00. Used both ways: for what the driver returns, and for the
    values bulk writes bind (bridge/store/bulk.py).
    """
    memo: dict[Any, _T] = {}

    def converted(value: Any) -> _T:
        if not value:
            return process(value)
        found = memo.get(value, _MISSING)
        if found is _MISSING:
            if len(memo) >= size:
                memo.clear()
            found = memo[value] = process(value)
        return found  # type: ignore[return-value]

    return converted


def _once_per_value(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """A column type's result processing (None: there is none), run once per distinct value."""
    return None if process is None else once_per_value(process)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored as naive UTC (microseconds kept), returned aware in UTC.

    A naive datetime is refused on the way in: the bridge never guesses a time zone.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        return _once_per_value(super().result_processor(dialect, coltype))


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal with a fixed scale: NUMERIC on MariaDB and PostgreSQL, exact text on SQLite.

    SQLite would store NUMERIC as a binary float, so there the value is kept as its decimal string.
    A float, or a value with more places than the column keeps, is refused rather than rounded.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 24, scale: int = 8) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money and quantities are stored from Decimal, not {type(value).__name__}")
        exact = value.quantize(self._quantum)
        if exact != value:
            raise ValueError(f"{value} has more than {self.scale} decimal places; round it before storing")
        return str(exact) if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value).quantize(self._quantum)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        return _once_per_value(super().result_processor(dialect, coltype))
