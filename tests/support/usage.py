"""Usage as the collectors store it: hourly records of one VM, stored window by window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bridge.bootstrap import App
from bridge.domain.usage import UsageRecord, Window
from bridge.store import usage as usage_store

OCT = datetime(2022, 10, 1, tzinfo=UTC)
NOV = datetime(2022, 11, 1, tzinfo=UTC)
CREDIT_START = datetime(2026, 3, 2, tzinfo=UTC)
"""Where the credit stories begin (tests/services/test_credit.py): a VM runs from here unless told."""


def hourly(
    resource: str, owner: str, plan: str, start: datetime, hours: int, *, source: str = "openstack"
) -> list[UsageRecord]:
    """One record per whole hour from ``start``; SolusVM's at 7 tokens an hour."""
    tokens = Decimal(7) if source == "solusvm" else None
    return [
        UsageRecord(
            source,  # type: ignore[arg-type]
            resource,
            f"vm-{resource}",
            owner,
            plan,
            Window(start + timedelta(hours=h), start + timedelta(hours=h + 1)),
            Decimal(1),
            tokens,
        )
        for h in range(hours)
    ]


def collect(app: App, records: list[UsageRecord], at: datetime | None = None) -> None:
    """Store usage as the collector would (grouped per window)."""
    by_window: dict[datetime, list[UsageRecord]] = {}
    for record in records:
        by_window.setdefault(record.window.start, []).append(record)
    with app.uow.writing() as tx:
        for group in by_window.values():
            usage_store.ingest_window(tx, group[0].source, group[0].window, group, at or app.clock.now())


def run_vm(
    app: App, project: str, flavor: str, hours: int, start: datetime = CREDIT_START, vm: str = "vm-1"
) -> None:
    """A VM that ran ``hours`` whole hours from ``start``, collected hour by hour."""
    with app.uow.writing() as tx:
        for hour in range(hours):
            window = Window(start + timedelta(hours=hour), start + timedelta(hours=hour + 1))
            record = UsageRecord("openstack", vm, f"name-{vm}", project, flavor, window, Decimal(1))
            usage_store.ingest_window(tx, "openstack", window, [record], window.end)
