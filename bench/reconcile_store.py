"""`billing-bridge reconcile` through the store: a month read from a real database, reconciled, written.

    .venv/bin/python bench/reconcile_store.py [--clients 2000] [--vms-per-client 3] [--url sqlite:///...]
                                              [--keep DIR]

Seeds a fresh database (SQLite in a temporary directory unless ``--url`` names an empty one): clients
each linked to a project, their VMs running all October 2022 in daily usage windows, then invoices
October with `billing-bridge invoice --date 2022-11-01` and times `billing-bridge reconcile --month
2022-10 --json` in a child process (wall time, CPU time and its peak RSS), beside a floor: one query
summing the month's hours per resource, the least any reconciliation must read, and the ratio of the two.

``--keep DIR`` keeps the seeded and invoiced database in DIR and, when DIR already holds one for the same
size, reconciles it again without seeding or invoicing (invoicing 100,000 clients takes longer than
reconciling them). Each figure is printed with the load average (``uptime``) at the time: on a shared
machine the wall time is the CPU time stretched by the load, so both are printed, and the target
(100,000 clients / 300,000 VMs in <= 120 s and <= 500 MB) is held against both.

bench/reconcile.py measures the rule alone at 100,000 clients / 300,000 VMs; this one shows what the
store path adds. ``--clients 100000`` runs (seeding about 9.3 million windows); clients and windows scale
linearly (the queries read per chunk of clients through the owner index), so a smaller run extrapolates:
the script prints the per-client figures and the 100,000-client estimate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bridge.store import tables
from bridge.store.database import make_engine, migrate

OCTOBER = datetime(2022, 10, 1, tzinfo=UTC)
DAYS = 31
CLI = [sys.executable, "-c", "from bridge.cli.base import main; main()"]


def seed(url: str, clients: int, vms: int) -> None:
    engine = make_engine(url)
    migrate(engine)
    created = datetime(2022, 1, 1, tzinfo=UTC)
    with engine.begin() as tx:
        tx.execute(
            insert(tables.clients),
            [
                {
                    "id": client,
                    "email": f"c{client}@example.com",
                    "name": f"Client {client}",
                    "currency": "EUR",
                    "configuration": "default",
                    "created_at": created,
                }
                for client in range(1, clients + 1)
            ],
        )
        tx.execute(
            insert(tables.client_links),
            [
                {"client_id": c, "kind": "openstack_project", "external_id": f"p-{c}", "created_at": created}
                for c in range(1, clients + 1)
            ],
        )
        rows: list[dict[str, Any]] = []
        for client in range(1, clients + 1):
            rows += _windows(client, vms)
            if len(rows) >= 50_000:
                tx.execute(insert(tables.usage_records), rows)
                rows = []
        if rows:
            tx.execute(insert(tables.usage_records), rows)
    engine.dispose()


def _windows(client: int, vms: int) -> list[dict[str, Any]]:
    collected_at = OCTOBER + timedelta(days=DAYS, hours=1)
    return [
        {
            "source": "openstack",
            "window_start": OCTOBER + timedelta(days=day),
            "window_end": OCTOBER + timedelta(days=day + 1),
            "resource_id": f"vm-{client}-{vm}",
            "resource_name": f"vm-{vm}",
            "owner": f"p-{client}",
            "plan": "m1.small",
            "hours": Decimal(24),
            "tokens": None,
            "collected_at": collected_at,
        }
        for vm in range(vms)
        for day in range(DAYS)
    ]


def floor(url: str) -> float:
    """One pass summing the month's hours per resource: what any reconciliation reads at least (CPU s)."""
    engine = make_engine(url)
    started = time.process_time()
    with engine.connect() as tx:
        tx.execute(
            select(tables.usage_records.c.resource_id, func.count())
            .where(tables.usage_records.c.window_start >= OCTOBER)
            .group_by(tables.usage_records.c.resource_id)
        ).all()
    engine.dispose()
    return time.process_time() - started


