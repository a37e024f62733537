"""Collecting usage into the store: windows in order, each committed with its watermark.

OpenStack is collected window by window (``openstack.window`` hours each) from the source's watermark
up to ``--until`` or now, but only windows that ended more than ``openstack.settle_delay_minutes`` ago.
A fresh store starts at the beginning of the billing month before the last window's month, so the
first invoice is complete. SolusVM is billed from runtime evidence (bridge/usage/solusvm_runtime.py).
A vendor error stops that source with one clear log line and leaves its watermark where it was; the
other source goes on.

Windows are committed in batches that double: the first window alone, then as many windows as are
already committed in this run (1, 1, 2, 4, 8 ...), never more than ``batch_records`` records. So a run
that is killed (SIGKILL runs no cleanup) keeps at least its first window and about half of what it read:
a crash loop still makes progress, while a long catch-up commits rarely enough to ingest at speed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain.instants import as_utc
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.errors import InputError, VendorError
from bridge.logs import get_logger
from bridge.solusvm.runtime_reader import SolusVMRuntimeReader
from bridge.store import usage as store
from bridge.store.unit_of_work import UnitOfWork
from bridge.usage.ports import UsageCollector
from bridge.usage.solusvm_runtime import sync_runtime

log = get_logger(__name__)


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


@dataclass
class UsageSync:
    uow: UnitOfWork
    clock: Clock
    timezone: ZoneInfo
    openstack: UsageCollector | None = None
    openstack_window: timedelta = timedelta(hours=1)
    openstack_settle: timedelta = timedelta(minutes=15)
    solusvm: SolusVMRuntimeReader | None = None
    checkpoint: Callable[[], None] = field(default=lambda: None)
    batch_records: int = 20_000

    def run(
        self,
        sources: tuple[Source, ...] = ("openstack", "solusvm"),
        *,
        until: datetime | None = None,
        start: datetime | None = None,
        dry_run: bool = False,
    ) -> list[SourceReport]:
        reports = []
        for source in sources:
            if source == "openstack":
                reports.append(self._collect_openstack(until, start, dry_run))
            else:
                reports.append(self._observe_solusvm(dry_run))
        return reports

    def _collect_openstack(
        self, until: datetime | None, start: datetime | None, dry_run: bool
    ) -> SourceReport:
        """Collect window by window, committing doubling batches (see the module docstring).

        Whatever ends the loop (a vendor error, a shutdown between windows), the windows already
        collected are written first, so the next run resumes right after them.
        """
        report = SourceReport("openstack", dry_run)
        if self.openstack is None:
            report.skipped = "openstack.enabled is false"
            return report
        windows = self.openstack_windows(until, start)
        if windows:
            report.collected_from = windows[0].start
        batch: list[tuple[Window, list[UsageRecord]]] = []
        try:
            for window in windows:
                self.checkpoint()
                try:
                    batch.append((window, self.openstack.collect(window)))
                except VendorError as error:
                    if batch:
                        self._store(report, batch, dry_run)
                        batch = []
                    return self._failed(report, error)
                if self._batch_full(batch, committed=report.windows):
                    self._store(report, batch, dry_run)
                    batch = []
        finally:
            if batch:
                self._store(report, batch, dry_run)
        return report

    def _batch_full(self, batch: list[tuple[Window, list[UsageRecord]]], *, committed: int) -> bool:
        """Commit once the batch holds as many windows as this run committed so far (at least one), or
        ``batch_records`` records."""
        return len(batch) >= max(1, committed) or sum(len(r) for _, r in batch) >= self.batch_records

    def openstack_windows(self, until: datetime | None, start: datetime | None) -> list[Window]:
        """The settled windows to collect, aligned to the window size, from the watermark or ``start``."""
        now = self.clock.now()
        limit = min(as_utc(until), now - self.openstack_settle) if until else now - self.openstack_settle
        limit = _floor(limit, self.openstack_window)
        if start is None:
            with self.uow.reading() as connection:
                mark = store.watermark(connection, "openstack")
            start = mark.collected_until if mark and mark.collected_until else None
        begin = _floor(as_utc(start) if start else self._first_start(limit), self.openstack_window)
        windows = []
        while begin + self.openstack_window <= limit:
            windows.append(Window(begin, begin + self.openstack_window))
            begin += self.openstack_window
        return windows

    def _first_start(self, limit: datetime) -> datetime:
        """Start of the billing month before ``limit``'s month, in the billing time zone."""
        local = limit.astimezone(self.timezone)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        previous = (month_start - timedelta(days=1)).replace(day=1)
        return previous.replace(tzinfo=None).replace(tzinfo=self.timezone).astimezone(UTC)

    def _observe_solusvm(self, dry_run: bool) -> SourceReport:
        """Store SolusVM's evidence and bill the runtime it supports (bridge/usage/solusvm_runtime.py)."""
        report = SourceReport("solusvm", dry_run)
        if self.solusvm is None:
            report.skipped = "solusvm.enabled is false"
            return report
        now = self.clock.now()
        try:
            done = sync_runtime(self.uow, self.solusvm, now, self._first_start(now), dry_run=dry_run)
        except VendorError as error:
            return self._failed(report, error)
        report.collected_from, report.collected_until = done.collected_from, done.until
        report.windows, report.records, report.inserted, report.raised = (
            1,
            done.records,
            done.inserted,
            done.raised,
        )
        return report

    def _store(
        self,
        report: SourceReport,
        batch: list[tuple[Window, list[UsageRecord]]],
        dry_run: bool,
        *,
        until: datetime | None = None,
        rates: list[store.PlanRate] | None = None,
    ) -> None:
        """One transaction: the windows' records, the watermark (and plan rates); rolled back on dry_run."""
        now = self.clock.now()
        end = until or batch[-1][0].end
        count = sum(len(records) for _, records in batch)
        with self.uow.writing(dry_run=dry_run) as connection:
            for window, records in batch:
                for hour_window, hour_records in _by_window(window, records):
                    result = store.ingest_window(connection, report.source, hour_window, hour_records, now)
                    report.inserted += result.inserted
                    report.raised += result.raised
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
