"""Instants: the one rule for what an aware UTC datetime is (stored and compared in UTC, never naive)."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(instant: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused rather than guessed."""
    if instant.tzinfo is UTC:
        return instant
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()} has no time zone; pass an aware datetime")
    return instant.astimezone(UTC)


def whole_second(instant: datetime) -> datetime:
    """``instant`` in UTC with its fraction of a second dropped.

    SolusVM evidence is kept at whole seconds (its task log and ``created_at`` carry no fraction; a poll
    instant is the clock's and does): a runtime is then a whole number of seconds, and one second is
    far above what rounding each hour's record to 8 places can lose over a month (744 x 10^-8 h, under
    0.03 s), so the month's hours rounded up are the same whether summed from records or from the
    timeline.
    """
    return as_utc(instant).replace(microsecond=0)
