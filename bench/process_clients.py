"""process_clients for 100,000 clients: wall time and peak RSS.

    .venv/bin/python bench/process_clients.py [--clients 100000] [--hours 24]

Every client has one running VM with --hours of hourly usage; nine in ten are well in credit, the tenth
near or past its limit. The configuration turns on credit notifications, suspension and credit
auto-invoicing, so the tenth get notifications, suspensions and auto-invoices written. The run happens
in a child process, so its memory is measured alone.

Targets: <= 60 s and <= 300 MB.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
TARGET_SECONDS, TARGET_RSS_MB = 60, 300


def settings_file(directory: Path) -> Path:
    path = directory / "settings.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{directory / "bench.sqlite3"}"\n'
        '[logging]\nformat = "json"\nlevel = "warning"\n'
        '[pricing.flavors]\n"m1.small" = 0.10\n'
        "[configurations.default]\ncredit_notifications = [72, 24]\n"
        "[configurations.default.suspension]\nenabled = true\n"
        "[configurations.default.auto_invoicing]\nenabled = true\n"
    )
    return path


def populate(directory: Path, clients: int, hours: int) -> None:
    from bridge.settings import load_settings
    from bridge.store.database import make_engine, migrate

    engine = make_engine(load_settings(settings_file(directory)).database_url())
    migrate(engine)
    engine.dispose()
    connection = sqlite3.connect(directory / "bench.sqlite3")
    connection.execute("PRAGMA synchronous=OFF")
    created = _db_time(NOW - timedelta(days=30))
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
        "INSERT INTO ledger_entries (client_id, kind, amount, currency, reference, description, occurred_at,"
        " created_at) VALUES (?, 'payment', ?, 'USD', ?, 'initial', ?, ?)",
        ((n, _credit(n), f"BB-PAYMENT-{n}-init", created, created) for n in range(1, clients + 1)),
    )
    connection.executemany(
        "INSERT INTO usage_records (source, window_start, resource_id, window_end, resource_name, owner, plan,"
        " hours, tokens, collected_at) VALUES ('openstack', ?, ?, ?, ?, ?, 'm1.small', '1.00000000', NULL, ?)",
        _usage(clients, hours),
    )
    connection.commit()
    connection.close()


def _credit(client: int) -> str:
    """Nine clients in ten are well in credit; the tenth is near or past its limit and needs decisions."""
    return "1000.00000000" if client % 10 else f"{client % 50}.00000000"


def _usage(clients: int, hours: int) -> Iterator[tuple[str, ...]]:
    first = NOW - timedelta(hours=hours)
    windows = [
        (_db_time(first + timedelta(hours=h)), _db_time(first + timedelta(hours=h + 1))) for h in range(hours)
    ]
    collected = _db_time(NOW)
    for client in range(1, clients + 1):
        for start, end in windows:
            yield (start, f"vm-{client}", end, f"vm-{client}", f"p-{client}", collected)


def _db_time(instant: datetime) -> str:
    return instant.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def run(directory: Path) -> None:
    from bridge.bootstrap import build_app
    from bridge.clock import FixedClock
    from bridge.logs import configure
    from bridge.settings import load_settings

    configure("warning", "json")
    app = build_app(load_settings(directory / "settings.toml"), clock=FixedClock(NOW))
    began = time.perf_counter()
    reports = app.credit.process(NOW)
    elapsed = time.perf_counter() - began
    informational = {"no_auto_invoice", "warning"}
    decided = sum(1 for r in reports if any(d["action"] not in informational for d in r.decisions))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{elapsed:.3f} {len(reports)} {decided} {peak_mb:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--run-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_only:
        run(args.run_only)
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        began = time.perf_counter()
        populate(directory, args.clients, args.hours)
        setup = time.perf_counter() - began
        child = subprocess.run(
            [sys.executable, __file__, "--run-only", str(directory)],
            check=True,
            capture_output=True,
            text=True,
        )
    elapsed_text, clients_text, decided_text, peak_text = child.stdout.split()
    elapsed, peak_mb = float(elapsed_text), float(peak_text)
    print(
        f"clients:  {int(clients_text):,} with {args.hours} h of usage each (set up in {setup:.0f} s, not counted)"
    )
    print(
        f"run:      {elapsed:.1f} s, {int(decided_text):,} clients with actions (notify, suspend, auto-invoice) "
        f"(target <= {TARGET_SECONDS} s): {'OK' if elapsed <= TARGET_SECONDS else 'OVER'}"
    )
    print(
        f"peak RSS: {peak_mb:.0f} MB (target <= {TARGET_RSS_MB} MB): {'OK' if peak_mb <= TARGET_RSS_MB else 'OVER'}"
    )


if __name__ == "__main__":
    main()
