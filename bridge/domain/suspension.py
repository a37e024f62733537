"""Suspensions as spans of time, and the part of a usage window a suspended client is not billed for.

A suspension runs from the moment the client was suspended (by the credit engine, or by staff) until it
was resumed (``end`` None: still suspended). Clouds keep counting hours for suspended and shelved servers
(Nova's ``os-simple-tenant-usage`` does), so with ``bill_suspended_hours`` off the configuration's
invoices leave out each window's share inside a suspension, its hours (and SolusVM tokens) spread evenly
over the window; the reconciliation puts exactly that share in its "suspended, not billed" bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from bridge.domain.instants import as_utc
from bridge.domain.usage import UsageRecord


class Span(Protocol):
    """Anything with a ``start`` and an ``end`` (None: open)."""

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime | None: ...


@dataclass(frozen=True)
class Suspension:
    """One suspension of a client: from ``start`` to ``end`` (None: still suspended), why and by whom."""

    client_id: int
    start: datetime
    end: datetime | None
    reason: str
    by: str
    shelved: bool = False


def time_inside(start: datetime, end: datetime, spans: Iterable[Span], open_end: datetime) -> timedelta:
    """How much of [start, end) lies inside ``spans`` (an open span runs until ``open_end``)."""
    inside = timedelta(0)
    for span in spans:
        lower = max(start, as_utc(span.start))
        upper = min(end, as_utc(span.end) if span.end is not None else open_end)
        if upper > lower:
            inside += upper - lower
    return inside


def billable_part(record: UsageRecord, spans: Sequence[Span]) -> UsageRecord | None:
    """``record`` without its share inside the suspensions ``spans``: None when the whole window is inside,
    else the record with its hours (and tokens) scaled to the share outside."""
    window = record.window
    length = window.end - window.start
    if not spans or length <= timedelta(0):
        return record
    inside = time_inside(window.start, window.end, spans, window.end)
    if inside <= timedelta(0):
        return record
    if inside >= length:
        return None
    share = _microseconds(length - inside) / _microseconds(length)
    tokens = None if record.tokens is None else record.tokens * share
    return replace(record, hours=record.hours * share, tokens=tokens)


def _microseconds(span: timedelta) -> Decimal:
    return Decimal(span // timedelta(microseconds=1))


__all__ = ["Span", "Suspension", "billable_part", "time_inside"]
