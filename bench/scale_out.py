"""Month end shared by 1, 2 and 4 worker processes on one PostgreSQL: throughput, speed-up, exactly once.

    .venv/bin/python bench/scale_out.py [--clients 100000] [--vms-per-client 3] [--workers 1,2,4]
                                        [--server postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

A database with --clients clients (each linked to an OpenStack project whose --vms-per-client VMs ran all
of October 2022, one usage row per VM) is written once with COPY, then copied (CREATE DATABASE …
TEMPLATE) for each worker count, so every count invoices the same month from the same start. Each worker
is a process that builds the app as the daemon does (WHMCS numbering the invoices, each written with its
outbox row; --bridge-numbers has the bridge take gap-free fiscal numbers instead), under its own owner, and runs month end
(``InvoicingService.run``, the ``invoicing`` job's call); the workers share the run through the chunk
claims (bridge/services/chunks.py). The clock starts when every worker has built its app.

Printed per worker count: wall, invoices/s, speed-up over one worker, how many chunks each worker took,
and the exactly-once check over the store (client-periods invoiced twice: duplicates; clients with usage
and no invoice: missing), beside the machine's load (``uptime``) at the start and end of the run.

Target (issue 17): 2 workers >= 1.4 x one worker's invoices/s on this 2-core machine, where PostgreSQL
shares the cores; 0 duplicates, 0 missing for every count.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
OCT = datetime(2022, 10, 1, tzinfo=UTC)
NOV = datetime(2022, 11, 1, tzinfo=UTC)
INVOICE_DATE = date(2022, 11, 1)
NOW = datetime(2022, 11, 1, 2, tzinfo=UTC)
SPEED_UP_TARGET = 1.4


@dataclass(frozen=True)
class Outcome:
    workers: int
    wall: float
    issued: int
    chunks: dict[str, int]
    duplicates: int
    missing: int
    load_before: str
    load_after: str

    @property
    def rate(self) -> float:
        return self.issued / self.wall


def settings_for(url: str, bridge_numbers: bool = False) -> Any:
    """WHMCS numbers the invoices (each goes out through the outbox), unless ``bridge_numbers``: then the
    bridge takes gap-free fiscal numbers, one sequence every worker's chunk transaction locks in turn."""
    from bridge.settings import parse_settings

    return parse_settings(
        {
            "database": {"url": url},
            "billing": {"generate_invoices": bridge_numbers},
            "logging": {"level": "warning", "format": "json"},
            "pricing": {"flavors": {"m1.small": "0.0125"}},
        }
    )


def populate(url: str, clients: int, vms: int) -> None:
    """Clients, their project links and one October-long usage row per VM, written with COPY."""
    from bridge.store.database import make_engine, migrate

    engine = make_engine(url)
    migrate(engine)
    created, collected = "2022-09-01 00:00:00", "2022-11-01 00:30:00"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        _copy(
            cursor,
            "clients (id, email, name, currency, configuration, created_at)",
            (
                f"{n}\tclient{n}@example.com\tClient {n}\tUSD\tdefault\t{created}"
                for n in range(1, clients + 1)
            ),
        )
        _copy(
            cursor,
            "client_links (client_id, kind, external_id, created_at)",
            (f"{n}\topenstack_project\tp-{n}\t{created}" for n in range(1, clients + 1)),
        )
        _copy(
            cursor,
            "usage_records (source, window_start, resource_id, window_end, resource_name, owner, plan, hours,"
            " collected_at)",
            (
                f"openstack\t2022-10-01 00:00:00\tvm-{n}-{v}\t2022-11-01 00:00:00\tvm-{n}-{v}\tp-{n}\tm1.small"
                f"\t744.00000000\t{collected}"
                for n in range(1, clients + 1)
                for v in range(vms)
            ),
        )
        cursor.execute("SELECT setval('clients_id_seq', %s)", (clients,))
        raw.commit()
    finally:
        raw.close()
    from bridge.store import usage_rollups

    with engine.begin() as connection:  # the day rollups sync keeps with the windows, built once here
        usage_rollups.ensure(connection, settings_for(url).billing.zone())
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()


def _copy(cursor: Any, target: str, lines: Iterator[str]) -> None:
    buffer = io.StringIO()
    with cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for line in lines:
            buffer.write(line + "\n")
            if buffer.tell() > 1 << 20:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def worker(url: str, owner: str, bridge_numbers: bool, ready: Any, go: Any, results: Any) -> None:
    """One daemon's month end: build the app, wait for the start, invoice the chunks it claims."""
    from bridge.bootstrap import build_app
    from bridge.clock import FixedClock
    from bridge.logs import configure

    configure("warning", "json", stream=open(os.devnull, "w"))  # noqa: SIM115
    app = build_app(settings_for(url, bridge_numbers), clock=FixedClock(NOW), owner=owner)
    app.invoicing.price_book("default")  # the price book read once, before the clock starts
    ready.put(owner)
    go.wait()
    try:
        run = app.invoicing.run(INVOICE_DATE)
    except BaseException as error:
        results.put((owner, f"{type(error).__name__}: {error}"))
        raise
    results.put((owner, len(run.issued)))
    app.close()


