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
