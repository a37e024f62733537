"""`billing-bridge reconcile` through the store: a month read from a real database, reconciled, written.

    .venv/bin/python bench/reconcile_store.py [--clients 2000] [--vms-per-client 3] [--url sqlite:///...]
                                              [--keep DIR]

Seeds a fresh database (SQLite in a temporary directory unless ``--url`` names an empty one) and times
`billing-bridge reconcile --month 2022-10 --json` in a child process (wall time, CPU time and its peak
RSS), beside a floor: one query summing the month's hours per resource, the least any reconciliation must
read, and the ratio of the two.

The month is written fast but through the real tables, as the bridge wrote them: one template client,
linked to a project whose VMs ran all October 2022 in daily usage windows, is seeded and invoiced by
`billing-bridge invoice --date 2022-11-01` (so its windows, day rollups, cycle schedule, invoice and lines
are the invoicing path's own rows); then every other client is that client copied inside the database
(``INSERT ... SELECT``), its names, owner, VM ids, invoice reference and number made its own. Left out of
the copies: the day rollups (reconcile reads them only for a first service, which the hourly windows
give as well) and the notification mail of each invoice (reconcile does not read the mail outbox). The
windows are copied client by client, where a sync writes them hour by hour with every client
interleaved; the per-cycle sums read only the covering index (migration 0017), in which each owner's
windows are contiguous either way. Invoicing 100,000 clients one by one would take hours on this shared
machine; copying takes minutes.

``--keep DIR`` keeps the prepared database in DIR and, when DIR already holds one for the same size,
reconciles it again without preparing it (it is migrated to the head first). Each figure is printed with
the load average at the time: on a shared machine the wall time is the CPU time stretched by the load, so
both are printed, and the target (100,000 clients / 300,000 VMs in <= 120 s and <= 500 MB) is held
against both.

bench/reconcile.py measures the rule alone at 100,000 clients / 300,000 VMs; this one shows what the
store path adds. ``--clients 100000`` writes 9.3 million windows.
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

from sqlalchemy import Engine, String, Table, cast, func, insert, literal, select
from sqlalchemy.sql import ColumnElement

from bridge.store import tables
from bridge.store.database import make_engine, migrate

OCTOBER = datetime(2022, 10, 1, tzinfo=UTC)
DAYS = 31
CLI = [sys.executable, "-c", "from bridge.cli.base import main; main()"]


TEMPLATE = 1
"""The client seeded and invoiced through the bridge; every other client is a copy of it."""


def seed(url: str, clients: int, vms: int) -> None:
    """The clients (one statement), the template client's link and its October windows (none when
    ``vms`` is 0)."""
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
                {
                    "client_id": TEMPLATE,
                    "kind": "openstack_project",
                    "external_id": "p-1",
                    "created_at": created,
                }
            ],
        )
        windows = _windows(TEMPLATE, vms)
        if windows:  # an empty list would insert one row of defaults (SQLAlchemy's DEFAULT VALUES)
            tx.execute(insert(tables.usage_records), windows)
    engine.dispose()


def replicate(url: str) -> None:
    """Every client but the template becomes a copy of the template's invoiced month, in the database.

    A bulk load: the usage windows' secondary indexes are dropped while the windows are copied and built
    again after (the same indexes, from the tables' metadata), which sorts each index once instead of
    inserting 9.3 million entries into it one by one.
    """
    engine = make_engine(url)
    usage_indexes = sorted(tables.usage_records.indexes, key=lambda index: str(index.name))
    with engine.begin() as tx:
        if engine.dialect.name == "sqlite":
            tx.exec_driver_sql("PRAGMA cache_size = -1000000")  # 1 GB of page cache for this load
        for index in usage_indexes:
            index.drop(tx)
        for statement in _copies(engine):
            tx.execute(statement)
        for index in usage_indexes:
            index.create(tx)
    engine.dispose()


def _copies(engine: Engine) -> list[Any]:
    """``INSERT ... SELECT`` statements copying the template's rows to every other client, in order."""
    client = tables.clients.alias("copy")
    number = cast(client.c.id, String)
    others = client.c.id != TEMPLATE

    def own(column: ColumnElement[Any], prefix: str) -> ColumnElement[Any]:
        """The template's ``<prefix>1-...`` text made the copy's: ``<prefix><id>-...``."""
        return func.replace(column, f"{prefix}{TEMPLATE}-", literal(prefix) + number + "-")

    links, usage = tables.client_links, tables.usage_records
    schedules, invoices, lines = tables.cycle_schedules, tables.invoices, tables.invoice_lines
    owner = literal("p-") + number
    statements = [
        _copy(links, links.c.client_id == TEMPLATE, client, {"client_id": client.c.id, "external_id": owner}),
        _copy(
            usage,
            usage.c.owner == f"p-{TEMPLATE}",
            client,
            {"owner": owner, "resource_id": own(usage.c.resource_id, "vm-")},
        ),
        _copy(schedules, schedules.c.client_id == TEMPLATE, client, {"client_id": client.c.id}),
        _copy(
            invoices,
            invoices.c.client_id == TEMPLATE,
            client,
            {"client_id": client.c.id, "reference": own(invoices.c.reference, "BB-"), "number": number},
        ),
    ]
    copy = invoices.alias("copied")
    template = invoices.alias("template")
    columns = [column.name for column in lines.columns if column.name != "id"]
    values = {
        "invoice_id": copy.c.id,
        "line_reference": own(lines.c.line_reference, "vm-"),
        "resource_id": own(lines.c.resource_id, "vm-"),
    }
    line_copies = (
        select(*(values.get(name, lines.c[name]) for name in columns))
        .select_from(lines)
        .join(template, template.c.id == lines.c.invoice_id)
        .join(client, others)
        .join(copy, copy.c.reference == own(template.c.reference, "BB-"))
        .where(template.c.client_id == TEMPLATE)
    )
    statements.append(insert(lines).from_select(columns, line_copies))
    return statements


def _copy(
    table: Table,
    templates: ColumnElement[bool],
    client: Any,
    values: dict[str, ColumnElement[Any]],
) -> Any:
    """The template's rows of ``table`` (``templates``) once for every other client, ``values`` made its own."""
    columns = [column.name for column in table.columns if column.name != "id"]
    rows = (
        select(*(values.get(name, table.c[name]) for name in columns))
        .select_from(table)
        .join(client, client.c.id != TEMPLATE)
        .where(templates)
    )
    return insert(table).from_select(columns, rows)


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
    """The settings file and URL of a prepared database in ``directory`` (reused, migrated to the head,
    when it is there), and how it was prepared."""
    config = directory / "settings.toml"
    marker = directory / f"seeded-{clients}x{vms}"
    if marker.exists() and config.exists():
        url = marker.read_text().strip()
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        return config, url, f"reused {marker.name}"
    url = url or f"sqlite:///{directory}/bench.sqlite3"
    started = time.perf_counter()
    seed(url, clients, vms)
    config.write_text(
        f'[database]\nurl = "{url}"\n[logging]\nlevel = "warning"\n[billing]\ncurrency = "EUR"\n'
        '[pricing.flavors]\n"m1.small" = 0.10\n'
    )
    invoiced = run_cli(config, "invoice", "--date", "2022-11-01", "--client", str(TEMPLATE))
    replicate(url)
    prepared = time.perf_counter() - started
    marker.write_text(url + "\n")
    return (
        config,
        url,
        (
            f"prepared in {prepared:.1f} s (the template client invoiced in {invoiced.wall:.1f} s, "
            f"then copied; {load()})"
        ),
    )


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
