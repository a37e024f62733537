"""What the operator asks "is it working?": per job last run, age and next run; schema state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apscheduler.triggers.cron import CronTrigger
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
