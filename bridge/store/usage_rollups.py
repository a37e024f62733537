"""Usage rolled up as it is collected (issue 17): per resource, plan and billing day, the totals of the
hourly windows that start that day, so a month end reads days, not resource-hours.

**Same transaction.** :func:`bridge.store.usage.ingest_window` hands every hourly row it writes (and the
row it replaces) to a :class:`Pending`, flushed inside the transaction that also moves the source's
watermark. A crash between a window and its rollup is impossible by construction: both commit or neither
does. The day rows are written as the hourly ones are, in one executemany each (bridge/store/bulk.py).

**What a day keeps** is what pricing reads of the hours (bridge/domain/pricing.py): the exact sum of hours
(and tokens), the first window's start and the last window's end (the cycle-edge check), the name the
latest window reported (an invoice shows a renamed VM's new name), how many windows, and the latest
``collected_at`` (usage collected after its cycle was invoiced is late). A re-collection that raises a
window's hours adds the difference; one that moves a window to another plan or owner (rare) recomputes the
two days from the hourly rows. A re-collection never lowers hours, so neither does a rollup.

**Days** begin at local midnight in the billing time zone, as billing cycles do, so every day lies inside
one cycle and a cycle's totals are a sum of whole days. The zone is kept in ``usage_rollup_state``;
:func:`ensure` rebuilds the days from the hourly rows when it differs from the one asked for (the first run
after the upgrade, or a changed ``billing.timezone``).

**Retention.** :func:`prune` deletes hourly rows of windows that start before a given instant (the
housekeeping job: ``billing.hourly_usage_months``); the days stay. A window older than that is final: it is
no longer ingested (its hours could no longer be compared with what was recorded).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, NamedTuple, TypeAlias
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, type_coerce, update
from sqlalchemy.engine import Dialect

from bridge.domain.cycles import local_midnight
from bridge.domain.instants import as_utc
from bridge.domain.usage import UsageRecord, Window, as_source
from bridge.store import bulk
from bridge.store.sums import exact_sum, from_exact_sum
from bridge.store.tables import usage_records, usage_rollup_state, usage_rollups
from bridge.store.types import UTCDateTime

STATE_ID: Final = 1
DEFAULT_ZONE: Final = "UTC"
_IN_CHUNK: Final = 500
_STAMP: Final = 20  # the length of a name's window-end stamp, "YYYYmmddHHMMSSffffff"


@dataclass(frozen=True)
class RollupState:
    """The zone whose days the rollups are cut in, and before which instant hourly rows were pruned."""

    zone: str
    pruned_before: datetime | None


@dataclass(frozen=True)
class HourRow:
    """An hourly usage row as a rollup reads it."""

    owner: str
    resource_id: str
    plan: str
    window_start: datetime
    window_end: datetime
    resource_name: str
    hours: Decimal
    tokens: Decimal | None
    collected_at: datetime


class Replaced(NamedTuple):
    """What a day needs of the hourly row a re-collection raises: where it was counted, and how much.
    A NamedTuple, not a frozen dataclass: a re-collected window reads one per resource, and SolusVM's
    current hour is re-collected at every poll."""

    owner: str
    resource_id: str
    plan: str
    window_start: datetime
    window_end: datetime
    hours: Decimal
    tokens: Decimal | None


@dataclass(frozen=True)
class StoredTotal:
    """One resource's usage on one plan over whole days: the rollups of a cycle, summed.

    ``first_start``/``last_end`` are its first window's start and its last window's end; ``collected_at``
    the latest collection of any of its windows.
    """

    source: str
    owner: str
    resource_id: str
    plan: str
    resource_name: str
    first_start: datetime
    last_end: datetime
    windows: int
    hours: Decimal
    tokens: Decimal | None
    collected_at: datetime

    @property
    def record(self) -> UsageRecord:
        """The total as the usage record pricing reads (``summed``: a day's or a cycle's windows)."""
        return UsageRecord(
            source=as_source(self.source),
            resource_id=self.resource_id,
            resource_name=self.resource_name,
            owner=self.owner,
            plan=self.plan,
            window=Window(self.first_start, self.last_end),
            hours=self.hours,
            tokens=self.tokens,
            summed=True,
        )


# -- the state ---------------------------------------------------------------------------------------------


def state(tx: Connection) -> RollupState | None:
    row = tx.execute(
        select(usage_rollup_state.c.zone, usage_rollup_state.c.pruned_before).where(
            usage_rollup_state.c.id == STATE_ID
        )
    ).first()
    return RollupState(row.zone, row.pruned_before) if row else None


def _current_state(tx: Connection) -> RollupState:
    """The state, created (days in UTC) on a store that has none yet; :func:`ensure` moves it to a zone."""
    found = state(tx)
    if found is None:
        tx.execute(insert(usage_rollup_state).values(id=STATE_ID, zone=DEFAULT_ZONE, pruned_before=None))
        found = RollupState(DEFAULT_ZONE, None)
    return found


def ensure(tx: Connection, zone: ZoneInfo) -> int:
    """Make the rollups days of ``zone``: rebuilt from the hourly rows when they are of another zone (or
    were never built). Returns how many day rows were rebuilt (0 when nothing had to change)."""
    found = state(tx)
    key = zone.key or DEFAULT_ZONE
    if found is not None and found.zone == key:
        return 0
    kept_from = found.pruned_before if found else None
    doomed = delete(usage_rollups)
    if kept_from is not None:
        doomed = doomed.where(usage_rollups.c.day_start >= kept_from)
    tx.execute(doomed)
    if found is None:
        tx.execute(insert(usage_rollup_state).values(id=STATE_ID, zone=key, pruned_before=None))
    else:
        tx.execute(update(usage_rollup_state).where(usage_rollup_state.c.id == STATE_ID).values(zone=key))
    days = _Days(zone)
    rebuilt = 0
    for source, rows in _hourly_by_resource(tx, kept_from):
        totals: dict[DayKey, _Total] = {}
        for row in rows:
            totals.setdefault(_key(row, days), _Total()).add(row, days)
        _insert(tx, source, totals)
        rebuilt += len(totals)
    return rebuilt


def prune(tx: Connection, zone: ZoneInfo, before: datetime) -> int:
    """Delete the hourly rows of windows starting before ``before`` (their days stay); returns how many.

    The rollups are made whole first (:func:`ensure`), so nothing pruned is missing from them.
    """
    ensure(tx, zone)
    current = _current_state(tx)
    if current.pruned_before is not None and current.pruned_before >= before:
        return 0
    pruned = tx.execute(delete(usage_records).where(usage_records.c.window_start < before)).rowcount
    tx.execute(
        update(usage_rollup_state).where(usage_rollup_state.c.id == STATE_ID).values(pruned_before=before)
    )
    return int(pruned or 0)


def pruned_before(tx: Connection) -> datetime | None:
    """Windows starting before this instant are final (their hourly rows were pruned)."""
    found = state(tx)
    return found.pruned_before if found else None


# -- kept as collected -------------------------------------------------------------------------------------

DayKey: TypeAlias = tuple[str, str, str, datetime]
"""A day row's key within its source: owner, resource id, plan, day start."""


