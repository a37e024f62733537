"""What the operator asks "is it working?": per job last run, age and next run; schema state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from bridge import __version__
from bridge.clock import Clock
from bridge.domain.usage import SOURCES
from bridge.errors import BridgeError
from bridge.services.outbox import backlog_summary
from bridge.settings import JOB_OFF, Settings
from bridge.store import jobs as store
from bridge.store import outbox as outbox_store
from bridge.store import usage as usage_store
from bridge.store.database import schema_state


@dataclass(frozen=True)
class JobStatus:
    name: str
    schedule: str
    last_status: str | None
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_error: str | None
    age_seconds: float | None
    next_run: datetime | None


def next_run(settings: Settings, job: str, now: datetime) -> datetime | None:
    expression = getattr(settings.schedule, job, JOB_OFF)
    if expression == JOB_OFF:
        return None
    trigger = CronTrigger.from_crontab(expression, timezone=settings.billing.zone())
    fire: datetime | None = trigger.get_next_fire_time(None, now)
    return fire


def job_statuses(engine: Engine, clock: Clock, settings: Settings, jobs: list[str]) -> list[JobStatus]:
    now = clock.now()
    statuses = []
    with engine.connect() as connection:
        for name in jobs:
            last = store.last_run(connection, name)
            statuses.append(
                JobStatus(
                    name=name,
                    schedule=getattr(settings.schedule, name, JOB_OFF),
                    last_status=last.status if last else None,
                    last_started_at=last.started_at if last else None,
                    last_finished_at=last.finished_at if last else None,
                    last_error=last.error if last else None,
                    age_seconds=(now - last.started_at).total_seconds() if last else None,
                    next_run=next_run(settings, name, now),
                )
            )
    return statuses


def status_report(
    engine: Engine,
    clock: Clock,
    settings: Settings,
    jobs: list[str],
    *,
    started_at: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON document behind ``billing-bridge status --json`` and ``GET /status``; no secrets in it."""
    now = clock.now()
    report: dict[str, Any] = {
        "version": __version__,
        "now": now.isoformat(),
        "database": _database(engine, settings),
    }
    if started_at is not None:
        report["started_at"] = started_at.isoformat()
        report["uptime_seconds"] = round((now - started_at).total_seconds(), 3)
    at_head = report["database"].get("at_head")  # job runs, usage and the outbox need the schema
    report["jobs"] = (
        [_job_json(status) for status in job_statuses(engine, clock, settings, jobs)] if at_head else []
    )
    report["usage"] = usage_sources(engine, now) if at_head else {}
    if at_head:
        with engine.connect() as connection:
            backlog = outbox_store.backlog(connection, settings.whmcs.alert_after_attempts)
        report["outbox"] = backlog_summary(backlog, now)
    report.update(extra or {})
    return report


def usage_sources(engine: Engine, now: datetime) -> dict[str, dict[str, Any]]:
    """Per usage source: watermark, lag behind now, records collected, last error."""
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        for source in SOURCES:
            mark = usage_store.watermark(connection, source)
            until = mark.collected_until if mark else None
            found[source] = {
                "watermark": until.isoformat() if until else None,
                "lag_seconds": round((now - until).total_seconds(), 3) if until else None,
                "records_collected": mark.records_collected if mark else 0,
                "last_error": mark.last_error if mark else None,
                "last_error_at": mark.last_error_at.isoformat() if mark and mark.last_error_at else None,
            }
    return found


def _database(engine: Engine, settings: Settings) -> dict[str, Any]:
    try:
        state = schema_state(engine)
    except BridgeError as error:
        return {"url": settings.masked_database_url(), "ok": False, "error": str(error)}
    return {
        "url": settings.masked_database_url(),
        "ok": True,
        "schema": state.current,
        "schema_head": state.head,
        "at_head": state.at_head,
    }


def _job_json(status: JobStatus) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "name": status.name,
        "schedule": status.schedule,
        "last_run": {
            "status": status.last_status,
            "started_at": iso(status.last_started_at),
            "finished_at": iso(status.last_finished_at),
            "error": status.last_error,
        },
        "age_seconds": None if status.age_seconds is None else round(status.age_seconds, 3),
        "next_run": iso(status.next_run),
    }


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
