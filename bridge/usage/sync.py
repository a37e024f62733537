"""Collecting usage into the store: windows in order, each committed with its watermark.

Every source is a :class:`~bridge.usage.ports.UsageSource` asked for windows cut from its watermark, by
one loop. Only how the windows are cut differs, and that is data (a :class:`Feed`'s ``windows``):
OpenStack reports the past, so it is collected window by window (``openstack.window`` hours each) up to
``--until`` or now, but only windows that ended more than ``openstack.settle_delay_minutes`` ago; a
fresh store starts at the beginning of the billing month before the last window's month, so the first
invoice is complete (:class:`Settled`). SolusVM can only be observed as it is now, so it is asked for one
window from its watermark's hour to the end of the current hour (:class:`Current`,
bridge/solusvm/collector.py). A vendor error stops that source with one clear log line and leaves its
watermark where it was; the other source goes on.

Windows are committed in batches that double: the first window alone, then as many windows as are
already committed in this run (1, 1, 2, 4, 8 ...), never more than ``batch_records`` records. So a run
that is killed (SIGKILL runs no cleanup) keeps at least its first window and about half of what it read:
a crash loop still makes progress, while a long catch-up commits rarely enough to ingest at speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain.instants import as_utc
from bridge.domain.usage import SOURCES, Source, UsageRecord, Window
from bridge.errors import InputError, VendorError
from bridge.logs import get_logger
from bridge.progress import Progress, Tally, no_progress
from bridge.store import usage as store
from bridge.store import usage_rollups as rollups
from bridge.store.unit_of_work import Tx, UnitOfWork
from bridge.usage.ports import TokenPlan, UsageSource

log = get_logger(__name__)

HOUR: Final = timedelta(hours=1)


@dataclass
class SourceReport:
    """What one source's sync did (or, with dry_run, would do)."""

    source: Source
    dry_run: bool
    windows: int = 0
    records: int = 0
    inserted: int = 0
    raised: int = 0
    collected_from: datetime | None = None
    collected_until: datetime | None = None
    error: str | None = None
    refused_field: str | None = None
    """The reply field a vendor error named: the vendor sent something implausible, not nothing."""
    skipped: str | None = None


class Windows(Protocol):
    """How a source's collection windows are cut from its watermark (``mark``) at ``now``."""

    def cut(
        self, mark: datetime | None, now: datetime, *, until: datetime | None, start: datetime | None
    ) -> list[Window]: ...


@dataclass(frozen=True)
class Settled:
    """For a cloud that reports the past (Nova): windows of ``length``, aligned to it, from the watermark
    (or ``start``) up to ``until`` or now, but only those that ended ``settle`` ago. A fresh store starts
    at the beginning of the billing month (in ``zone``) before the last window's month."""

    zone: ZoneInfo
    length: timedelta = timedelta(hours=1)
    settle: timedelta = timedelta(minutes=15)

    def cut(
        self, mark: datetime | None, now: datetime, *, until: datetime | None, start: datetime | None
    ) -> list[Window]:
        limit = min(as_utc(until), now - self.settle) if until else now - self.settle
        limit = _floor(limit, self.length)
        begin_at = start if start is not None else mark
        begin = _floor(as_utc(begin_at) if begin_at else self._first_start(limit), self.length)
        windows = []
        while begin + self.length <= limit:
            windows.append(Window(begin, begin + self.length))
            begin += self.length
        return windows

    def _first_start(self, limit: datetime) -> datetime:
        """Start of the billing month before ``limit``'s month, in the billing time zone."""
        local = limit.astimezone(self.zone)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        previous = (month_start - timedelta(days=1)).replace(day=1)
        return previous.replace(tzinfo=None).replace(tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True)
class Current:
    """For a cloud that can only be seen as it is now (SolusVM): one window from the watermark's hour (or
    now's) to the end of now's hour. ``until`` and ``start`` do not apply: the past cannot be observed."""

    def cut(
        self, mark: datetime | None, now: datetime, *, until: datetime | None, start: datetime | None
    ) -> list[Window]:
        return [Window(_floor(mark or now, HOUR), _floor(now, HOUR) + HOUR)]


def _no_plans() -> Sequence[TokenPlan]:
    return ()


@dataclass(frozen=True)
class Feed:
    """A usage source, how its windows are cut, and the token-priced plans it read (kept with its usage)."""

    source: UsageSource
    windows: Windows
    plans: Callable[[], Sequence[TokenPlan]] = _no_plans
    derive: Callable[[Tx, Window], list[UsageRecord]] | None = None
    """For usage derived from evidence kept in the store (SolusVM's runtime): called in each window's
    transaction, before the watermark moves; its records are written instead of what ``collect`` gave."""


