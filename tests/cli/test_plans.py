"""`billing-bridge plan|discount|period|subscription` as an operator uses them (seeds 003 and 004)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.domain.usage import UsageRecord
from bridge.settings import Settings
from bridge.store import usage as usage_store
from bridge.store.database import make_engine
from tests.support.cli import run_cli
from tests.support.usage import NOV, OCT, hourly


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2022, 10, 1, tzinfo=UTC))


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(clock: FixedClock, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`billing-bridge ARGS` with the test's clock, injected where the CLI builds the app."""

    def build(settings: Settings, **edges: Any) -> App:
        return build_app(settings, clock=clock, **edges)

    return lambda *args: run_cli(capsys, *args, app_factory=build)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cfg(tmp_path: Path, database_url: str, clock: FixedClock, cli: Cli) -> list[str]:
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\nlevel = "warning"\n'
        '[pricing.flavors]\n"m1.large" = "0.10"\n'
        '[plans.gold]\ndescription = "large VMs for less"\nflavors = { "m1.large" = "0.08" }\n'
    )
    config = ["--config", str(path)]
    assert cli(*config, "client", "add", "--email", "ops@acme.com", "--name", "Acme")[0] == 0
    assert cli(*config, "client", "link", "1", "--openstack-project", "p-1")[0] == 0
    return config


def collect(engine: Engine, records: list[UsageRecord], at: datetime) -> None:
    """Store OpenStack usage as the collector would, one window at a time."""
    with engine.begin() as connection:
        for record in records:
            usage_store.ingest_window(connection, "openstack", record.window, [record], at)


def test_plan_assign_dry_run_json_prints_old_and_new_totals_then_replaces_the_invoice_once(
    cfg: list[str], engine: Engine, clock: FixedClock, cli: Cli
) -> None:
    collect(engine, hourly("a", "p-1", "m1.large", OCT, 100), OCT)
    clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
    assert cli(*cfg, "invoice", "--date", "2022-11-01")[0] == 0
    collect(engine, hourly("a", "p-1", "m1.large", NOV, 30), NOV)
    clock.set(datetime(2022, 11, 2, 12, tzinfo=UTC))

    code, out, err = cli(
        *cfg, "plan", "assign", "1", "gold", "--start", "current-period", "--dry-run", "--json"
    )
    assert code == 0, err
    document = json.loads(out)
    (current,) = document["invoices"]
    assert (document["dry_run"], document["recorded"], document["start"]) == (
        True,
        True,
        "2022-11-01T00:00:00+00:00",
    )
    assert (current["state"], current["old_total"], current["new_total"], current["difference"]) == (
        "open",
        "3.00",
        "2.40",
        "-0.60",
    )
    assert cli(*cfg, "plan", "list", "1", "--json")[1].count('"plan"') == 0, "nothing recorded"

    code, out, _ = cli(*cfg, "plan", "assign", "1", "gold", "--start", "previous-period", "--json")
    assert code == 0
    previous, current = json.loads(out)["invoices"]
    assert (previous["state"], previous["reference"], previous["replacement"], previous["action"]) == (
        "issued",
        "BB-1-2022-10",
        "BB-1-2022-10-R1",
        "cancelled and replaced",
    )
    assert (previous["old_total"], previous["new_total"], current["new_total"]) == ("10.00", "8.00", "2.40")

    code, out, _ = cli(*cfg, "plan", "assign", "1", "gold", "--start", "previous-period")
    assert code == 0
    assert out.splitlines()[0].endswith("already in force, nothing recorded")
    assert "2022-10 (issued BB-1-2022-10-R1): old 8.00  new 8.00  difference 0.00 USD  -> unchanged" in out
    listed = json.loads(cli(*cfg, "invoice", "list", "--json")[1])
    assert sorted((item["reference"], item["status"], item["number"]) for item in listed) == [
        ("BB-1-2022-10", "cancelled", "1"),
        ("BB-1-2022-10-R1", "unpaid", "2"),
    ]


