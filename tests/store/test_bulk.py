"""Rows the ingest writes through the driver (bridge/store/bulk.py) are stored exactly as SQLAlchemy Core
stores the same values, on every database: the same text, numbers and instants down to the microsecond,
so every query (SQLite compares instants and sums hours as text) reads them as it reads any other row."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, insert, select

from bridge.domain.usage import UsageRecord, Window
from bridge.store import usage as store
from bridge.store.tables import usage_records, usage_rollups
from bridge.store.unit_of_work import UnitOfWork

START = datetime(2022, 10, 1, 7, 0, 0, 250_001, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def stored_as_core_stores_it(tx: Connection, table: Table, key: str, written: str, copy: str) -> None:
    """Read the row ``key == written`` through its types, insert it again through Core as ``copy``, and
    compare what the database holds of both, as the driver returns it (no type conversion)."""
    typed = tx.execute(select(table).where(table.c[key] == written)).one()._asdict()
    values: dict[str, Any] = {name: value for name, value in typed.items() if name != "id"}
    tx.execute(insert(table).values({**values, key: copy}))
    names = [name for name in values if name != key]
    quote, mark = tx.dialect.identifier_preparer.quote, "?" if tx.dialect.paramstyle == "qmark" else "%s"
    raw = tx.exec_driver_sql(
        f"SELECT {', '.join(quote(name) for name in names)} FROM {table.name} "
        f"WHERE {quote(key)} IN ({mark}, {mark}) ORDER BY {quote(key)}",
        (copy, written),
    ).all()
    assert len(raw) == 2
    assert raw[0] == raw[1]


def test_usage_rows_and_their_days_are_stored_as_core_stores_them(uow: UnitOfWork) -> None:
    window = Window(START, START + timedelta(minutes=59, microseconds=999_998))
    first = UsageRecord("solusvm", "s-1", "web ü 1", "u-1", "7", window, Decimal("0.123456789"), Decimal(2))
    later = UsageRecord("solusvm", "s-1", "web ü 2", "u-1", "7", window, Decimal("0.5"), Decimal("3.25"))
    collected = datetime(2022, 10, 1, 9, 30, 0, 1, tzinfo=BERLIN)  # aware, not UTC: stored in UTC
    unused = replace(first, resource_id="s-0", hours=Decimal(0))
    with uow.writing() as tx:
        store.ingest_window(tx, "solusvm", window, [first, unused], collected)
        store.ingest_window(tx, "solusvm", window, [later], collected + timedelta(minutes=5))
        for written in ("s-0", "s-1"):
            stored_as_core_stores_it(tx, usage_records, "resource_id", written, f"copy-{written}")
            stored_as_core_stores_it(tx, usage_rollups, "resource_id", written, f"copy-{written}")
    with uow.reading() as tx:
        row = tx.execute(select(usage_records).where(usage_records.c.resource_id == "s-1")).one()
    assert (row.resource_name, row.hours, row.tokens) == ("web ü 2", Decimal("0.5"), Decimal("3.25"))
    assert row.collected_at == (collected + timedelta(minutes=5)).astimezone(UTC)