@dataclass
class UsageSync:
    """Collects every feed the same way: windows from its watermark, doubling batches, one vendor error
    stopping that feed only."""

    uow: UnitOfWork
    clock: Clock
    feeds: Sequence[Feed] = ()
    checkpoint: Callable[[], None] = field(default=lambda: None)
    batch_records: int = 20_000
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    """The billing time zone: usage is rolled up per day of it (bridge/store/usage_rollups.py)."""

    def run(
        self,
        sources: tuple[Source, ...] = SOURCES,
        *,
        until: datetime | None = None,
        start: datetime | None = None,
        dry_run: bool = False,
        progress: Progress = no_progress,
    ) -> list[SourceReport]:
        """Collect each of ``sources``; ``progress`` hears the windows collected of those cut so far."""
        by_source = {feed.source.source: feed for feed in self.feeds}
        reports = []
        tally = Tally(progress)
        for source in sources:
            feed = by_source.get(source)
            if feed is None:
                reports.append(SourceReport(source, dry_run, skipped=f"{source}.enabled is false"))
            else:
                reports.append(self._collect(feed, until, start, dry_run, tally))
        tally.finish()
        return reports

    def windows(
        self, feed: Feed, now: datetime, *, until: datetime | None = None, start: datetime | None = None
    ) -> list[Window]:
        """The windows ``feed`` is asked for at ``now``, cut from its watermark."""
        with self.uow.reading() as connection:
            mark = store.watermark(connection, feed.source.source)
        since = mark.collected_until if mark and mark.collected_until else None
        return feed.windows.cut(since, now, until=until, start=start)

    def _collect(
        self, feed: Feed, until: datetime | None, start: datetime | None, dry_run: bool, tally: Tally
    ) -> SourceReport:
        """Collect window by window, committing doubling batches (see the module docstring).

        Whatever ends the loop (a vendor error, a shutdown between windows), the windows already
        collected are written first, so the next run resumes right after them.
        """
        report = SourceReport(feed.source.source, dry_run)
        began = self.clock.now()
        windows = self.windows(feed, began, until=until, start=start)
        tally.expect(len(windows))
        if windows:
            report.collected_from = windows[0].start
        batch: list[tuple[Window, list[UsageRecord]]] = []
        try:
            for window in windows:
                self.checkpoint()
                try:
                    batch.append((window, feed.source.collect(window)))
                    tally.advance()
                except VendorError as error:
                    if batch:
                        self._store(report, feed, batch, dry_run, began)
                        batch = []
                    return self._failed(report, error)
                if self._batch_full(batch, committed=report.windows):
                    self._store(report, feed, batch, dry_run, began)
                    batch = []
        finally:
            if batch:
                self._store(report, feed, batch, dry_run, began)
        return report

    def _batch_full(self, batch: list[tuple[Window, list[UsageRecord]]], *, committed: int) -> bool:
        """Commit once the batch holds as many windows as this run committed so far (at least one), or
        ``batch_records`` records."""
        return len(batch) >= max(1, committed) or sum(len(r) for _, r in batch) >= self.batch_records

    def _store(
        self,
        report: SourceReport,
        feed: Feed,
        batch: list[tuple[Window, list[UsageRecord]]],
        dry_run: bool,
        began: datetime,
    ) -> None:
        """One transaction: the windows' records and their days' rollups, the watermark (and plan rates);
        rolled back on dry_run.

        The watermark never passes ``began``, when the run cut its windows: a window that ends later
        (SolusVM's current hour) is observed again from its hour by the next run."""
        now = self.clock.now()
        end = min(batch[-1][0].end, began)
        rates = [
            store.PlanRate(str(plan.id), plan.name, plan.tokens_per_hour, plan.tokens_per_month, began)
            for plan in feed.plans()
        ]
        with self.uow.writing(dry_run=dry_run) as connection:
            rollups.ensure(connection, self.zone)
            if feed.derive is not None:
                batch = [(window, feed.derive(connection, window)) for window, _ in batch]
            count = sum(len(records) for _, records in batch)
            days = rollups.Pending()  # each day's row updated once per batch, before the commit
            for window, records in batch:
                for hour_window, hour_records in _by_window(window, records):
                    result = store.ingest_window(
                        connection, report.source, hour_window, hour_records, now, rollups=days
                    )
                    report.inserted += result.inserted
                    report.raised += result.raised
            days.flush(connection)
            mark = store.watermark(connection, report.source)
            if mark is None or mark.collected_until is None or mark.collected_until < end:
                store.advance_watermark(connection, report.source, end, count, now)
            if rates:
                store.save_plan_rates(connection, rates)
        report.windows += len(batch)
        report.records += count
        report.collected_until = end

    def _failed(self, report: SourceReport, error: VendorError) -> SourceReport:
        report.error = str(error)
        report.refused_field = error.field
        log.error("usage collection failed", source=report.source, error=str(error))
        if not report.dry_run:
            with self.uow.writing() as connection:
                store.record_error(connection, report.source, str(error), self.clock.now())
        return report


def _by_window(window: Window, records: list[UsageRecord]) -> list[tuple[Window, list[UsageRecord]]]:
    """A collection window's records grouped by their own window (SolusVM's are hourly inside it)."""
    groups: dict[datetime, tuple[Window, list[UsageRecord]]] = {}
    for record in records:
        groups.setdefault(record.window.start, (record.window, []))[1].append(record)
    return list(groups.values()) or [(window, [])]


def _floor(instant: datetime, step: timedelta) -> datetime:
    """``instant`` rounded down to a multiple of ``step`` since the Unix epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    steps = (as_utc(instant) - epoch) // step
    return epoch + steps * step


def parse_sources(value: str) -> tuple[Source, ...]:
    if value == "all":
        return ("openstack", "solusvm")
    if value in ("openstack", "solusvm"):
        return (value,)  # type: ignore[return-value]
    raise InputError(f"--source {value!r}: use openstack, solusvm or all")