def test_dry_run_text_shows_the_invoice_lines_side_by_side(
    cfg: list[str], engine: Engine, clock: FixedClock, cli: Cli
) -> None:
    collect(engine, hourly("a", "p-1", "m1.large", NOV, 30), NOV)
    clock.set(datetime(2022, 11, 2, 12, tzinfo=UTC))
    code, out, _ = cli(
        *cfg, "discount", "add", "1", "--percent", "10", "--start", "current-period", "--dry-run"
    )
    assert code == 0
    header, invoice, columns, line = out.splitlines()
    assert header.endswith("(current-period): would be recorded (dry run)")
    assert invoice.startswith("  2022-11 (open): old 3.00  new 2.70  difference -0.30 USD")
    assert columns.split() == ["line", "old", "new"]
    assert line.split()[-2:] == ["3.00", "2.70"] and "10% off" in line
    assert json.loads(cli(*cfg, "discount", "list", "1", "--json")[1]) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("plan", "assign", "1", "platinum", "--start", "now"),
            "plan 'platinum' is not defined; use one of: default, gold",
        ),
        (
            ("plan", "assign", "1", "gold", "--start", "soon"),
            "--start 'soon' is not one of now, current-period",
        ),
        (("plan", "assign", "1", "gold", "--start", "previous-period"), "grace period of 3 days ended"),
        (("discount", "add", "1", "--percent", "150", "--start", "now"), "--percent 150 is not a percentage"),
        (
            ("discount", "add", "1", "--amount", "5", "--start", "now", "--end", "2022-01-01"),
            "--end 2022-01-01T00:00:00+00:00 is not after",
        ),
        (
            ("period", "create", "1", "--frequency", "yearly", "--invoice-day", "30", "--invoice-month", "2"),
            "--invoice-day 30 does not exist in February; use 1 to 29",
        ),
        (("period", "modify", "99", "--invoice-day", "6"), "no billing period 99"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_field_and_changes_nothing(
    cfg: list[str], clock: FixedClock, cli: Cli, args: tuple[str, ...], message: str
) -> None:
    clock.set(datetime(2022, 11, 20, tzinfo=UTC))
    code, _, err = cli(*cfg, *args)
    assert (code, err.count("\n")) == (2, 1)
    assert message in err
    assert json.loads(cli(*cfg, "plan", "list", "1", "--json")[1])["assignments"] == []
    assert json.loads(cli(*cfg, "discount", "list", "1", "--json")[1]) == []
    assert json.loads(cli(*cfg, "period", "list", "1", "--json")[1]) == []


def test_billing_periods_from_creation_to_deletion(cfg: list[str], clock: FixedClock, cli: Cli) -> None:
    clock.set(datetime(2022, 10, 10, tzinfo=UTC))
    code, out, _ = cli(*cfg, "period", "create", "1", "--frequency", "monthly", "--invoice-day", "1")
    assert code == 0
    assert (
        "next recharge 2022-11-01" in out and "nothing happens with it until a subscription is in it" in out
    )
    cli(
        *cfg,
        "period",
        "create",
        "1",
        "--frequency",
        "yearly",
        "--invoice-day",
        "29",
        "--invoice-month",
        "2",
    )
    code, out, _ = cli(
        *cfg,
        "subscription",
        "add",
        "1",
        "--name",
        "support",
        "--amount",
        "31.00",
        "--period",
        "1",
        "--json",
    )
    assert (code, json.loads(out)["frequency"]) == (0, "monthly")
    clock.set(datetime(2022, 10, 15, tzinfo=UTC))
    code, out, _ = cli(
        *cfg,
        "subscription",
        "charge",
        "1",
        "--amount",
        "31",
        "--description",
        "extra IP",
        "--prorate",
    )
    assert (
        out.strip()
        == "charge 1 on subscription 1: bills 17.00 USD at the end of the period, prorated to 2022-11-01"
    )

    clock.set(datetime(2022, 10, 20, tzinfo=UTC))
    code, out, _ = cli(*cfg, "period", "modify", "1", "--invoice-day", "6", "--json")
    assert json.loads(out) == {
        "period": 1,
        "before": {"started_on": "2022-10-01", "next_recharge_on": "2022-11-01", "days": 31},
        "after": {"started_on": "2022-10-01", "next_recharge_on": "2022-11-06", "days": 36},
        "days_added": 5,
        "prorated": False,
    }
    code, _, err = cli(*cfg, "period", "move", "1", "--to", "2")
    assert code == 2 and "is monthly and period 2 is yearly; a subscription's frequency never changes" in err
    code, _, err = cli(*cfg, "period", "delete", "1")
    assert code == 2 and "period 1 still holds subscription(s) 1" in err

    code, out, _ = cli(*cfg, "period", "move", "1", "--new", "--invoice-day", "15")
    assert code == 0 and out.startswith("subscription 1 moved to period 3 (client 1): monthly on day 15")
    assert cli(*cfg, "period", "delete", "1") == (0, "period 1 deleted\n", "")
    periods = json.loads(cli(*cfg, "period", "list", "1", "--json")[1])
    assert [(item["id"], item["frequency"], item["next_recharge_on"]) for item in periods] == [
        (2, "yearly", "2023-02-28"),  # Feb 29, clamped outside leap years
        (3, "monthly", "2022-11-15"),
    ]
    assert [item["name"] for item in periods[1]["subscriptions"]] == ["support"]

    clock.set(datetime(2022, 11, 15, 3, tzinfo=UTC))
    code, out, _ = cli(*cfg, "period", "recharge", "--json")
    (recharged,) = json.loads(out)
    assert (recharged["reference"], recharged["total"]) == ("BB-1-P3-2022-11-15", "48.00")
    assert cli(*cfg, "period", "recharge")[1] == "no billing period is due\n"
