"""Exact sums of fixed-scale decimal columns (hours, money) on every backend.

MariaDB and PostgreSQL sum NUMERIC exactly. SQLite keeps an :class:`~bridge.store.types.ExactDecimal` as
decimal text with exactly ``scale`` places and would sum that text as floats, so there the text is summed
as integers of 10**-scale (the decimal point removed) and turned back into a Decimal here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Integer, cast, func

PLACES: Final = Decimal("0.00000001")  # the scale every summed column keeps (8 places)


def exact_sum(column: Any, sqlite: bool) -> Any:
    """SUM(column), exact on ``sqlite`` too (read the result back with :func:`from_exact_sum`)."""
    if sqlite:
        return func.sum(cast(func.replace(column, ".", ""), Integer))
    return func.sum(column)


def from_exact_sum(value: Any, sqlite: bool) -> Decimal | None:
    """The Decimal an :func:`exact_sum` returned (None for a sum over no rows)."""
    if value is None:
        return None
    if sqlite:
        return (Decimal(int(value)) * PLACES).quantize(PLACES)
    return Decimal(value).quantize(PLACES)
