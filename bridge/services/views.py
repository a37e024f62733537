"""Read models: what the operator's commands and the status endpoint show, queried in one place.

The CLI prints what these return and the daemon serves them (``status``); none of them writes. Each
reads in one :meth:`~bridge.store.unit_of_work.UnitOfWork.reading` transaction, so what it shows is one
consistent moment of the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bridge import __version__
from bridge.clock import Clock
from bridge.domain.clients import OWNER_LINK_KIND, Client
from bridge.domain.usage import SOURCES
from bridge.errors import BridgeError
from bridge.services.outbox import backlog_summary
from bridge.settings import ScheduleSettings
from bridge.store import credit as credit_store
from bridge.store import invoices as invoice_store
from bridge.store import jobs as store
from bridge.store import outbox as outbox_store
from bridge.store import usage as usage_store
from bridge.store.credit import LedgerEntry
from bridge.store.database import schema_state
from bridge.store.enrollment import Enrollment
from bridge.store.invoices import StoredInvoice
from bridge.store.outbox import OutboxRow
from bridge.store.plans import StoredSubscription
from bridge.store.unit_of_work import Tx, UnitOfWork
from bridge.store.usage import UnlinkedOwner
from bridge.store.whmcs import Agreement
from bridge.usage.solusvm_runtime import RuntimeSplit, runtime_split

__all__ = [  # with the store's records the services return, which the CLI prints
    "Agreement",
    "Enrollment",
    "JobStatus",
    "LedgerEntry",
    "OutboxRow",
    "ResourceUsage",
    "RuntimeSplit",
    "StoredInvoice",
    "StoredSubscription",
    "UnlinkedOwner",
    "Views",
]


@dataclass(frozen=True)
class ResourceUsage:
    """One resource's usage over a span: its hours (and SolusVM tokens) summed, the plans it ran on."""

    source: str
    resource_id: str
    resource_name: str
    """As last reported in the span."""
    plans: tuple[str, ...]
    """Sorted."""
    hours: Decimal
    tokens: Decimal | None
    observed_hours: int | None = None
    """SolusVM: of the span's billed (started) hours, those a poll, a timed event or the creation saw."""
    inferred_hours: int | None = None
    """SolusVM: the rest, carried between observations (bridge/domain/runtime.py)."""


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


