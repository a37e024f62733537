"""Storing collected usage: one row per resource per window, committed with the source's watermark.

Re-collecting a window never adds a second row (the key is source + window start + resource), and
never lowers what was recorded: Nova forgets the hours before a resize or rebuild once the instance's
launch time is reset, so a later answer for a closed window may report less than the first one did.
The record that reports more hours stands; hours are the evidence behind an invoice line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, type_coerce, update
from sqlalchemy.engine import Dialect

from bridge.domain.clients import OWNER_LINK_KIND
from bridge.domain.usage import Source, UsageRecord, Window, as_source
from bridge.store import bulk, usage_rollups
from bridge.store.sums import exact_sum, from_exact_sum
from bridge.store.tables import client_links, solusvm_plans, usage_records, usage_watermarks
from bridge.store.types import UTCDateTime

HOURS_PLACES = Decimal("0.00000001")  # the store keeps hours to 8 places (36 microseconds)


@dataclass(frozen=True)
class IngestResult:
    inserted: int = 0
    raised: int = 0
    unchanged: int = 0
    final: int = 0


@dataclass(frozen=True)
class Watermark:
    source: str
    collected_until: datetime | None
    updated_at: datetime | None
    records_collected: int
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True)
class StoredUsage:
    source: str
    resource_id: str
    resource_name: str
    owner: str
    plan: str
    window_start: datetime
    window_end: datetime
    hours: Decimal
    tokens: Decimal | None
    collected_at: datetime

    @property
    def record(self) -> UsageRecord:
        """The row as the usage record it stores."""
        return UsageRecord(
            source=as_source(self.source),
            resource_id=self.resource_id,
            resource_name=self.resource_name,
            owner=self.owner,
            plan=self.plan,
            window=Window(self.window_start, self.window_end),
            hours=self.hours,
            tokens=self.tokens,
        )


def ingest_window(
    connection: Connection,
    source: Source,
    window: Window,
    records: Sequence[UsageRecord],
    now: datetime,
    *,
    rollups: usage_rollups.Pending | None = None,
) -> IngestResult:
    """Upsert one window's records (see the module docstring for what a re-collection may change), and
    roll what changed up into its day (bridge/store/usage_rollups.py), in the caller's transaction: at
    once, or, given ``rollups``, when the caller flushes them before it commits (a batch of windows).

    Records of windows that start before the hourly evidence was pruned are final: they are left out
    (counted as ``final``), since their hours can no longer be compared with what was recorded.

    The window's stored rows are read in one query, and the new rows inserted (and the raised ones
    updated) in one driver call each, as plain tuples (bridge/store/bulk.py): a window of a big cloud is
    hundreds of thousands of rows, and the sync writes one every few minutes.
    """
    final_before = usage_rollups.pruned_before(connection)
    if final_before is not None:
        kept = [record for record in records if record.window.start >= final_before]
        final, records = len(records) - len(kept), kept
    else:
        final = 0
    existing = _stored_hours(connection, source, window)
    fresh: list[tuple[UsageRecord, Decimal]] = []
    raised: list[tuple[usage_rollups.Replaced, UsageRecord, Decimal]] = []
    for record in records:
        hours = _hours(record)
        old = existing.get(record.resource_id)
        if old is None:
            fresh.append((record, hours))
        elif hours > old.hours:
            raised.append((old, record, hours))
    _insert(connection, fresh, now)
    _raise(connection, raised, now)
    pending = usage_rollups.Pending() if rollups is None else rollups
    pending.add_new(connection, source, fresh, now)
    pending.add_raised(connection, source, raised, now)
    if rollups is None:
        pending.flush(connection)
    return IngestResult(
        inserted=len(fresh),
        raised=len(raised),
        unchanged=len(records) - len(fresh) - len(raised),
        final=final,
    )


_KEY = ("source", "window_start", "resource_id")
_VALUES = ("window_end", "resource_name", "owner", "plan", "hours", "tokens", "collected_at")
_ROWS = bulk.Columns(usage_records, _KEY + _VALUES)
_RAISED = bulk.Columns(usage_records, _VALUES)


def _stored_hours(
    connection: Connection, source: Source, window: Window
) -> dict[str, usage_rollups.Replaced]:
    """What is stored of ``window``, by resource id (nothing when it is collected the first time)."""
    query = select(
        usage_records.c.resource_id,
        usage_records.c.owner,
        usage_records.c.plan,
        usage_records.c.window_end,
        usage_records.c.hours,
        usage_records.c.tokens,
    ).where(usage_records.c.source == source, usage_records.c.window_start == window.start)
    start = window.start
    return {
        resource_id: usage_rollups.Replaced(owner, resource_id, plan, start, end, hours, tokens)
        for resource_id, owner, plan, end, hours, tokens in connection.execute(query)
    }


def _insert(connection: Connection, fresh: Sequence[tuple[UsageRecord, Decimal]], now: datetime) -> None:
    """The new rows, in one executemany."""
    if fresh:
        bound = _Bound(connection.dialect, now)
        rows = [bound.row(record, hours) for record, hours in fresh]
        _ROWS.insert(connection, [key + values for key, values in rows])


def _raise(
    connection: Connection,
    raised: Sequence[tuple[usage_rollups.Replaced, UsageRecord, Decimal]],
    now: datetime,
) -> None:
    """The rows whose hours rose, rewritten with what was collected now, in one executemany."""
    if raised:
        bound = _Bound(connection.dialect, now)
        rows = [bound.row(record, hours) for _old, record, hours in raised]
        _RAISED.update(connection, _KEY, [values + key for key, values in rows])


class _Bound:
    """Records as the driver takes their rows (bridge/store/bulk.py), collected at ``now``: the values
    that repeat over a window (its source and instants, whole hours) bound once."""

    def __init__(self, dialect: Dialect, now: datetime) -> None:
        self._source = _ROWS.binder(dialect, "source", repeated=True)
        self._instant = _ROWS.binder(dialect, "window_start", repeated=True)  # every instant column
        self._hours = _ROWS.binder(dialect, "hours", repeated=True)  # most windows report whole hours
        self._tokens = _ROWS.binder(dialect, "tokens")
        self._collected_at = self._instant(now)
        self._window: Window | None = None
        self._start: Any = None
        self._end: Any = None

    def row(self, record: UsageRecord, hours: Decimal) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """The row's :data:`_KEY` and :data:`_VALUES` for ``record`` storing ``hours``."""
        window = record.window
        if window is not self._window:  # a window's records share it
            self._window, self._start, self._end = (
                window,
                self._instant(window.start),
                self._instant(window.end),
            )
        tokens = None if record.tokens is None else self._tokens(record.tokens)
        return (self._source(record.source), self._start, record.resource_id), (
            self._end,
            record.resource_name,
            record.owner,
            record.plan,
            self._hours(hours),
            tokens,
            self._collected_at,
        )


