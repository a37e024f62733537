"""Push throughput to WHMCS: 1,000 invoices to the fake WHMCS with 50 ms added to every call.

    .venv/bin/python bench/whmcs_push.py [--invoices 1000] [--clients 200] [--latency-ms 50]
                                         [--concurrency 8] [--status Unpaid|Draft] [--database URL]
                                         [--load N]

The real path runs: OutboxPusher over the store (SQLite in a temporary directory unless --database names
another, empty and migrated) and real HTTP to the fake on 127.0.0.1. The fake answers from its own process
(tests/fakes/whmcs_process.py), over persistent HTTP/1.1 connections as WHMCS behind Apache does, so the
CPU measured here is the bridge's, as it would be with WHMCS on another host. ``--load N`` loads the
machine reproducibly: N busy-loop processes at normal priority run for the push and the bare calls, and
are ended after. The clients are already linked to
WHMCS clients (the steady state: monthly invoices of known clients), so the happy path is one
CreateInvoice per invoice; with --status Draft it is CreateInvoice + UpdateInvoice publish (two calls).

Printed: API calls per invoice, and the wall time beside the floor, calls x latency / concurrency (the time
the calls alone take when every thread is always busy), and beside the floor measured in the same run: the
same number of CreateInvoice calls made by as many threads straight through WhmcsClient, with nothing of
the bridge around them (what the HTTP client and the fake cost on this machine as loaded now), with the
machine's load (``uptime``). CPU seconds (``getrusage``, the whole process: the fake answers in it too) of
the push and of those bare calls are printed beside each other; their difference per invoice is what the
bridge itself costs per row, a figure a loaded machine inflates less than wall time. Targets (Unpaid):
<= 1.05 calls per invoice and wall <= 1.25 x floor.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import tenacity
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.bootstrap import build_app
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.domain.effects import CreateInvoice, InvoiceItem
from bridge.logs import configure as configure_logging
from bridge.settings import parse_settings
from bridge.store import clients as client_store
from bridge.store.database import make_engine, migrate
from bridge.store.outbox import OutboxState, enqueue_effect, list_rows
from bridge.store.tables import invoices
from bridge.whmcs import WhmcsClient
from tests.fakes.whmcs_process import FakeWhmcsProcess

NOW = datetime(2022, 11, 1, 1, 0, tzinfo=UTC)
CALLS_TARGET = 1.05
WALL_TARGET = 1.25


def prepare(url: str, fake: FakeWhmcsProcess, invoice_count: int, client_count: int) -> None:
    """Clients linked to WHMCS clients, and their invoices with create_invoice rows, as invoicing writes."""
    engine = make_engine(url)
    migrate(engine)
    with WhmcsClient(fake.url, fake.identifier, fake.secret) as whmcs:
        whmcs_ids = [
            whmcs.add_client(
                firstname="Client", lastname=str(n), email=f"c{n}@example.com", skip_validation=True
            )
            for n in range(client_count)
        ]
    with engine.begin() as connection:
        for n, whmcs_id in enumerate(whmcs_ids):
            client_id = client_store.insert_client(
                connection,
                email=f"c{n}@example.com",
                name=f"Client {n}",
                currency="USD",
                configuration="default",
                created_at=NOW,
            )
            client_store.insert_link(
                connection,
                client_id=client_id,
                kind=LinkKind.WHMCS_CLIENT,
                external_id=str(whmcs_id),
                created_at=NOW,
            )
        for n in range(invoice_count):
            client_id = n % client_count + 1
            reference = f"BB-{client_id}-P{n // client_count:04d}"
            amount = Decimal(n % 977 + 100) / 100
            connection.execute(
                insert(invoices).values(
                    client_id=client_id,
                    reference=reference,
                    kind="usage",
                    currency="USD",
                    status="unpaid",
                    issuer="whmcs",
                    issued_at=NOW,
                    due_at=NOW,
                    total=amount,
                    created_at=NOW,
                )
            )
            enqueue_effect(
                connection,
                client_id=client_id,
                reference=reference,
                effect=CreateInvoice(
                    reference,
                    date(2022, 11, 1),
                    date(2022, 11, 15),
                    (InvoiceItem(f"usage {reference}", amount),),
                    f"{reference}: usage",
                ),
                now=NOW,
            )
    engine.dispose()


def cpu_seconds() -> float:
    """CPU time this process has used so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured_floor(fake: FakeWhmcsProcess, calls: int, concurrency: int) -> tuple[float, float]:
    """Seconds ``concurrency`` threads take for ``calls`` bare CreateInvoice calls (fake latency on), and
    the CPU seconds they used."""
    with WhmcsClient(fake.url, fake.identifier, fake.secret) as whmcs:
        user_id = whmcs.add_client(
            firstname="Floor", lastname="Probe", email="floor@example.com", skip_validation=True
        )
    shares = [calls // concurrency + (1 if n < calls % concurrency else 0) for n in range(concurrency)]

    def call(share: int) -> None:
        with WhmcsClient(fake.url, fake.identifier, fake.secret, wait=tenacity.wait_none()) as whmcs:
            for n in range(share):
                whmcs.create_invoice(
                    user_id,
                    [(f"floor {n}", Decimal("1.00"), False)],
                    date=date(2022, 11, 1),
                    due_date=date(2022, 11, 15),
                    notes=f"floor probe {n}",
                )

    began, cpu = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(call, shares))
    return time.perf_counter() - began, cpu_seconds() - cpu


@contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes spinning at normal priority while the block runs: a machine loaded the same way
    on every run. Each is ended by its own id afterwards."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--status", choices=["Unpaid", "Draft"], default="Unpaid")
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database (default: SQLite, temporary)")
    parser.add_argument(
        "--load", type=int, default=0, metavar="N", help="busy-loop processes beside the push (default 0)"
    )
    args = parser.parse_args()
    # As the daemon logs (info, JSON lines), to nowhere: the log's cost is measured, not the terminal's.
    configure_logging("info", "json", stream=open(os.devnull, "w"))  # noqa: SIM115

    with tempfile.TemporaryDirectory() as directory, FakeWhmcsProcess() as fake:
        url = args.database or f"sqlite:///{Path(directory) / 'bench.sqlite3'}"
        prepare(url, fake, args.invoices, args.clients)
        settings = parse_settings(
            {
                "database": {"url": url},
                "whmcs": {
                    "enabled": True,
                    "url": fake.url,
                    "identifier": fake.identifier,
                    "secret": fake.secret,
                    "invoice_status": args.status,
                    "push_concurrency": args.concurrency,
                    "retry_wait_max_seconds": 0,
                },
            }
        )
        app = build_app(
            settings,
            clock=FixedClock(NOW),
            whmcs_client=lambda: WhmcsClient(
                fake.url, fake.identifier, fake.secret, wait=tenacity.wait_none()
            ),
        )
        pusher = app.pusher()
        fake.reset_calls()
        fake.fail("slow", latency_ms=args.latency_ms, times=None)
        with busy_loops(args.load):
            began, cpu, fake_cpu = time.perf_counter(), cpu_seconds(), fake.cpu_seconds()
            report = pusher.run()
            wall, cpu = time.perf_counter() - began, cpu_seconds() - cpu
            fake_cpu = fake.cpu_seconds() - fake_cpu
            load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
            calls, pushed, connections = fake.call_count(), fake.invoice_count(), fake.connection_count()
            measured, floor_cpu = measured_floor(fake, calls, args.concurrency)
        with app.engine.connect() as connection:
            left = list_rows(connection, (OutboxState.PENDING, OutboxState.IN_DOUBT, OutboxState.FAILED))
        app.close()

    floor = calls * args.latency_ms / 1000 / args.concurrency
    per_invoice = calls / args.invoices
    print(
        f"{args.invoices} invoices of {args.clients} clients, {args.latency_ms} ms per call, "
        f"{args.concurrency} threads, invoice_status {args.status}"
    )
    print(f"pushed       {pushed} invoices in WHMCS, {len(left)} rows left unsettled, {report.counts()}")
    target = f"target <= {CALLS_TARGET}" if args.status == "Unpaid" else "Draft: CreateInvoice + publish"
    print(
        f"API calls    {calls} = {per_invoice:.3f} per invoice ({target}), "
        f"over {connections} connections since the fake started"
    )
    print(f"wall         {wall:.2f} s")
    print(f"floor        {floor:.2f} s = {calls} calls x {args.latency_ms} ms / {args.concurrency}")
    print(f"wall/floor   {wall / floor:.3f} (target <= {WALL_TARGET})")
    print(
        f"measured     {measured:.2f} s = the same {calls} calls, {args.concurrency} threads, no bridge around them "
        f"(wall/measured {wall / measured:.3f})"
    )
    print(
        f"cpu          {cpu:.2f} s = {cpu / args.invoices * 1000:.2f} ms per invoice; the bare calls "
        f"{floor_cpu:.2f} s = {floor_cpu / calls * 1000:.2f} ms per call; "
        f"the bridge's own {(cpu - floor_cpu) / args.invoices * 1000:.2f} ms per invoice "
        f"(the fake's process, apart: {fake_cpu:.2f} s for the push)"
    )
    print(f"load         {load}; {args.load} busy loops beside the push (--load)")
    if pushed != args.invoices or left:
        sys.exit("not every invoice was pushed exactly once")


if __name__ == "__main__":
    main()
