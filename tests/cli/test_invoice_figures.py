"""What invoices show the operator and the client (issue 15): totals in the currency's minor unit, the
billing rule of each source in the footer, and a dry run's numbers as the real run assigns them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.domain.usage import UsageRecord, Window
from bridge.settings import load_settings
from bridge.store import usage as usage_store
from tests.support.cli import cli_at
from tests.support.usage import OCT, hourly

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2022, 11, 1, 2, tzinfo=UTC))


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\nlevel = "warning"\n'
        '[pricing]\ntoken_price = "0.01"\n[pricing.flavors]\n"m1.large" = "1.00"\n'
        '[pricing.solusvm_plans."3"]\ntokens_per_hour = 7\n'
    )
    return path


@pytest.fixture
def app(config: Path, clock: FixedClock) -> Iterator[App]:
    app = build_app(load_settings(config), clock=clock)
    yield app
    app.close()


@pytest.fixture
def cli(config: Path, clock: FixedClock, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`billing-bridge --config ... ARGS` at the test's clock."""
    return cli_at(config, clock, capsys)


def collect(app: App, records: list[UsageRecord]) -> None:
    with app.uow.writing() as tx:
        for record in records:
            usage_store.ingest_window(tx, record.source, record.window, [record], record.window.end)


def client(app: App, n: int, kind: LinkKind = LinkKind.OPENSTACK_PROJECT, owner: str | None = None) -> None:
    app.clients.add(email=f"client{n}@example.com", name=f"Client {n}")
    app.clients.link(str(n), kind, owner or f"p-{n}")


def test_invoice_list_prints_totals_to_the_cent(app: App, cli: Cli) -> None:
    client(app, 1)
    collect(app, hourly("vm-1", "p-1", "m1.large", OCT, 30))
    assert cli("invoice", "--date", "2022-11-01")[0] == 0
    code, out, _ = cli("invoice", "list")
    assert code == 0 and re.search(r" 30\.00 USD  BB-1-2022-10$", out.strip())
    (listed,) = json.loads(cli("invoice", "list", "--json")[1])
    assert (listed["total"], listed["currency"]) == ("30.00", "USD")


def footer(cli: Cli, number: str) -> str:
    html = cli("invoice", "show", number, "--html")[1]
    found = re.search(r"<footer>(.*?)</footer>", html, re.DOTALL)
    assert found is not None
    return " ".join(found.group(1).split())


def test_the_footer_says_how_each_source_on_the_invoice_bills_its_hours(app: App, cli: Cli) -> None:
    client(app, 1)
    client(app, 2, LinkKind.SOLUSVM_USER, "7")
    client(app, 3)
    app.clients.link("3", LinkKind.SOLUSVM_USER, "8")
    ninety_minutes = UsageRecord(
        "openstack", "vm-1", "web-1", "p-1", "m1.large", Window(OCT, OCT + timedelta(hours=1)), Decimal("1.5")
    )
    collect(app, [ninety_minutes])
    collect(app, hourly("41", "7", "3", OCT, 2, source="solusvm"))
    collect(app, hourly("vm-3", "p-3", "m1.large", OCT, 2) + hourly("42", "8", "3", OCT, 2, source="solusvm"))
    code, _, err = cli("invoice", "--date", "2022-11-01")
    assert code == 0, err

    openstack, solusvm, both = footer(cli, "1"), footer(cli, "2"), footer(cli, "3")
    assert "OpenStack usage is billed by the exact time each server ran" in openstack
    assert "started hour" not in openstack
    assert "SolusVM usage is billed per started hour" in solusvm and "OpenStack" not in solusvm
    assert "OpenStack usage is billed by the exact time" in both and "SolusVM usage is billed per" in both


def test_a_dry_run_over_more_than_500_clients_shows_the_numbers_the_real_run_assigns(
    app: App, cli: Cli
) -> None:
    clients = 503  # more than one chunk of 500 clients
    for n in range(1, clients + 1):
        client(app, n)
    window = Window(OCT, OCT + timedelta(hours=1))
    records = [
        UsageRecord("openstack", f"vm-{n}", f"vm-{n}", f"p-{n}", "m1.large", window, Decimal(1))
        for n in range(1, clients + 1)
    ]
    with app.uow.writing() as tx:
        usage_store.ingest_window(tx, "openstack", window, records, window.end)

    def numbers(*args: str) -> list[tuple[int, str]]:
        code, out, err = cli("invoice", "--date", "2022-11-01", *args, "--json")
        assert code == 0, err
        return [(item["client"]["id"], item["number"]) for item in json.loads(out)["invoices"]]

    previewed = numbers("--dry-run")
    assert previewed == [(n, str(n)) for n in range(1, clients + 1)]
    assert numbers() == previewed