def _hours(record: UsageRecord) -> Decimal:
    return record.hours.quantize(HOURS_PLACES)


def watermark(connection: Connection, source: str) -> Watermark | None:
    row = connection.execute(select(usage_watermarks).where(usage_watermarks.c.source == source)).first()
    return Watermark(**row._mapping) if row else None


def advance_watermark(
    connection: Connection, source: str, until: datetime, records: int, now: datetime
) -> None:
    """Move the watermark to ``until`` (in the window's own transaction) and clear the last error."""
    current = watermark(connection, source)
    if current is None:
        connection.execute(
            insert(usage_watermarks).values(
                source=source, collected_until=until, updated_at=now, records_collected=records
            )
        )
        return
    connection.execute(
        update(usage_watermarks)
        .where(usage_watermarks.c.source == source)
        .values(
            collected_until=until,
            updated_at=now,
            records_collected=usage_watermarks.c.records_collected + records,
            last_error=None,
            last_error_at=None,
        )
    )


def record_error(connection: Connection, source: str, error: str, now: datetime) -> None:
    """Remember a collection failure for /status; the watermark itself does not move."""
    if watermark(connection, source) is None:
        connection.execute(
            insert(usage_watermarks).values(
                source=source,
                collected_until=None,
                updated_at=now,
                records_collected=0,
                last_error=error,
                last_error_at=now,
            )
        )
        return
    connection.execute(
        update(usage_watermarks)
        .where(usage_watermarks.c.source == source)
        .values(last_error=error, last_error_at=now, updated_at=now)
    )


def usage_of_owners(
    connection: Connection, owners: Iterable[tuple[str, str]], start: datetime, end: datetime
) -> list[StoredUsage]:
    """Every record of the given (source, owner) pairs whose window starts in [start, end).

    The query names owners only (sources are matched here): a ``source =`` term would let the database
    range over every client's rows through the unique (source, window start, resource) index instead of
    seeking the few owners asked for through (owner, window start).
    """
    pairs = set(owners)
    if not pairs:
        return []
    query = (
        select(*_stored_columns())
        .where(usage_records.c.window_start >= start, usage_records.c.window_start < end)
        .where(usage_records.c.owner.in_(sorted({owner for _, owner in pairs})))
        .order_by(usage_records.c.source, usage_records.c.resource_id, usage_records.c.window_start)
    )
    return [
        StoredUsage(*row)  # positional: a month end reads millions
        for row in connection.execute(query)
        if (row.source, row.owner) in pairs
    ]


@dataclass(frozen=True)
class UnlinkedOwner:
    source: str
    owner: str
    resources: int
    records: int
    first_window: datetime
    last_window: datetime


def unlinked_owners(connection: Connection) -> list[UnlinkedOwner]:
    """Owners with usage but no client link of the matching kind: kept, reported, billable once linked."""
    found: list[UnlinkedOwner] = []
    for source, kind in OWNER_LINK_KIND.items():
        link = and_(client_links.c.kind == kind.value, client_links.c.external_id == usage_records.c.owner)
        query = (
            select(
                usage_records.c.owner,
                func.count(func.distinct(usage_records.c.resource_id)).label("resources"),
                func.count().label("records"),
                type_coerce(func.min(usage_records.c.window_start), UTCDateTime()).label("first_window"),
                type_coerce(func.max(usage_records.c.window_start), UTCDateTime()).label("last_window"),
            )
            .select_from(usage_records.outerjoin(client_links, link))
            .where(usage_records.c.source == source, client_links.c.id.is_(None))
            .group_by(usage_records.c.owner)
            .order_by(usage_records.c.owner)
        )
        for row in connection.execute(query):
            found.append(
                UnlinkedOwner(
                    source, row.owner, row.resources, row.records, row.first_window, row.last_window
                )
            )
    return found