class Pending:
    """The day changes of several windows written in one transaction, added up and applied once by
    :meth:`flush` before that transaction commits (the sync's batch: a day's row is then updated once per
    batch, not once per hourly window). Holds one total per changed day, not the rows."""

    def __init__(self) -> None:
        self._days: _Days | None = None
        self._deltas: dict[str, dict[DayKey, _Total]] = {}
        self._recount: dict[str, set[DayKey]] = {}

    def add_new(
        self,
        tx: Connection,
        source: str,
        fresh: Sequence[tuple[UsageRecord, Decimal]],
        collected_at: datetime,
    ) -> None:
        """Records of windows stored the first time, each with the hours stored for it (collected at
        ``collected_at``): each adds a window to its day."""
        if not fresh:
            return
        days = self._zone_days(tx)
        deltas = self._deltas.setdefault(source, {})
        window: Window | None = None
        for record, hours in fresh:
            if record.window is not window:  # a window's records share it: its day and stamp found once
                window = record.window
                day, stamp = days.start(window.start), days.stamp(window.end)
            key = (record.owner, record.resource_id, record.plan, day)
            total = deltas.get(key)
            if total is None:
                total = deltas[key] = _Total()
            total.add_window(window, stamp, record.resource_name, hours, record.tokens, collected_at)

    def add_raised(
        self,
        tx: Connection,
        source: str,
        raised: Sequence[tuple[Replaced, UsageRecord, Decimal]],
        collected_at: datetime,
    ) -> None:
        """Rows a re-collection raised: the row replaced, the record that replaced it and its stored hours.
        The difference is added to the day; a row that moved to another day's row (another owner or plan,
        another window end, tokens now given or no longer) has both days counted again at :meth:`flush`."""
        if not raised:
            return
        days = self._zone_days(tx)
        deltas = self._deltas.setdefault(source, {})
        recount = self._recount.setdefault(source, set())
        for old, record, hours in raised:
            window = record.window
            key = (record.owner, record.resource_id, record.plan, days.start(window.start))
            if not _same_place(old, record):
                recount |= {_key(old, days), key}
                continue
            total = deltas.get(key)
            if total is None:
                total = deltas[key] = _Total()
            tokens = None if record.tokens is None or old.tokens is None else record.tokens - old.tokens
            total.add_raise(window, days.stamp(window.end), record.resource_name, hours - old.hours, tokens)
            total.collected(collected_at)

    def flush(self, tx: Connection) -> None:
        """Apply what was added (then nothing is pending)."""
        if self._days is not None:
            for source, deltas in self._deltas.items():
                _apply(tx, source, deltas, self._recount.get(source, set()), self._days)
        self._deltas, self._recount = {}, {}

    def _zone_days(self, tx: Connection) -> _Days:
        if self._days is None:
            self._days = _Days(ZoneInfo(_current_state(tx).zone))
        return self._days