@dataclass(frozen=True)
class Run:
    """One command's wall and CPU seconds (user + system), its peak RSS, and the load while it ran."""

    wall: float
    cpu: float
    rss_mb: float
    load: str


def run_cli(config: Path, *args: str) -> Run:
    """One `billing-bridge` command in a child process, measured by a probe process around it."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
        "used = resource.getrusage(resource.RUSAGE_CHILDREN); "
        "print(time.perf_counter() - t, used.ru_utime + used.ru_stime, used.ru_maxrss / 1024); "
        "sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu, rss = done.stdout.split()
    return Run(float(wall), float(cpu), float(rss), load())


def load() -> str:
    """The load averages (1, 5, 15 minutes) and the cores, as `uptime` shows them."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores"


def prepare(directory: Path, url: str | None, clients: int, vms: int) -> tuple[Path, str, str]:
    """The settings file and URL of a seeded and invoiced database in ``directory`` (reused when it is
    there), and how it was prepared."""
    config = directory / "settings.toml"
    marker = directory / f"seeded-{clients}x{vms}"
    if marker.exists() and config.exists():
        return config, marker.read_text().strip(), f"reused {marker.name}"
    url = url or f"sqlite:///{directory}/bench.sqlite3"
    started = time.perf_counter()
    seed(url, clients, vms)
    seeded = time.perf_counter() - started
    config.write_text(
        f'[database]\nurl = "{url}"\n[logging]\nlevel = "warning"\n[billing]\ncurrency = "EUR"\n'
        '[pricing.flavors]\n"m1.small" = 0.10\n'
    )
    invoiced = run_cli(config, "invoice", "--date", "2022-11-01")
    marker.write_text(url + "\n")
    return config, url, f"seeded in {seeded:.1f} s, invoiced in {invoiced.wall:.1f} s ({invoiced.load})"


TARGET_CLIENTS = 100_000
TARGET_SECONDS = 120.0
TARGET_MB = 500.0


def report(clients: int, vms: int, run: Run, floor_cpu: float) -> list[str]:
    windows = clients * vms * DAYS
    per_client_cpu = run.cpu / clients * 1000
    scale = TARGET_CLIENTS / clients
    lines = [
        f"{clients:,} clients, {clients * vms:,} VMs, {windows:,} windows",
        f"reconcile --json: {run.wall:.1f} s wall, {run.cpu:.1f} s CPU, peak RSS {run.rss_mb:.0f} MB "
        f"({per_client_cpu:.2f} ms CPU a client; {run.load})",
        f"floor (one pass summing the month per resource): {floor_cpu:.2f} s CPU ({load()}); "
        f"reconcile / floor = {run.cpu / floor_cpu:.1f}x"
        if floor_cpu
        else "floor: too fast to time",
    ]
    if clients < TARGET_CLIENTS:
        lines.append(
            f"at {TARGET_CLIENTS:,} clients (linear): about {run.cpu * scale:.0f} s CPU, "
            f"{run.wall * scale:.0f} s wall at this load; target <= {TARGET_SECONDS:.0f} s and "
            f"<= {TARGET_MB:.0f} MB (RSS stays flat: clients stream)"
        )
    else:
        verdict = "met" if run.wall <= TARGET_SECONDS and run.rss_mb <= TARGET_MB else "NOT met at this load"
        lines.append(f"target <= {TARGET_SECONDS:.0f} s and <= {TARGET_MB:.0f} MB: {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--vms-per-client", type=int, default=3)
    parser.add_argument("--url", help="an empty database to seed (default: SQLite in a temporary directory)")
    parser.add_argument("--keep", type=Path, help="keep the seeded database in this directory, reuse it")
    options = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if options.keep is not None:
            options.keep.mkdir(parents=True, exist_ok=True)
            directory = options.keep
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        config, url, prepared = prepare(directory, options.url, options.clients, options.vms_per_client)
        run = run_cli(config, "reconcile", "--month", "2022-10", "--json")
        print(prepared)
        print("\n".join(report(options.clients, options.vms_per_client, run, floor(url))))


if __name__ == "__main__":
    main()