def _stored_columns() -> list[Any]:
    return [usage_records.c[field.name] for field in fields(StoredUsage)]


@dataclass(frozen=True)
class PlanRate:
    """A SolusVM plan's token rates as last read from the API, and when."""

    plan_id: str
    name: str
    tokens_per_hour: int
    tokens_per_month: int
    read_at: datetime


def save_plan_rates(connection: Connection, rates: Sequence[PlanRate]) -> None:
    known = set(connection.scalars(select(solusvm_plans.c.plan_id)))
    for rate in rates:
        values = {
            "name": rate.name,
            "tokens_per_hour": rate.tokens_per_hour,
            "tokens_per_month": rate.tokens_per_month,
            "read_at": rate.read_at,
        }
        if rate.plan_id in known:
            connection.execute(
                update(solusvm_plans).where(solusvm_plans.c.plan_id == rate.plan_id).values(values)
            )
        else:
            connection.execute(insert(solusvm_plans).values(plan_id=rate.plan_id, **values))


def plan_rates(connection: Connection) -> dict[str, PlanRate]:
    return {row.plan_id: PlanRate(**row._mapping) for row in connection.execute(select(solusvm_plans))}


@dataclass(frozen=True)
class ResourceTotal:
    """One resource's usage on one plan since a point in time: what the credit engine needs of it."""

    source: str
    owner: str
    resource_id: str
    plan: str
    name: str
    hours: Decimal
    tokens: Decimal | None
    last_window_end: datetime


def totals_since(
    connection: Connection, owners_since: dict[tuple[str, str], datetime], until: datetime
) -> list[ResourceTotal]:
    """Per resource and plan, the hours (and tokens) of windows starting in [owner's since, until).

    Summed by the database, exactly: NUMERIC on MariaDB and PostgreSQL; on SQLite, where the columns hold
    decimal text with exactly eight places, as integers of 10**-8 (SQLite would sum the text as floats).
    Where the hourly rows were pruned (``billing.hourly_usage_months``), the days kept for them count
    instead: those that start at or after ``since`` (a ``since`` that is a local midnight, as a cycle's
    end is, loses nothing).
    """
    horizon = usage_rollups.pruned_before(connection)
    hourly = _hourly_totals_since(connection, owners_since, until)
    early = {owner: since for owner, since in owners_since.items() if horizon and since < horizon}
    if not early or horizon is None:
        return hourly
    days = usage_rollups.totals_since(connection, early, min(horizon, until))
    merged = {(total.source, total.owner, total.resource_id, total.plan): total for total in hourly}
    for day in days:
        key = (day.source, day.owner, day.resource_id, day.plan)
        later = merged.get(key)
        merged[key] = ResourceTotal(
            *key[:3],
            day.plan,
            later.name if later else day.resource_name,
            day.hours + (later.hours if later else Decimal(0)),
            _added(day.tokens, later.tokens if later else None),
            later.last_window_end if later else day.last_end,
        )
    return list(merged.values())


def _added(first: Decimal | None, second: Decimal | None) -> Decimal | None:
    if first is None or second is None:
        return second if first is None else first
    return first + second


def _hourly_totals_since(
    connection: Connection, owners_since: dict[tuple[str, str], datetime], until: datetime
) -> list[ResourceTotal]:
    if not owners_since:
        return []
    by_since: dict[datetime, set[str]] = {}
    for (_source, owner), since in owners_since.items():
        by_since.setdefault(since, set()).add(owner)
    wanted = [
        and_(usage_records.c.owner.in_(sorted(owners)), usage_records.c.window_start >= since)
        for since, owners in by_since.items()
    ]
    sqlite = connection.dialect.name == "sqlite"
    query = (
        select(
            usage_records.c.source,
            usage_records.c.owner,
            usage_records.c.resource_id,
            usage_records.c.plan,
            func.max(usage_records.c.resource_name).label("name"),
            exact_sum(usage_records.c.hours, sqlite).label("hours"),
            exact_sum(usage_records.c.tokens, sqlite).label("tokens"),
            type_coerce(func.max(usage_records.c.window_end), UTCDateTime()).label("last_window_end"),
        )
        .where(usage_records.c.window_start < until, or_(*wanted))
        .group_by(
            usage_records.c.source, usage_records.c.owner, usage_records.c.resource_id, usage_records.c.plan
        )
    )
    rows = [row for row in connection.execute(query) if (row.source, row.owner) in owners_since]
    return [
        ResourceTotal(
            row.source,
            row.owner,
            row.resource_id,
            row.plan,
            row.name,
            from_exact_sum(row.hours, sqlite) or Decimal(0),
            from_exact_sum(row.tokens, sqlite),
            row.last_window_end,
        )
        for row in rows
    ]