def _apply(
    tx: Connection,
    source: str,
    deltas: dict[DayKey, _Total],
    recount: set[DayKey],
    days: _Days,
) -> None:
    stored = _stored(tx, source, {key for key in deltas if key not in recount})
    fresh: dict[DayKey, _Total] = {}
    changed: list[tuple[int, _Total]] = []
    for key, delta in deltas.items():
        if key in recount:
            continue
        row = stored.get(key)
        if row is not None:
            changed.append((row.id, row.merged(delta)))
        elif delta.windows:
            fresh[key] = delta
        else:  # a raise whose day was never counted: count it from the hours
            recount.add(key)
    _insert(tx, source, fresh)
    _update(tx, changed)
    for key in sorted(recount):
        _recount(tx, source, key, days)


def _same_place(old: Replaced, new: UsageRecord) -> bool:
    """A raise that stays on its day's row: same owner, plan and window end, tokens given either way."""
    return (
        old.owner == new.owner
        and old.plan == new.plan
        and old.window_end == new.window.end
        and (old.tokens is None) == (new.tokens is None)
    )


class _Total:
    """A day's totals as they are added up (also a delta to add to a stored day).

    The latest name is kept as its window's end stamp and the name (``latest_name`` joins them), so
    choosing the later of two names compares stamps only. Slots: an ingest keeps one per changed day."""

    __slots__ = ("collected_at", "first_start", "hours", "last_end", "name", "stamp", "tokens", "windows")

    def __init__(self) -> None:
        self.windows = 0
        self.hours = Decimal(0)
        self.tokens: Decimal | None = None
        self.first_start: datetime | None = None
        self.last_end: datetime | None = None
        self.stamp = ""
        self.name = ""
        self.collected_at: datetime | None = None

    def add(self, row: HourRow, days: _Days) -> None:
        """One more window of the day, as stored."""
        self.windows += 1
        end = row.window_end
        self._take(row.window_start, end, days.stamp(end), row.resource_name, row.hours, row.tokens)
        self.collected(row.collected_at)

    def add_window(
        self,
        window: Window,
        stamp: str,
        name: str,
        hours: Decimal,
        tokens: Decimal | None,
        collected_at: datetime,
    ) -> None:
        """One more window of the day, collected now: ``stamp`` is its end's (:meth:`_Days.stamp`),
        ``name`` the name it reported."""
        self.windows += 1
        self._take(window.start, window.end, stamp, name, hours, tokens)
        self.collected(collected_at)

    def add_raise(
        self, window: Window, stamp: str, name: str, hours: Decimal, tokens: Decimal | None
    ) -> None:
        """More hours (and tokens) of a window already counted, now named ``name``."""
        self._take(window.start, window.end, stamp, name, hours, tokens)

    def collected(self, at: datetime) -> None:
        if self.collected_at is None or at > self.collected_at:
            self.collected_at = at

    def _take(
        self, start: datetime, end: datetime, stamp: str, name: str, hours: Decimal, tokens: Decimal | None
    ) -> None:
        self.hours += hours
        if tokens is not None:
            self.tokens = tokens if self.tokens is None else self.tokens + tokens
        if self.first_start is None or start < self.first_start:
            self.first_start = start
        if self.last_end is None or end > self.last_end:
            self.last_end = end
        if stamp >= self.stamp:  # the later window's name; of the same window, the one reported last
            self.stamp, self.name = stamp, name

    @property
    def latest_name(self) -> str:
        return f"{self.stamp} {self.name}"