class Views:
    """The queries behind ``usage show``, ``usage unlinked``, ``credit show``'s ledger, ``invoice list`` and
    ``status`` (and the daemon's ``GET /status``).

    ``database_url`` is shown as given: pass it masked. ``schedule`` names each job's cron expression,
    read in ``zone``; ``alert_after_attempts`` is when a pushed row counts as failing."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        *,
        database_url: str,
        schedule: ScheduleSettings,
        zone: ZoneInfo,
        alert_after_attempts: int,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._database_url = database_url
        self._schedule = schedule
        self._zone = zone
        self._alert_after = alert_after_attempts

    def client_usage(self, client: Client, start: datetime, end: datetime) -> list[ResourceUsage]:
        """Per resource of the client's linked accounts, windows starting in [start, end), in the order
        the resources first appear."""
        owners = [
            (source, owner) for source, kind in OWNER_LINK_KIND.items() for owner in client.external_ids(kind)
        ]
        with self._uow.reading() as tx:
            rows = usage_store.usage_of_owners(tx, owners, start, end)
            solusvm = {row.resource_id for row in rows if row.source == "solusvm"}
            splits = _runtime_splits(tx, [(resource_id, start, end) for resource_id in sorted(solusvm)])
        found: dict[tuple[str, str], ResourceUsage] = {}
        for row in rows:
            seen = found.get((row.source, row.resource_id))
            tokens = row.tokens if seen is None else _add(seen.tokens, row.tokens)
            found[(row.source, row.resource_id)] = ResourceUsage(
                source=row.source,
                resource_id=row.resource_id,
                resource_name=row.resource_name,
                plans=tuple(sorted({*(seen.plans if seen else ()), row.plan})),
                hours=(seen.hours if seen else Decimal(0)) + row.hours,
                tokens=tokens,
            )
        return [_with_split(usage, splits.get((usage.resource_id, start))) for usage in found.values()]

    def solusvm_runtime(
        self, spans: Iterable[tuple[str, datetime, datetime]]
    ) -> dict[tuple[str, datetime], RuntimeSplit]:
        """Per (SolusVM server id, span start), the span's runtime split into observed and inferred hours,
        from the stored evidence; ids that are no SolusVM server with evidence are left out."""
        with self._uow.reading() as tx:
            return _runtime_splits(tx, spans)

    def unlinked_owners(self) -> list[UnlinkedOwner]:
        """Owners with usage but no client: kept, and billable once linked."""
        with self._uow.reading() as tx:
            return usage_store.unlinked_owners(tx)

    def ledger(self, client_id: int) -> list[LedgerEntry]:
        """The client's newest ledger entries, newest first."""
        with self._uow.reading() as tx:
            return credit_store.entries(tx, client_id)

    def invoices(self, *, client_id: int | None = None, status: str | None = None) -> list[StoredInvoice]:
        """Invoices, newest first, of one client or status when given."""
        with self._uow.reading() as tx:
            return invoice_store.list_invoices(tx, client_id=client_id, status=status)

    def status(
        self, jobs: list[str], *, started_at: datetime | None = None, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The JSON document behind ``billing-bridge status --json`` and ``GET /status``; no secrets in it."""
        now = self._clock.now()
        report: dict[str, Any] = {
            "version": __version__,
            "now": now.isoformat(),
            "database": self._database(),
        }
        if started_at is not None:
            report["started_at"] = started_at.isoformat()
            report["uptime_seconds"] = round((now - started_at).total_seconds(), 3)
        at_head = report["database"].get("at_head")  # job runs, usage and the outbox need the schema
        report["jobs"] = [_job_json(status) for status in self.job_statuses(jobs, now)] if at_head else []
        report["usage"] = self.usage_sources(now) if at_head else {}
        if at_head:
            with self._uow.reading() as tx:
                backlog = outbox_store.backlog(tx, self._alert_after)
            report["outbox"] = backlog_summary(backlog, now)
        report.update(extra or {})
        return report

    def job_statuses(self, jobs: list[str], now: datetime) -> list[JobStatus]:
        """Each job's schedule, last run and next run."""
        statuses = []
        with self._uow.reading() as tx:
            for name in jobs:
                last = store.last_run(tx, name)
                statuses.append(
                    JobStatus(
                        name=name,
                        schedule=self._schedule.expression(name),
                        last_status=last.status if last else None,
                        last_started_at=last.started_at if last else None,
                        last_finished_at=last.finished_at if last else None,
                        last_error=last.error if last else None,
                        age_seconds=(now - last.started_at).total_seconds() if last else None,
                        next_run=self._schedule.next_run(name, now, self._zone),
                    )
                )
        return statuses

    def usage_sources(self, now: datetime) -> dict[str, dict[str, Any]]:
        """Per usage source: watermark, lag behind now, records collected, last error."""
        found: dict[str, dict[str, Any]] = {}
        with self._uow.reading() as tx:
            for source in SOURCES:
                mark = usage_store.watermark(tx, source)
                until = mark.collected_until if mark else None
                found[source] = {
                    "watermark": until.isoformat() if until else None,
                    "lag_seconds": round((now - until).total_seconds(), 3) if until else None,
                    "records_collected": mark.records_collected if mark else 0,
                    "last_error": mark.last_error if mark else None,
                    "last_error_at": mark.last_error_at.isoformat() if mark and mark.last_error_at else None,
                }
        return found

    def _database(self) -> dict[str, Any]:
        try:
            state = schema_state(self._uow.engine)
        except BridgeError as error:
            return {"url": self._database_url, "ok": False, "error": str(error)}
        return {
            "url": self._database_url,
            "ok": True,
            "schema": state.current,
            "schema_head": state.head,
            "at_head": state.at_head,
        }


def _runtime_splits(
    tx: Tx, spans: Iterable[tuple[str, datetime, datetime]]
) -> dict[tuple[str, datetime], RuntimeSplit]:
    wanted = [(resource_id, start, end) for resource_id, start, end in spans if resource_id.isdigit()]
    found: dict[tuple[str, datetime], RuntimeSplit] = {}
    for (start, end), ids in _by_span(wanted).items():
        for server_id, split in runtime_split(tx, ids, start, end).items():
            found[(str(server_id), start)] = split
    return found


def _by_span(spans: Iterable[tuple[str, datetime, datetime]]) -> dict[tuple[datetime, datetime], list[int]]:
    grouped: dict[tuple[datetime, datetime], list[int]] = {}
    for resource_id, start, end in spans:
        grouped.setdefault((start, end), []).append(int(resource_id))
    return grouped


def _with_split(usage: ResourceUsage, split: RuntimeSplit | None) -> ResourceUsage:
    """``usage`` with the observed / inferred split of a SolusVM server's billed hours, when known."""
    if usage.source != "solusvm" or split is None:
        return usage
    return replace(usage, observed_hours=split.observed_hours, inferred_hours=split.inferred_hours)


def _add(total: Decimal | None, more: Decimal | None) -> Decimal | None:
    """Tokens so far plus a record's (None: the resource has no tokens so far, or this record has none)."""
    if more is None:
        return total
    return (total or Decimal(0)) + more


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
