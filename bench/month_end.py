"""Month end from sync's own layout: a month of usage written through the ingest path, then invoiced.

    .venv/bin/python bench/month_end.py [--clients 100000] [--vms-per-client 3] [--window-hours 1]
                                        [--taxes ROUNDS] [--setup-only] [--keep DIR]

The usage is October 2022 for every VM (three per client), written window by window through
``bridge.store.usage.ingest_window``, the function the sync commits its windows with: the hourly rows and,
in the same transaction, their day rollups (bridge/store/usage_rollups.py). A transaction holds whole
days' windows, up to a million rows (at least one window), and the records are built without the vendor,
so the set-up is fast, but the tables and rollups are the ones a sync fills. Month end (``invoice --date
2022-11-01``: the invoicing service with the CLI's streamed ``--json`` report, to /dev/null) then runs in
a child process, so its memory is measured alone.

``--setup-only`` stops after the set-up and prints its figures: wall and CPU seconds, rows per second and
per CPU second, and the rate of the first and the last transaction (each transaction's progress goes to
stderr as it commits). ``--keep DIR`` writes the database (and its settings.toml) to DIR, new or empty,
and leaves it there; without it the database is discarded. ``--reuse DIR`` runs the month end on a store
``--setup-only --keep DIR`` wrote before (not yet invoiced: a month end is run once on it), so a set-up of
hours (300,000 clients) and the measured run can be made at different times.

Printed: wall time, invoices/s, the month end's CPU time (what it costs whatever else runs on the
machine), peak RSS, RSS after the first and the last chunk of clients (flat when the run keeps nothing
per client), the ratio of invoices/s to a plain Decimal loop invoicing the same month
in the same run (sum each VM's hours, multiply by the price, round each line, add up the client), and
django-silver's measured 50 invoices/s. Also the pure pricing rate beside the plain loop.

``--window-hours 1`` is the hourly layout (720 rows and 31 day rows per VM). Month end reads only the day
rows, whose number does not depend on the window length, so ``--window-hours 24`` writes the same day
rows with 24 times fewer hourly ones: use it where the hourly month does not fit the disk or the time
(100,000 clients: 223 million hourly rows).

Targets (issue 17, SQLite, 2 cores): 100,000 clients / 300,000 VMs <= 300 s and 300,000 clients / 900,000
VMs <= 15 min (3 ms an invoice; never under 300 s), both <= 300 MB peak RSS; RSS after the last chunk
within 10 % of after the first.

--taxes ROUNDS (issue 16) also runs the month end on fresh copies of the same store with [taxes] off and
on (every client taxed at 19 %: tax lines, subtotal and tax stored per invoice), interleaved ROUNDS times
in the same run, and prints how much more CPU time the best run with taxes takes (CPU, not wall time: on
a shared machine one configuration's wall time varies by tens of percent). Target: <= 10 %.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

OCT = datetime(2022, 10, 1, tzinfo=UTC)
NOV = datetime(2022, 11, 1, tzinfo=UTC)
PRICE = Decimal("0.0125")
TARGET_SECONDS, TARGET_SECONDS_PER_INVOICE = 300, 0.003  # 100,000 clients: 300 s; 300,000: 900 s
TARGET_RSS_MB, TARGET_RSS_GROWTH = 300, 0.10
DJANGO_SILVER_INVOICES_PER_SECOND = 50  # as measured for issue 17 (django-silver 0.11.1, SQLite)
ROWS_PER_TRANSACTION = 1_000_000  # set-up: hourly rows per transaction, at most (whole windows)
SETUP_CACHE_MB = 512  # set-up: SQLite's page cache
TARGET_TAX_SLOWDOWN = 0.10
TAXES = '[taxes]\nenabled = true\nhome_country = "DE"\n[taxes.rules.DE]\nname = "VAT"\nrate = "19"\n'


def settings_file(directory: Path, *, taxes: bool = False) -> Path:
    path = directory / "settings.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{directory / "bench.sqlite3"}"\n'
        '[logging]\nformat = "json"\nlevel = "warning"\n'
        '[pricing.flavors]\n"m1.small" = 0.0125\n' + (TAXES if taxes else "")
    )
    return path


def taxes_slowdown(directory: Path, rounds: int) -> tuple[float, float]:
    """(best CPU seconds off, best CPU seconds on) of the month end on fresh copies of the store in
    ``directory``, off and on interleaved ``rounds`` times."""
    best = {False: float("inf"), True: float("inf")}
    for round_ in range(rounds):
        for taxes in (False, True):
            copy = directory / f"{'on' if taxes else 'off'}-{round_}"
            copy.mkdir()
            shutil.copyfile(directory / "bench.sqlite3", copy / "bench.sqlite3")
            settings_file(copy, taxes=taxes)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            month_end_child(copy)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            best[taxes] = min(best[taxes], cpu)
    return best[False], best[True]


@dataclass(frozen=True)
class SetUp:
    """What writing the month took: hourly rows, wall and CPU seconds, and the rate of the first and the
    last transaction (rows per wall second: the store's growth shows as the difference)."""

    rows: int
    seconds: float
    cpu: float
    first_rate: float
    last_rate: float


def populate(directory: Path, clients: int, vms: int, window_hours: int) -> SetUp:
    """Clients and their project links (plain sqlite3), then the month through the ingest path."""
    from bridge.settings import load_settings
    from bridge.store.database import make_engine, migrate

    began, began_cpu = time.perf_counter(), _cpu()
    settings = load_settings(settings_file(directory))
    engine = make_engine(settings.database_url())
    migrate(engine)
    engine.dispose()
    connection = sqlite3.connect(directory / "bench.sqlite3")
    created = "2022-09-01 00:00:00.000000"
    connection.executemany(
        "INSERT INTO clients (id, email, name, currency, configuration, created_at)"
        " VALUES (?, ?, ?, 'USD', 'default', ?)",
        ((n, f"client{n}@example.com", f"Client {n}", created) for n in range(1, clients + 1)),
    )
    connection.executemany(
        "INSERT INTO client_links (client_id, kind, external_id, created_at) VALUES (?, 'openstack_project', ?, ?)",
        ((n, f"p-{n}", created) for n in range(1, clients + 1)),
    )
    connection.commit()
    connection.close()
    rows, rates = ingest_month(settings, clients, vms, window_hours)
    return SetUp(rows, time.perf_counter() - began, _cpu() - began_cpu, rates[0], rates[-1])


def ingest_month(settings: object, clients: int, vms: int, window_hours: int) -> tuple[int, list[float]]:
    """October, window by window, through ``ingest_window`` (hourly rows + day rollups), as the sync
    commits them; returns the hourly rows written and each transaction's rate (rows per wall second).

    A transaction holds whole days' windows (a day's rollup row is then written once), as many as keep
    it under :data:`ROWS_PER_TRANSACTION` rows, at least one window (24 h windows: a window each)."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import event

    from bridge.domain.usage import UsageRecord, Window
    from bridge.store import usage as usage_store
    from bridge.store import usage_rollups
    from bridge.store.database import make_engine
    from bridge.store.unit_of_work import UnitOfWork

    engine = make_engine(settings.database_url())  # type: ignore[attr-defined]

    @event.listens_for(engine, "connect")
    def _fast(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Set-up only (the month end runs as shipped): no waiting for the disk, and a page cache that
        # holds the indexes a window's rows go into.
        dbapi_connection.execute("PRAGMA synchronous=OFF")
        dbapi_connection.execute(f"PRAGMA cache_size=-{SETUP_CACHE_MB * 1024}")

    uow = UnitOfWork(engine)
    resources = [
        (f"vm-{client}-{vm}", f"p-{client}") for client in range(1, clients + 1) for vm in range(vms)
    ]
    hours = Decimal(window_hours).quantize(Decimal("0.00000001"))
    windows = []
    start = OCT
    while start < NOV:
        windows.append(Window(start, min(start + timedelta(hours=window_hours), NOV)))
        start = windows[-1].end
    per_transaction = _windows_per_transaction(24 // window_hours, len(resources))
    collected = NOV + timedelta(hours=1)
    written, rates = 0, []
    for first in range(0, len(windows), per_transaction):
        began, before = time.perf_counter(), written
        with uow.writing() as tx:
            usage_rollups.ensure(tx, ZoneInfo("UTC"))
            days = usage_rollups.Pending()  # as in the sync's batch: each day's row written once
            for window in windows[first : first + per_transaction]:
                records = [
                    UsageRecord("openstack", vm, vm, owner, "m1.small", window, hours)
                    for vm, owner in resources
                ]
                result = usage_store.ingest_window(tx, "openstack", window, records, collected, rollups=days)
                written += result.inserted
            days.flush(tx)
        rates.append((written - before) / (time.perf_counter() - began))
        print(
            f"set-up: {min(first + per_transaction, len(windows))}/{len(windows)} windows, {written:,} rows, "
            f"{rates[-1]:,.0f} rows/s, load {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
            flush=True,
        )
    engine.dispose()
    return written, rates


def _windows_per_transaction(per_day: int, rows_per_window: int) -> int:
    """The most windows that divide a day evenly and stay under ROWS_PER_TRANSACTION rows (at least 1)."""
    count = max(1, min(per_day, ROWS_PER_TRANSACTION // max(1, rows_per_window)))
    while per_day % count:
        count -= 1
    return count


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_month_end(directory: Path) -> None:
    """The child process: invoice October 2022 for every client, then print its figures."""
    from bridge.bootstrap import build_app
    from bridge.cli.invoices import _JsonReport
    from bridge.clock import FixedClock
    from bridge.logs import configure
    from bridge.settings import load_settings

    configure("warning", "json")
    app = build_app(load_settings(directory / "settings.toml"), clock=FixedClock(NOV + timedelta(hours=2)))
    rss: list[float] = []

    def chunk_done(done: int, total: int) -> None:
        if done:
            rss.append(_current_rss_mb())

    began, cpu_began = time.perf_counter(), time.process_time()
    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            with _JsonReport(app, app.zone) as report:
                run = app.invoicing.run(date(2022, 11, 1), progress=chunk_done, listener=report)
                report.print(run)
        finally:
            sys.stdout = stdout
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    peak_mb = _status_mb("VmHWM")  # not ru_maxrss: Linux carries the forking parent's peak across exec
    assert not run.counts.held, run.counts
    print(f"{elapsed:.3f} {run.counts.issued} {peak_mb:.1f} {rss[0]:.1f} {rss[-1]:.1f} {cpu:.3f}")


def _current_rss_mb() -> float:
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (given there in kB)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def plain_loop(clients: int, vms: int, days: int) -> float:
    """Invoices per second of a plain Decimal loop over the same month in memory: per client, each VM's
    daily hours summed, times the price, rounded to the cent, the lines added up."""
    cent = Decimal("0.01")
    day = Decimal(24)
    began = time.perf_counter()
    for _client in range(clients):
        total = Decimal(0)
        for _vm in range(vms):
            hours = sum((day for _ in range(days)), Decimal(0))
            total += (min(hours, Decimal("666.666667")) * PRICE).quantize(cent, rounding=ROUND_HALF_UP)
    return clients / (time.perf_counter() - began)


def pricing_rates(resources: int, records_per_resource: int) -> tuple[float, float]:
    """Lines per second: the domain's price_usage, and a plain Decimal loop over the same records."""
    from bridge.domain.cycles import calendar_cycle_containing
    from bridge.domain.pricing import PriceBook, price_usage
    from bridge.domain.usage import UsageRecord, Window

    cycle = calendar_cycle_containing(OCT, "UTC")
    book = PriceBook("USD", {"m1.small": PRICE})
    step = timedelta(hours=744 // records_per_resource)
    records = [
        UsageRecord(
            "openstack",
            f"vm-{n}",
            f"vm-{n}",
            "p",
            "m1.small",
            Window(OCT + i * step, OCT + (i + 1) * step),
            Decimal(step.total_seconds() / 3600).quantize(Decimal("0.000001")),
        )
        for n in range(resources)
        for i in range(records_per_resource)
    ]
    began = time.perf_counter()
    lines = price_usage(records, cycle, book).lines
    domain = len(lines) / (time.perf_counter() - began)
    cent = Decimal("0.01")
    began = time.perf_counter()
    totals: dict[str, Decimal] = {}
    for record in records:
        totals[record.resource_id] = totals.get(record.resource_id, Decimal(0)) + record.hours
    plain_lines = [(hours * PRICE).quantize(cent, rounding=ROUND_HALF_UP) for hours in totals.values()]
    plain = len(plain_lines) / (time.perf_counter() - began)
    return domain, plain


@contextmanager
def store_directory(keep: Path | None) -> Iterator[Path]:
    """Where the bench's database is written: ``keep`` (new or empty; left in place), else a temporary
    directory removed at the end."""
    if keep is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
        return
    if keep.exists() and any(keep.iterdir()):
        raise SystemExit(f"--keep {keep}: the directory holds files; name a new or empty one")
    keep.mkdir(parents=True, exist_ok=True)
    yield keep


def print_setup(args: argparse.Namespace, setup: SetUp, size_mb: float, kept: Path | None) -> None:
    """The set-up figures (``--setup-only``)."""
    vms = args.clients * args.vms_per_client
    load = " ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(f"load:       {load} (1, 5, 15 min)")
    print(
        f"set-up:     {args.clients:,} clients, {vms:,} VMs, {setup.rows:,} rows of {args.window_hours} h and "
        f"{vms * 31:,} day rollups through ingest_window, {size_mb:,.0f} MB"
    )
    print(
        f"time:       {setup.seconds:,.1f} s wall, {setup.cpu:,.1f} s CPU: {setup.rows / setup.seconds:,.0f} rows/s, "
        f"{setup.rows / setup.cpu:,.0f} rows/CPU s (clients, links and migrations included)"
    )
    print(
        f"per transaction: {setup.first_rate:,.0f} rows/s the first, {setup.last_rate:,.0f} rows/s the last "
        f"(the store holding {setup.rows:,} rows by then)"
    )
    print(f"database:   {kept / 'bench.sqlite3' if kept else 'discarded (--keep DIR keeps it)'}")


def month_end_child(directory: Path) -> str:
    """The month end on the store in ``directory``, run in a child process; its line of figures."""
    return subprocess.run(
        [sys.executable, __file__, "--run-only", str(directory)], check=True, capture_output=True, text=True
    ).stdout


def stored_month(directory: Path) -> tuple[int, int, int]:
    """(clients, VMs, hourly rows) of a store ``--setup-only --keep`` wrote, refused once invoiced."""
    connection = sqlite3.connect(directory / "bench.sqlite3")
    try:
        if connection.execute("SELECT count(*) FROM invoices").fetchone()[0]:
            raise SystemExit(f"--reuse {directory}: this store was invoiced already; set up a new one")
        clients = connection.execute("SELECT count(*) FROM clients").fetchone()[0]
        rows = connection.execute("SELECT count(*) FROM usage_records").fetchone()[0]
        vms = connection.execute(  # the first window's rows, found through the (source, window_start) index
            "SELECT count(*) FROM usage_records WHERE source = 'openstack' AND window_start = "
            "(SELECT window_start FROM usage_records WHERE source = 'openstack' ORDER BY window_start LIMIT 1)"
        ).fetchone()[0]
    finally:
        connection.close()
    return int(clients), int(vms), int(rows)


def target_seconds(invoices: int) -> float:
    """Issue 17's wall-time target: 300 s at 100,000 clients, 15 minutes at 300,000."""
    return max(TARGET_SECONDS, invoices * TARGET_SECONDS_PER_INVOICE)


def print_month_end(child: str, clients: int, vms: int, rows: int, usage: str, vms_per_client: int) -> None:
    """The month end's figures beside the targets, a plain Decimal loop and django-silver."""
    elapsed_text, invoices_text, peak_text, first_text, last_text, cpu_text = child.split()
    elapsed, invoices, peak_mb = float(elapsed_text), int(invoices_text), float(peak_text)
    first_mb, last_mb, cpu = float(first_text), float(last_text), float(cpu_text)
    rate = invoices / elapsed
    plain = plain_loop(min(clients, 20_000), vms_per_client, 31)
    domain, plain_pricing = pricing_rates(20_000, 31)
    growth = last_mb / first_mb - 1
    target = target_seconds(invoices)
    load = os.getloadavg()
    print(f"load:       {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min)")
    print(
        f"usage:      {clients:,} clients, {vms:,} VMs, {rows:,} usage rows and {vms * 31:,} day rollups "
        f"through ingest_window ({usage})"
    )
    print(
        f"month end:  {elapsed:.1f} s for {invoices:,} invoices, {rate:,.0f} invoices/s "
        f"(target <= {target:.0f} s): {'OK' if elapsed <= target else 'OVER'}; "
        f"{cpu:.1f} CPU s, {invoices / cpu:,.0f} invoices per CPU second "
        "(alone on the machine, the wall time is about this plus disk waits)"
    )
    print(
        f"peak RSS:   {peak_mb:.0f} MB (target <= {TARGET_RSS_MB} MB): {'OK' if peak_mb <= TARGET_RSS_MB else 'OVER'}"
    )
    print(
        f"RSS:        {first_mb:.0f} MB after the first chunk, {last_mb:.0f} MB after the last ({growth:+.1%}, "
        f"target within {TARGET_RSS_GROWTH:.0%}): {'OK' if abs(growth) <= TARGET_RSS_GROWTH else 'OVER'}"
    )
    print(
        f"beside:     a plain Decimal loop invoicing the same month at {plain:,.0f} invoices/s "
        f"(month end = {rate / plain:.2%} of it); django-silver {DJANGO_SILVER_INVOICES_PER_SECOND} invoices/s "
        f"(month end = {rate / DJANGO_SILVER_INVOICES_PER_SECOND:.1f}x)"
    )
    print(
        f"pricing:    {domain:,.0f} lines/s beside a plain Decimal loop at {plain_pricing:,.0f} lines/s "
        f"= {domain / plain_pricing:.0%}"
    )


def print_taxes(compared: tuple[float, float], rounds: int) -> None:
    off, on = compared
    slower = on / off - 1
    print(
        f"taxes:      {on:.1f} CPU s with [taxes] on beside {off:.1f} off, best of {rounds} interleaved "
        f"= {slower:+.1%} (target <= +{TARGET_TAX_SLOWDOWN:.0%}): "
        f"{'OK' if slower <= TARGET_TAX_SLOWDOWN else 'OVER'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--vms-per-client", type=int, default=3)
    parser.add_argument("--window-hours", type=int, default=1, choices=(1, 2, 3, 4, 6, 8, 12, 24))
    parser.add_argument("--taxes", type=int, default=0, metavar="ROUNDS", help="compare [taxes] on and off")
    parser.add_argument(
        "--setup-only", action="store_true", help="write the month, print the set-up figures, stop there"
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="write the database to DIR (new or empty) and keep it there"
    )
    parser.add_argument(
        "--reuse", type=Path, metavar="DIR", help="run the month end on a store --setup-only --keep DIR wrote"
    )
    parser.add_argument("--run-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_only:
        run_month_end(args.run_only)
        return
    if args.reuse:
        clients, vms, rows = stored_month(args.reuse)
        child = month_end_child(args.reuse)
        print_month_end(
            child, clients, vms, rows, f"set up before by --setup-only --keep {args.reuse}", vms // clients
        )
        return
    with store_directory(args.keep) as directory:
        setup = populate(directory, args.clients, args.vms_per_client, args.window_hours)
        size_mb = (directory / "bench.sqlite3").stat().st_size / 2**20
        if args.setup_only:
            print_setup(args, setup, size_mb, directory if args.keep else None)
            return
        child = month_end_child(directory)
        compared = taxes_slowdown(directory, args.taxes) if args.taxes else None
    usage = f"set up in {setup.seconds:.0f} s, {size_mb:,.0f} MB, not counted"
    print_month_end(
        child, args.clients, args.clients * args.vms_per_client, setup.rows, usage, args.vms_per_client
    )
    if compared is not None:
        print_taxes(compared, args.taxes)


if __name__ == "__main__":
    main()