@dataclass(frozen=True)
class _StoredDay:
    id: int
    first_start: datetime
    last_end: datetime
    latest_name: str
    windows: int
    hours: Decimal
    tokens: Decimal | None
    collected_at: datetime

    def merged(self, delta: _Total) -> _Total:
        total = _Total()
        total.windows = self.windows + delta.windows
        total.hours = self.hours + delta.hours
        total.tokens = self.tokens
        if delta.tokens is not None:
            total.tokens = delta.tokens if self.tokens is None else self.tokens + delta.tokens
        total.first_start = min(self.first_start, delta.first_start or self.first_start)
        total.last_end = max(self.last_end, delta.last_end or self.last_end)
        total.stamp, total.name = self.latest_name[:_STAMP], self.latest_name[_STAMP + 1 :]
        if delta.stamp >= total.stamp:
            total.stamp, total.name = delta.stamp, delta.name
        total.collected_at = max(self.collected_at, delta.collected_at or self.collected_at)
        return total


_DAY_VALUES = ("first_start", "last_end", "latest_name", "windows", "hours", "tokens", "collected_at")
_NEW_DAYS = bulk.Columns(usage_rollups, ("source", "owner", "resource_id", "plan", "day_start", *_DAY_VALUES))
_CHANGED_DAYS = bulk.Columns(usage_rollups, _DAY_VALUES)


def _stored(tx: Connection, source: str, keys: set[DayKey]) -> dict[DayKey, _StoredDay]:
    """The stored days of ``keys`` (owner, resource id, plan, day start)."""
    if not keys:
        return {}
    columns = [usage_rollups.c[name] for name in _StoredDay.__dataclass_fields__]
    key_columns = [usage_rollups.c.owner, usage_rollups.c.resource_id, usage_rollups.c.plan]
    day_starts = sorted({key[3] for key in keys})
    resource_ids = sorted({key[1] for key in keys})
    found: dict[DayKey, _StoredDay] = {}
    query = select(*key_columns, usage_rollups.c.day_start, *columns).where(
        usage_rollups.c.source == source, usage_rollups.c.day_start.in_(day_starts)
    )
    chunks = _chunks(resource_ids) if len(resource_ids) <= _IN_CHUNK else [None]
    for chunk in chunks:
        chosen = query if chunk is None else query.where(usage_rollups.c.resource_id.in_(chunk))
        for row in tx.execute(chosen):
            key = (row.owner, row.resource_id, row.plan, row.day_start)
            if key in keys:
                found[key] = _StoredDay(*row[4:])
    return found


