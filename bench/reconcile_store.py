"""`billing-bridge reconcile` through the store: a month read from a real database, reconciled, written.

    .venv/bin/python bench/reconcile_store.py [--clients 2000] [--vms-per-client 3] [--url sqlite:///...]

Seeds a fresh database (SQLite in a temporary directory unless ``--url`` names an empty one): clients
each linked to a project, their VMs running all October 2022 in daily usage windows, then invoices
October with `billing-bridge invoice --date 2022-11-01` and times `billing-bridge reconcile --month
2022-10 --json` in a child process (wall time and its peak RSS), beside a floor: one query summing the
month's hours per resource, the least any reconciliation must read.

bench/reconcile.py measures the rule alone at 100,000 clients / 300,000 VMs (target <= 120 s, <= 500
MB); this one shows what the store path adds, at a size a laptop seeds in seconds. Clients and windows
scale linearly (the queries read per chunk of clients through the owner index).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
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
    """One pass summing the month's hours per resource: what any reconciliation reads at least."""
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.connect() as tx:
        tx.execute(
            select(tables.usage_records.c.resource_id, func.count())
            .where(tables.usage_records.c.window_start >= OCTOBER)
            .group_by(tables.usage_records.c.resource_id)
        ).all()
    engine.dispose()
    return time.perf_counter() - started


def run_cli(config: Path, *args: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one `billing-bridge` command in a child process."""
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL); "
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024; "
        "print(time.perf_counter() - t, rss); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *CLI, "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    wall, rss = done.stdout.split()
    return float(wall), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--vms-per-client", type=int, default=3)
    parser.add_argument("--url", help="an empty database to seed (default: SQLite in a temporary directory)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = options.url or f"sqlite:///{directory}/bench.sqlite3"
        started = time.perf_counter()
        seed(url, options.clients, options.vms_per_client)
        seeded = time.perf_counter() - started
        config = Path(directory) / "settings.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\n[logging]\nlevel = "warning"\n[billing]\ncurrency = "EUR"\n'
            '[pricing.flavors]\n"m1.small" = 0.10\n'
        )
        invoiced, _ = run_cli(config, "invoice", "--date", "2022-11-01")
        wall, rss = run_cli(config, "reconcile", "--month", "2022-10", "--json")
        windows = options.clients * options.vms_per_client * DAYS
        print(
            f"{options.clients:,} clients, {options.clients * options.vms_per_client:,} VMs, {windows:,} windows"
        )
        print(f"seeded in {seeded:.1f} s, invoiced in {invoiced:.1f} s")
        print(
            f"reconcile --json: {wall:.1f} s, peak RSS {rss:.0f} MB ({wall / options.clients * 1000:.2f} ms a client)"
        )
        print(f"floor (one pass summing the month per resource): {floor(url):.2f} s")


if __name__ == "__main__":
    main()
