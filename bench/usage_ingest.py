"""Usage ingest rate beside floors measured in the same run: the database's own insert, and Core's.

    .venv/bin/python bench/usage_ingest.py [--instances 1000] [--hours 300] [--url URL]

The ingest runs the real path, UsageSync: windows committed in doubling batches (1, 1, 2, 4 ... windows,
at most about 20,000 rows, so a crash loop still makes progress), each transaction with the
re-collection check, the rows, their day rollups and the watermark. The collector's answers are built
before the clock starts, so the store is what is measured. Then the same windows are collected again,
each reporting more hours (SolusVM's current hour, observed again at every poll: every row is raised).

Floors, the same rows already built, in one transaction:

- driver: one executemany of the driver (sqlite3, PyMySQL, psycopg) with the values already converted:
  what the database itself costs, indexes included; no ingest can be faster.
- Core: one SQLAlchemy Core executemany of the row dictionaries (the floor this bench used to compare
  with; the ingest now writes through the driver, bridge/store/bulk.py).

Figures are rows per CPU second of this process (resource.getrusage) and per wall second. On a shared
machine compare the CPU figures: wall time also waits for the other processes and the disk. On MariaDB
and PostgreSQL the server's own CPU is not in this process's; read the wall figures there, at low load.

``--url`` runs on a MariaDB or PostgreSQL database (migrated here) whose usage tables are empty; they are
emptied again before each measurement and at the end. Without it, fresh SQLite files in a temporary
directory. Target: ingest >= 50 % of the driver floor, in CPU (it converts every value and rolls every
row up into its day as well).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, func, insert, select

from bridge.clock import FixedClock
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.store.database import make_engine, migrate
from bridge.store.tables import usage_records, usage_rollup_state, usage_rollups, usage_watermarks
from bridge.store.unit_of_work import UnitOfWork
from bridge.usage.sync import Feed, Settled, UsageSync

START = datetime(2022, 10, 1, tzinfo=UTC)
TARGET = 0.50
USAGE_TABLES = (usage_rollups, usage_records, usage_watermarks, usage_rollup_state)
COLUMNS = ("source", "window_start", "resource_id", "window_end", "resource_name", "owner", "plan")
COLUMNS += ("hours", "tokens", "collected_at")


@dataclass(frozen=True)
class Cost:
    """What one measurement took: CPU seconds of this process and wall seconds."""

    cpu: float
    wall: float


@contextmanager
def measured(into: list[Cost]) -> Iterator[None]:
    began_cpu, began_wall = _cpu(), time.perf_counter()
    yield
    into.append(Cost(_cpu() - began_cpu, time.perf_counter() - began_wall))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class PreparedNova:
    """A collector port answering from records built before the clock starts: this measures the store."""

    windows: dict[datetime, list[UsageRecord]]
    source: Source = "openstack"

    @classmethod
    def generate(cls, instances: int, hours: int, used: Decimal) -> PreparedNova:
        windows = {}
        for h in range(hours):
            window = Window(START + timedelta(hours=h), START + timedelta(hours=h + 1))
            windows[window.start] = [
                UsageRecord("openstack", f"i-{n:06d}", f"vm-{n}", f"p-{n % 97}", "m1.small", window, used)
                for n in range(instances)
            ]
        return cls(windows)

    def collect(self, window: Window) -> list[UsageRecord]:
        return self.windows[window.start]


class Stores:
    """A fresh, migrated store per measurement: a new SQLite file, or the ``--url`` database emptied."""

    def __init__(self, directory: Path, url: str | None) -> None:
        self.directory, self.url, self.made = directory, url, 0
        if url is not None:
            engine = make_engine(url)
            migrate(engine)
            with engine.connect() as connection:
                held = [table.name for table in USAGE_TABLES if _count(connection, table)]
            engine.dispose()
            if held:
                raise SystemExit(f"--url: {', '.join(held)} hold rows; name an empty database for the bench")

    def fresh(self) -> Engine:
        if self.url is None:
            self.made += 1
            engine = make_engine(f"sqlite:///{self.directory / f'store{self.made}.sqlite3'}")
            migrate(engine)
            return engine
        engine = make_engine(self.url)
        self.empty(engine)
        return engine

    def empty(self, engine: Engine) -> None:
        with engine.begin() as connection:
            for table in USAGE_TABLES:
                connection.execute(delete(table))


def _count(connection, table) -> int:  # type: ignore[no-untyped-def]
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def measure_ingest(stores: Stores, instances: int, hours: int, costs: list[Cost]) -> None:
    """The fresh windows, then the same windows again with more hours each: two costs."""
    engine = stores.fresh()
    clock = FixedClock(START + timedelta(days=400))
    until = START + timedelta(hours=hours)
    for used, expected in ((Decimal(1), "inserted"), (Decimal(2), "raised")):
        nova = PreparedNova.generate(instances, hours, used)
        sync = UsageSync(UnitOfWork(engine), clock, [Feed(nova, Settled(ZoneInfo("UTC")))])
        with measured(costs):
            (report,) = sync.run(("openstack",), start=START, until=until)
        assert getattr(report, expected) == instances * hours, report
    stores.empty(engine)
    engine.dispose()


def floor_rows(instances: int, hours: int) -> list[dict[str, object]]:
    now = START + timedelta(days=400)
    return [
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


def measure_core(stores: Stores, rows: list[dict[str, object]], costs: list[Cost]) -> None:
    engine = stores.fresh()
    with measured(costs), engine.begin() as connection:
        connection.execute(insert(usage_records), rows)
    stores.empty(engine)
    engine.dispose()


def measure_driver(stores: Stores, rows: list[dict[str, object]], costs: list[Cost]) -> None:
    engine = stores.fresh()
    dialect = engine.dialect
    processors: list[Callable[[object], object] | None] = [
        usage_records.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in COLUMNS
    ]
    converted = [
        tuple(
            value if process is None else process(value)
            for process, value in zip(processors, values, strict=True)
        )
        for values in ([row[name] for name in COLUMNS] for row in rows)
    ]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO usage_records ({', '.join(quote(name) for name in COLUMNS)}) "
        f"VALUES ({', '.join(mark for _ in COLUMNS)})"
    )
    with measured(costs), engine.begin() as connection:
        connection.exec_driver_sql(sql, converted)
    stores.empty(engine)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=300)
    parser.add_argument("--url", help="an empty MariaDB or PostgreSQL database (default: SQLite files)")
    args = parser.parse_args()
    rows = args.instances * args.hours
    costs: list[Cost] = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = Stores(Path(tmp), args.url)
        backend = make_engine(args.url).dialect.name if args.url else "sqlite"
        prepared = floor_rows(args.instances, args.hours)
        measure_driver(stores, prepared, costs)
        measure_core(stores, prepared, costs)
        del prepared
        measure_ingest(stores, args.instances, args.hours, costs)
    driver, core, ingest, again = costs
    load = " ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(f"usage rows: {rows:,} ({args.instances:,} instances x {args.hours} hourly windows), {backend}")
    print(f"load:       {load} (1, 5, 15 min)")
    print(f"{'':34}{'rows/CPU s':>12}{'rows/s':>12}")
    for name, cost in (
        ("floor, driver executemany", driver),
        ("floor, Core executemany", core),
        ("ingest, UsageSync (new windows)", ingest),
        ("re-collection, every row raised", again),
    ):
        print(f"{name:34}{rows / cost.cpu:>12,.0f}{rows / cost.wall:>12,.0f}")
    ratio = driver.cpu / ingest.cpu
    verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
    print(f"ingest:     {ratio:.0%} of the driver floor in CPU (target >= {TARGET:.0%}): {verdict}")


if __name__ == "__main__":
    sys.exit(main())