def _insert(tx: Connection, source: str, totals: dict[DayKey, _Total]) -> None:
    """New day rows, in one executemany (bridge/store/bulk.py)."""
    if not totals:
        return
    bound = _BoundDay(tx.dialect)
    day = _NEW_DAYS.binder(tx.dialect, "day_start", repeated=True)
    source_value = _NEW_DAYS.binder(tx.dialect, "source")(source)
    _NEW_DAYS.insert(
        tx,
        [
            (source_value, owner, resource_id, plan, day(day_start), *bound.values(total))
            for (owner, resource_id, plan, day_start), total in totals.items()
        ],
    )


def _update(tx: Connection, changed: Sequence[tuple[int, _Total]]) -> None:
    """Stored day rows given their new totals (by id), in one executemany."""
    if changed:
        bound = _BoundDay(tx.dialect)
        _CHANGED_DAYS.update(tx, ("id",), [(*bound.values(total), day_id) for day_id, total in changed])


class _BoundDay:
    """A day's totals as the driver takes them (:data:`_DAY_VALUES`, bridge/store/bulk.py)."""

    def __init__(self, dialect: Dialect) -> None:
        self._instant = _CHANGED_DAYS.binder(dialect, "first_start", repeated=True)  # every instant column
        self._hours = _CHANGED_DAYS.binder(dialect, "hours", repeated=True)  # most days hold 24 hours
        self._tokens = _CHANGED_DAYS.binder(dialect, "tokens")

    def values(self, total: _Total) -> tuple[Any, ...]:
        instant = self._instant
        return (
            instant(total.first_start),
            instant(total.last_end),
            total.latest_name,
            total.windows,
            self._hours(total.hours),
            None if total.tokens is None else self._tokens(total.tokens),
            instant(total.collected_at),
        )


def _recount(tx: Connection, source: str, key: DayKey, days: _Days) -> None:
    """One day's row counted again from its hourly rows (deleted when none is left)."""
    owner, resource_id, plan, day_start = key
    rows = [
        row
        for row in _hour_rows(
            tx,
            usage_records.c.source == source,
            usage_records.c.resource_id == resource_id,
            usage_records.c.window_start >= day_start,
            usage_records.c.window_start < days.next_start(day_start),
        )
        if row.owner == owner and row.plan == plan
    ]
    tx.execute(
        delete(usage_rollups).where(
            usage_rollups.c.source == source,
            usage_rollups.c.day_start == day_start,
            usage_rollups.c.resource_id == resource_id,
            usage_rollups.c.owner == owner,
            usage_rollups.c.plan == plan,
        )
    )
    if rows:
        total = _Total()
        for row in rows:
            total.add(row, days)
        _insert(tx, source, {key: total})


_HOUR_COLUMNS = [usage_records.c[name] for name in HourRow.__dataclass_fields__]


def _hour_rows(tx: Connection, *where: Any) -> Iterator[HourRow]:
    for row in tx.execute(select(*_HOUR_COLUMNS).where(*where)):
        yield HourRow(*row)


def _hourly_by_resource(tx: Connection, since: datetime | None) -> Iterator[tuple[str, list[HourRow]]]:
    """Every hourly row (of windows starting at or after ``since``), one resource at a time."""
    query = select(usage_records.c.source, *_HOUR_COLUMNS).order_by(
        usage_records.c.source, usage_records.c.resource_id
    )
    if since is not None:
        query = query.where(usage_records.c.window_start >= since)
    current: tuple[str, str] | None = None
    rows: list[HourRow] = []
    for row in tx.execute(query.execution_options(yield_per=10_000)):
        hour = HourRow(*row[1:])
        if (row.source, hour.resource_id) != current:
            if current is not None:
                yield current[0], rows
            current, rows = (row.source, hour.resource_id), []
        rows.append(hour)
    if current is not None:
        yield current[0], rows


