"""Progress on long manual runs: a bar with counts on a terminal, nothing but the output elsewhere.

The command runs in a child process whose standard output is a pseudo-terminal (Python's pty module), as
an operator's shell would give it; its standard error (the JSON logs) goes to a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import insert

from bridge.bootstrap import build_app
from bridge.domain.usage import UsageRecord, Window
from bridge.settings import load_settings
from bridge.store import tables
from bridge.store import usage as usage_store
from bridge.store.database import make_engine, migrate

CLIENTS = 20_000
WITH_USAGE = 20
"""Clients with an hour of October 2022 collected (every 1000th): they get invoices, the rest are looked at
and have nothing to invoice, so the run stays quick while the bar counts all 20,000."""
OCT = datetime(2022, 10, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Shown:
    """What the operator's terminal received on standard output, and the exit code."""

    code: int
    out: str


@pytest.fixture(scope="module")
def many_clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A settings file over SQLite holding 20,000 clients with an OpenStack project each, written in bulk by
    one statement each, and an hour of usage of a few stored through the collector's ingest."""
    directory = tmp_path_factory.mktemp("progress")
    config = directory / "settings.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{directory / "bridge.sqlite3"}"\n'
        '[logging]\nformat = "json"\nlevel = "info"\n'
        '[health]\nenabled = false\n[billing]\ncurrency = "EUR"\n'
        '[pricing.flavors]\n"m1.small" = 0.0125\n'
    )
    settings = load_settings(config)
    seed_clients(settings.database_url(), CLIENTS)
    app = build_app(settings)
    try:
        with app.uow.writing() as tx:
            window = Window(OCT, OCT + timedelta(hours=1))
            records = [
                UsageRecord("openstack", f"vm-{n}", f"vm-{n}", f"p-{n}", "m1.small", window, Decimal(1))
                for n in range(1, CLIENTS + 1, CLIENTS // WITH_USAGE)
            ]
            usage_store.ingest_window(tx, "openstack", window, records, window.end)
    finally:
        app.close()
    yield config


def seed_clients(url: str, count: int) -> None:
    """``count`` clients, each linked to its OpenStack project ``p-<id>``, in two bulk inserts."""
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as tx:
        tx.execute(
            insert(tables.clients),
            [
                {
                    "id": n,
                    "email": f"c{n}@example.com",
                    "name": f"Client {n}",
                    "currency": "EUR",
                    "configuration": "default",
                    "created_at": OCT,
                }
                for n in range(1, count + 1)
            ],
        )
        tx.execute(
            insert(tables.client_links),
            [
                {"client_id": n, "kind": "openstack_project", "external_id": f"p-{n}", "created_at": OCT}
                for n in range(1, count + 1)
            ],
        )
    engine.dispose()


def on_terminal(config: Path, *args: str) -> Shown:
    """``billing-bridge --config CONFIG ARGS`` with standard output on a 120-column pseudo-terminal."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    command = [sys.executable, "-c", "from bridge.cli import main; main()", "--config", str(config), *args]
    with open(config.parent / "stderr.log", "wb") as errors:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=follower, stderr=errors)
    os.close(follower)
    received = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    return Shown(child.wait(), received.decode().replace("\r\n", "\n"))


def positions(out: str) -> list[int]:
    """The counts the bar showed, in the order it drew them ("4500/20000")."""
    return [int(done) for done in re.findall(rf"(\d+)/{CLIENTS}\b", out)]


def test_invoicing_20000_clients_on_a_terminal_shows_a_bar_that_advances_to_the_end(
    many_clients: Path,
) -> None:
    shown = on_terminal(many_clients, "invoice", "--date", "2022-11-01")

    assert shown.code == 0, shown.out
    assert "invoicing clients" in shown.out
    drawn = positions(shown.out)
    assert len(set(drawn)) >= 10, drawn  # 500 clients a chunk: the bar moved many times
    assert drawn == sorted(drawn) and drawn[-1] == CLIENTS
    assert f"client {1 + CLIENTS // WITH_USAGE} 2022-10" in shown.out  # and then the run's own lines


@pytest.mark.parametrize(
    ("label", "command"),
    [
        ("processing clients", ("process-clients", "--dry-run")),
        ("reconciling clients", ("reconcile", "--month", "2022-10")),
    ],
)
def test_the_credit_engine_and_reconciliation_show_the_bar_too(
    many_clients: Path, label: str, command: tuple[str, ...]
) -> None:
    shown = on_terminal(many_clients, *command)

    assert shown.code == 0, shown.out
    assert label in shown.out
    drawn = positions(shown.out)
    assert len(set(drawn)) >= 10 and drawn == sorted(drawn) and drawn[-1] == CLIENTS, drawn


def test_with_json_the_terminal_gets_nothing_but_the_json_document(many_clients: Path) -> None:
    shown = on_terminal(many_clients, "invoice", "--date", "2022-11-01", "--json")

    assert shown.code == 0, shown.out
    document = json.loads(shown.out)  # the whole output parses: no bar, no text around it
    assert len(document["invoices"]) + len(document["already_invoiced"]) == WITH_USAGE


def test_not_on_a_terminal_no_bar_is_drawn(many_clients: Path) -> None:
    command = [sys.executable, "-c", "from bridge.cli import main; main()", "--config", str(many_clients)]
    done = subprocess.run(
        [*command, "invoice", "--date", "2022-11-01", "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == WITH_USAGE  # one line per client with usage, nothing else
    assert all(re.match(r"(would invoice )?client \d+ ", line) for line in lines), lines
    assert all(json.loads(line) for line in done.stderr.splitlines())  # the logs, JSON only
