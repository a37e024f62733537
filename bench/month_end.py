"""Month end: a month of usage for 100,000 clients and 300,000 VMs in SQLite, invoiced.

    .venv/bin/python bench/month_end.py [--clients 100000] [--vms-per-client 3] [--window-hours 24]
                                        [--taxes ROUNDS]

Prints the month end's wall time, invoices per second and peak RSS (the run happens in a child process,
so its memory is measured alone), and the pure pricing rate in lines per second beside a plain Decimal
loop over the same records (sum the hours, multiply by the price, round to the cent).

The usage is a full October 2022 per VM in windows of --window-hours (24 by default, the widest
openstack.window: 31 records per VM, 9.3 million rows). Hourly windows would be 223 million rows, more
than this machine's SQLite takes in the time budget, whatever the invoicing does.

Targets: month end <= 5 min, peak RSS <= 500 MB, pricing >= 40 % of the plain loop.

--taxes ROUNDS (issue 16) also runs the same month end on fresh copies of the same store with [taxes] off
and on (every client taxed at 19 %: tax lines, subtotal and tax stored per invoice), interleaved ROUNDS
times in the same run, and prints how much more CPU time the best run with taxes takes. Target: <= 10 %.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

OCT = datetime(2022, 10, 1, tzinfo=UTC)
NOV = datetime(2022, 11, 1, tzinfo=UTC)
PRICE = Decimal("0.0125")
TARGET_SECONDS, TARGET_RSS_MB, TARGET_PRICING = 300, 500, 0.40
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


def store_copy(directory: Path, name: str, *, taxes: bool) -> Path:
    """The populated store copied beside it, under settings with [taxes] on or off."""
    copy = directory / name
    copy.mkdir()
    shutil.copyfile(directory / "bench.sqlite3", copy / "bench.sqlite3")
    settings_file(copy, taxes=taxes)
    return copy


def taxes_slowdown(directory: Path, rounds: int) -> tuple[float, float]:
    """(best CPU seconds off, best CPU seconds on) of the month end on fresh copies of the same store,
    off and on interleaved ``rounds`` times. CPU time, not wall time: the machine is shared, and the
    wall time of one configuration varies by tens of percent from run to run while its CPU time does not."""
    off, on = float("inf"), float("inf")
    for round_ in range(rounds):
        off = min(off, child_cpu_seconds(store_copy(directory, f"off-{round_}", taxes=False)))
        on = min(on, child_cpu_seconds(store_copy(directory, f"on-{round_}", taxes=True)))
    return off, on


def child_cpu_seconds(directory: Path) -> float:
    """The CPU time (user + system) of the month end's child process on ``directory``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    month_end_child(directory)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def month_end_child(directory: Path) -> tuple[float, int, float]:
    """(seconds, invoices, peak RSS MB) of the month end run in a child process on ``directory``."""
    child = subprocess.run(
        [sys.executable, __file__, "--run-only", str(directory)], check=True, capture_output=True, text=True
    )
    elapsed_text, invoices_text, peak_text = child.stdout.split()
    return float(elapsed_text), int(invoices_text), float(peak_text)


def populate(directory: Path, clients: int, vms: int, window_hours: int) -> None:
    """Clients, their project links and a month of usage, written fast with plain sqlite3."""
    from bridge.settings import load_settings
    from bridge.store.database import make_engine, migrate

    settings = load_settings(settings_file(directory))
    engine = make_engine(settings.database_url())
    migrate(engine)
    engine.dispose()
    connection = sqlite3.connect(directory / "bench.sqlite3")
    connection.execute("PRAGMA synchronous=OFF")
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
    connection.executemany(
        "INSERT INTO usage_records (source, window_start, resource_id, window_end, resource_name, owner, plan,"
        " hours, tokens, collected_at) VALUES ('openstack', ?, ?, ?, ?, ?, 'm1.small', ?, NULL, ?)",
        _usage_rows(clients, vms, window_hours),
    )
    connection.commit()
    connection.close()


def _usage_rows(clients: int, vms: int, window_hours: int) -> Iterator[tuple[str, ...]]:
    hours = f"{Decimal(window_hours):.8f}"
    windows = []
    start = OCT
    while start < NOV:
        end = min(start + timedelta(hours=window_hours), NOV)
        windows.append((_db_time(start), _db_time(end)))
        start = end
    collected = _db_time(NOV + timedelta(hours=1))
    for client in range(1, clients + 1):
        for vm in range(vms):
            resource_id = f"vm-{client}-{vm}"
            for window_start, window_end in windows:
                yield (window_start, resource_id, window_end, resource_id, f"p-{client}", hours, collected)


def _db_time(instant: datetime) -> str:
    return instant.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def run_month_end(directory: Path) -> None:
    """The child process: invoice October 2022 for every client, then print time and peak RSS."""
    from bridge.bootstrap import build_app
    from bridge.clock import FixedClock
    from bridge.logs import configure
    from bridge.settings import load_settings

    configure("warning", "json")
    app = build_app(load_settings(directory / "settings.toml"), clock=FixedClock(NOV + timedelta(hours=2)))
    began = time.perf_counter()
    run = app.invoicing.run(date(2022, 11, 1))
    elapsed = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert not run.held, run.held[:3]
    print(f"{elapsed:.3f} {len(run.issued)} {peak_mb:.1f}")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--vms-per-client", type=int, default=3)
    parser.add_argument("--window-hours", type=int, default=24)
    parser.add_argument("--taxes", type=int, default=0, metavar="ROUNDS", help="compare [taxes] on and off")
    parser.add_argument("--run-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_only:
        run_month_end(args.run_only)
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        began = time.perf_counter()
        populate(directory, args.clients, args.vms_per_client, args.window_hours)
        setup = time.perf_counter() - began
        compared = taxes_slowdown(directory, args.taxes) if args.taxes else None
        elapsed, invoices, peak_mb = month_end_child(directory)
    records = 744 // args.window_hours
    domain, plain = pricing_rates(20_000, records)
    vms = args.clients * args.vms_per_client
    print(
        f"usage:      {args.clients:,} clients, {vms:,} VMs, {vms * records:,} rows of {args.window_hours} h "
        f"(set up in {setup:.0f} s, not counted)"
    )
    print(
        f"month end:  {elapsed:.1f} s for {invoices:,} invoices, {invoices / elapsed:,.0f} invoices/s "
        f"(target <= {TARGET_SECONDS} s): {'OK' if elapsed <= TARGET_SECONDS else 'OVER'}"
    )
    print(
        f"peak RSS:   {peak_mb:.0f} MB (target <= {TARGET_RSS_MB} MB): {'OK' if peak_mb <= TARGET_RSS_MB else 'OVER'}"
    )
    ratio = domain / plain
    print(
        f"pricing:    {domain:,.0f} lines/s beside a plain Decimal loop at {plain:,.0f} lines/s = {ratio:.0%} "
        f"(target >= {TARGET_PRICING:.0%}): {'OK' if ratio >= TARGET_PRICING else 'BELOW'}"
    )
    if compared is not None:
        off, on = compared
        slower = on / off - 1
        print(
            f"taxes:      {on:.1f} CPU s with [taxes] on beside {off:.1f} off, best of {args.taxes} interleaved "
            f"= {slower:+.1%} (target <= +{TARGET_TAX_SLOWDOWN:.0%}): "
            f"{'OK' if slower <= TARGET_TAX_SLOWDOWN else 'OVER'}"
        )


if __name__ == "__main__":
    main()