class _Days:
    """Billing days of one zone: the local midnight a window's start falls after (cached per instant)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._starts: dict[datetime, datetime] = {}
        self._stamps: dict[datetime, str] = {}

    def start(self, instant: datetime) -> datetime:
        found = self._starts.get(instant)
        if found is None:
            found = local_midnight(instant.astimezone(self.zone).date(), self.zone)
            self._starts[instant] = found
        return found

    def stamp(self, end: datetime) -> str:
        """A window end as the stamp its name is prefixed with in ``latest_name`` ("YYYYmmddHHMMSSffffff",
        so the latest sorts last, in SQL too); cached per instant, as a window's rows share their end."""
        found = self._stamps.get(end)
        if found is None:
            found = self._stamps[end] = f"{as_utc(end):%Y%m%d%H%M%S%f}"
        return found

    def next_start(self, day_start: datetime) -> datetime:
        return local_midnight(day_start.astimezone(self.zone).date() + timedelta(days=1), self.zone)


def _key(row: HourRow | Replaced, days: _Days) -> DayKey:
    return (row.owner, row.resource_id, row.plan, days.start(row.window_start))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    return (items[i : i + _IN_CHUNK] for i in range(0, len(items), _IN_CHUNK))


# -- read at month end -------------------------------------------------------------------------------------


def totals_of_owners(
    tx: Connection, owners: Iterable[tuple[str, str]], start: datetime, end: datetime
) -> list[StoredTotal]:
    """Per (source, owner, resource, plan), the days in [start, end) of the given owners, summed.

    ``start`` and ``end`` are local midnights (a billing cycle's edges), so the days are whole.
    """
    return _summed(tx, {owner: start for owner in owners}, end)


def totals_since(
    tx: Connection, owners_since: Mapping[tuple[str, str], datetime], end: datetime
) -> list[StoredTotal]:
    """Per (source, owner, resource, plan), the days starting in [the owner's since, end), summed."""
    return _summed(tx, owners_since, end)


def _summed(
    tx: Connection, owners_since: Mapping[tuple[str, str], datetime], end: datetime
) -> list[StoredTotal]:
    pairs = set(owners_since)
    if not pairs:
        return []
    by_since: dict[datetime, set[str]] = {}
    for (_source, owner), since in owners_since.items():
        by_since.setdefault(since, set()).add(owner)
    wanted = [
        and_(usage_rollups.c.owner.in_(sorted(owners)), usage_rollups.c.day_start >= since)
        for since, owners in by_since.items()
    ]
    sqlite = tx.dialect.name == "sqlite"
    group = [usage_rollups.c.source, usage_rollups.c.owner, usage_rollups.c.resource_id, usage_rollups.c.plan]
    query = (
        select(
            *group,
            func.max(usage_rollups.c.latest_name).label("latest_name"),
            type_coerce(func.min(usage_rollups.c.first_start), UTCDateTime()).label("first_start"),
            type_coerce(func.max(usage_rollups.c.last_end), UTCDateTime()).label("last_end"),
            func.sum(usage_rollups.c.windows).label("windows"),
            exact_sum(usage_rollups.c.hours, sqlite).label("hours"),
            exact_sum(usage_rollups.c.tokens, sqlite).label("tokens"),
            type_coerce(func.max(usage_rollups.c.collected_at), UTCDateTime()).label("collected_at"),
        )
        .where(usage_rollups.c.day_start < end, or_(*wanted))
        .group_by(*group)
        .order_by(usage_rollups.c.source, usage_rollups.c.resource_id, usage_rollups.c.plan)
    )
    return [
        StoredTotal(
            row.source,
            row.owner,
            row.resource_id,
            row.plan,
            row.latest_name[_STAMP + 1 :],
            row.first_start,
            row.last_end,
            int(row.windows),
            from_exact_sum(row.hours, sqlite) or Decimal(0),
            from_exact_sum(row.tokens, sqlite),
            row.collected_at,
        )
        for row in tx.execute(query)
        if (row.source, row.owner) in pairs
    ]
