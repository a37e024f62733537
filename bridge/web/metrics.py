"""The Prometheus gauges the store holds: job runs, usage watermarks and the push backlog, read at scrape
time so they survive restarts and span daemons (registered by the composition root)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from bridge.clock import Clock
from bridge.domain.usage import SOURCES
from bridge.store import jobs as store
from bridge.store import outbox as outbox_store
from bridge.store import usage as usage_store


class StoreCollector(Collector):
    """Prometheus gauges read from the store at scrape time, so they survive restarts and span daemons."""

    def __init__(self, engine: Engine, clock: Clock, jobs: Callable[[], list[str]]) -> None:
        self._engine = engine
        self._clock = clock
        self._jobs = jobs

    def collect(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            "billing_bridge_job_last_success_timestamp_seconds", "When the job last succeeded", labels=["job"]
        )
        duration = GaugeMetricFamily(
            "billing_bridge_job_last_duration_seconds",
            "How long the job's last finished run took",
            labels=["job"],
        )
        with self._engine.connect() as connection:
            for name in self._jobs():
                last_ok = store.last_run(connection, name, "succeeded")
                if last_ok and last_ok.finished_at:
                    success.add_metric([name], last_ok.finished_at.timestamp())
                last = store.last_run(connection, name)
                if last and last.duration_seconds is not None:
                    duration.add_metric([name], last.duration_seconds)
        yield success
        yield duration
        yield from self._usage()
        yield from self._outbox()

    def _usage(self) -> Iterator[Metric]:
        names = {
            "watermark": (
                "billing_bridge_usage_watermark_timestamp_seconds",
                "End of the last collected window",
            ),
            "lag": ("billing_bridge_usage_lag_seconds", "How far collection is behind now"),
            "records": ("billing_bridge_usage_records_collected", "Usage records collected by the source"),
            "error": ("billing_bridge_usage_last_collection_failed", "1 when the last collection failed"),
        }
        families = {
            key: GaugeMetricFamily(name, text, labels=["source"]) for key, (name, text) in names.items()
        }
        now = self._clock.now()
        with self._engine.connect() as connection:
            for source in SOURCES:
                mark = usage_store.watermark(connection, source)
                if mark is None:
                    continue
                if mark.collected_until:
                    families["watermark"].add_metric([source], mark.collected_until.timestamp())
                    families["lag"].add_metric([source], (now - mark.collected_until).total_seconds())
                families["records"].add_metric([source], mark.records_collected)
                families["error"].add_metric([source], 1 if mark.last_error else 0)
        yield from families.values()

    def _outbox(self) -> Iterator[Metric]:
        """The push backlog: rows by state, how long the oldest unsent row has waited, the most tries."""
        rows = GaugeMetricFamily("billing_bridge_outbox_rows", "Outbox rows by state", labels=["state"])
        oldest = GaugeMetricFamily(
            "billing_bridge_outbox_oldest_unsent_age_seconds",
            "Age of the oldest pending or in-doubt outbox row (0 when none)",
        )
        attempts = GaugeMetricFamily(
            "billing_bridge_outbox_max_attempts",
            "Most tries of any pending or in-doubt outbox row (alert on a row that keeps failing)",
        )
        with self._engine.connect() as connection:
            backlog = outbox_store.backlog(connection, alert_after=1)
        for state, count in backlog.by_state.items():
            rows.add_metric([state], count)
        unsent = backlog.oldest_unsent_at
        oldest.add_metric([], (self._clock.now() - unsent).total_seconds() if unsent else 0.0)
        attempts.add_metric([], backlog.max_attempts)
        yield from (rows, oldest, attempts)
