"""Usage ingest rate into SQLite beside the floor: a plain SQLAlchemy Core executemany of the same rows.

    .venv/bin/python bench/usage_ingest.py [--instances 1000] [--hours 300]

The ingest runs the real path, UsageSync: windows committed in doubling batches (1, 1, 2, 4 ... windows,
at most about 20,000 rows, so a crash loop still makes progress), each transaction with the
re-collection check, the rows and the watermark. The collector's answers are built before
the clock starts, so the store is what is measured. The floor inserts the same rows, already built, in
one executemany and one transaction. Target: ingest >= 70 % of the floor.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from bridge.clock import FixedClock
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.store.database import make_engine, migrate
from bridge.store.tables import usage_records
from bridge.store.unit_of_work import UnitOfWork
from bridge.usage.sync import Feed, Settled, UsageSync

START = datetime(2022, 10, 1, tzinfo=UTC)
TARGET = 0.70


@dataclass
class PreparedNova:
    """A collector port answering from records built before the clock starts: this measures the store."""

    windows: dict[datetime, list[UsageRecord]]
    source: Source = "openstack"

    @classmethod
    def generate(cls, instances: int, hours: int) -> PreparedNova:
        windows = {}
        for h in range(hours):
            window = Window(START + timedelta(hours=h), START + timedelta(hours=h + 1))
            windows[window.start] = [
                UsageRecord(
                    "openstack", f"i-{n:06d}", f"vm-{n}", f"p-{n % 97}", "m1.small", window, Decimal(1)
                )
                for n in range(instances)
            ]
        return cls(windows)

    def collect(self, window: Window) -> list[UsageRecord]:
        return self.windows[window.start]


def fresh_engine(directory: Path, name: str):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{directory / name}")
    migrate(engine)
    return engine


def measure_ingest(directory: Path, instances: int, hours: int) -> float:
    engine = fresh_engine(directory, "ingest.sqlite3")
    clock = FixedClock(START + timedelta(days=400))
    nova = PreparedNova.generate(instances, hours)
    sync = UsageSync(UnitOfWork(engine), clock, [Feed(nova, Settled(ZoneInfo("UTC")))])
    began = time.perf_counter()
    (report,) = sync.run(("openstack",), start=START, until=START + timedelta(hours=hours))
    elapsed = time.perf_counter() - began
    assert report.inserted == instances * hours, report
    engine.dispose()
    return elapsed


def measure_floor(directory: Path, instances: int, hours: int) -> float:
    engine = fresh_engine(directory, "floor.sqlite3")
    now = START + timedelta(days=400)
    rows = [
        {
            "source": "openstack",
            "window_start": START + timedelta(hours=h),
            "resource_id": f"i-{n:06d}",
            "window_end": START + timedelta(hours=h + 1),
            "resource_name": f"vm-{n}",
            "owner": f"p-{n % 97}",
            "plan": "m1.small",
            "hours": Decimal("1.00000000"),
            "tokens": None,
            "collected_at": now,
        }
        for h in range(hours)
        for n in range(instances)
    ]
    began = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(insert(usage_records), rows)
    elapsed = time.perf_counter() - began
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=300)
    args = parser.parse_args()
    rows = args.instances * args.hours
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        floor = measure_floor(directory, args.instances, args.hours)
        ingest = measure_ingest(directory, args.instances, args.hours)
    ingest_rate, floor_rate = rows / ingest, rows / floor
    ratio = ingest_rate / floor_rate
    verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
    print(f"usage rows: {rows:,} ({args.instances:,} instances x {args.hours} hourly windows), SQLite")
    print(f"floor:  {floor_rate:>10,.0f} rows/s  ({floor:.2f} s, one plain Core executemany)")
    print(f"ingest: {ingest_rate:>10,.0f} rows/s  ({ingest:.2f} s, UsageSync, doubling batches of windows)")
    print(f"ratio:  {ratio:.0%} of the floor (target >= {TARGET:.0%}): {verdict}")


if __name__ == "__main__":
    main()