def measure(url: str, workers: int, bridge_numbers: bool) -> Outcome:
    context = multiprocessing.get_context("fork")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    owners = [f"worker-{n + 1}" for n in range(workers)]
    children = [
        context.Process(target=worker, args=(url, owner, bridge_numbers, ready, go, results))
        for owner in owners
    ]
    for child in children:
        child.start()
    for _ in owners:
        ready.get()
    load_before = _load()
    began = time.perf_counter()
    go.set()
    issued = dict(results.get() for _ in owners)
    wall = time.perf_counter() - began
    failed = {owner: found for owner, found in issued.items() if isinstance(found, str)}
    if failed:
        sys.exit(f"workers failed: {failed}")
    load_after = _load()
    for child in children:
        child.join()
        if child.exitcode != 0:
            sys.exit(f"a worker failed (exit {child.exitcode})")
    duplicates, missing, chunks = _check(url)
    return Outcome(workers, wall, sum(issued.values()), chunks, duplicates, missing, load_before, load_after)


def _check(url: str) -> tuple[int, int, dict[str, int]]:
    """Client-periods invoiced more than once, clients with usage and no invoice, chunks per worker."""
    engine = create_engine(url)
    with engine.connect() as connection:
        duplicates = connection.scalar(
            text(
                "SELECT count(*) FROM (SELECT client_id, period_start FROM invoices "
                "GROUP BY client_id, period_start HAVING count(*) > 1) AS twice"
            )
        )
        missing = connection.scalar(
            text(
                "SELECT count(*) FROM clients c WHERE NOT EXISTS "
                "(SELECT 1 FROM invoices i WHERE i.client_id = c.id AND i.kind = 'usage')"
            )
        )
        chunks = dict(
            connection.execute(text("SELECT holder, count(*) FROM work_chunks GROUP BY holder"))
            .tuples()
            .all()
        )
    engine.dispose()
    return int(duplicates or 0), int(missing or 0), {str(k): int(v) for k, v in chunks.items()}


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


@contextmanager
def databases(server: str) -> Iterator[tuple[Any, str]]:
    """An admin engine on ``server`` and the name prefix of this run's databases, all dropped at the end."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    prefix = f"bb_scale_{uuid.uuid4().hex[:8]}"
    made: list[str] = []

    def create(name: str, template: str | None = None) -> str:
        with admin.connect() as connection:
            suffix = f" TEMPLATE {template}" if template else ""
            connection.execute(text(f"CREATE DATABASE {name}{suffix}"))
        made.append(name)
        return make_url(server).set(database=name).render_as_string(hide_password=False)

    try:
        yield create, prefix
    finally:
        with admin.connect() as connection:
            for name in reversed(made):
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--vms-per-client", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure, comma-separated")
    parser.add_argument(
        "--bridge-numbers",
        action="store_true",
        help="the bridge numbers the invoices (billing.generate_invoices); default: WHMCS does",
    )
    parser.add_argument("--server", default=SERVER, help="SQLAlchemy URL of a PostgreSQL server (admin)")
    args = parser.parse_args()
    counts = [int(count) for count in args.workers.split(",")]

    outcomes: list[Outcome] = []
    with databases(args.server) as (create, prefix):
        began = time.perf_counter()
        template = create(f"{prefix}_template")
        populate(template, args.clients, args.vms_per_client)
        setup = time.perf_counter() - began
        print(
            f"{args.clients:,} clients, {args.clients * args.vms_per_client:,} VMs, October 2022 on PostgreSQL "
            f"(set up in {setup:.0f} s, not counted); {os.cpu_count()} cores shared with PostgreSQL"
        )
        for count in counts:
            url = create(f"{prefix}_w{count}", template=f"{prefix}_template")
            outcome = measure(url, count, args.bridge_numbers)
            outcomes.append(outcome)
            _print(outcome, outcomes[0])
    ok = all(o.duplicates == 0 and o.missing == 0 for o in outcomes)
    two = next((o for o in outcomes if o.workers == 2), None)
    one = next((o for o in outcomes if o.workers == 1), None)
    if one is not None and two is not None:
        speed_up = two.rate / one.rate
        verdict = "OK" if speed_up >= SPEED_UP_TARGET else "UNDER"
        print(f"2 workers / 1 worker: {speed_up:.2f}x (target >= {SPEED_UP_TARGET}x): {verdict}")
    print(f"exactly once: {'OK' if ok else 'FAILED'} (0 duplicates and 0 missing for every count)")
    if not ok:
        sys.exit(1)


def _print(outcome: Outcome, first: Outcome) -> None:
    taken = ", ".join(f"{owner} {count}" for owner, count in sorted(outcome.chunks.items()))
    print(
        f"{outcome.workers} worker(s): {outcome.wall:7.1f} s  {outcome.rate:7.0f} invoices/s  "
        f"speed-up {outcome.rate / first.rate:.2f}x  invoices {outcome.issued:,}  "
        f"duplicates {outcome.duplicates}  missing {outcome.missing}  chunks: {taken}"
    )
    print(f"    load before: {outcome.load_before}\n    load after:  {outcome.load_after}")


if __name__ == "__main__":
    main()
