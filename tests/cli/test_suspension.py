"""Staff suspension from the command line, and what a suspension does to the month's invoice (issue 15
point 8, issue 18's "suspended and not billed" bucket).

Acme's one VM runs all October 2022 (744 hours at 1.00 an hour). Staff suspend Acme on Oct 21 and resume
it on Oct 26: Nova keeps counting the VM's hours meanwhile, so 120 of the 744 collected hours are inside
the suspension. By default they are not billed (624.00 on the invoice, 120 h "suspended, not billed" in
the reconciliation); ``bill_suspended_hours = true`` bills them (744.00). No billable-seconds cap, so every
hour billed is an hour on the invoice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.settings import Settings, load_settings
from tests.support.cli import run_cli
from tests.support.usage import OCT, collect, hourly

Cli = Callable[..., tuple[int, str, str]]
SUSPENDED = datetime(2022, 10, 21, tzinfo=UTC)
RESUMED = datetime(2022, 10, 26, tzinfo=UTC)
AFTER_OCTOBER = datetime(2022, 11, 1, 2, tzinfo=UTC)


def settings_file(tmp_path: Path, database_url: str, configuration: str = "") -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\nlevel = "warning"\n'
        '[pricing.flavors]\n"m1.large" = "1.00"\n'
        "[configurations.default]\ngenerate_invoices = true\nbillable_seconds_per_month = 0  # no cap\n"
        f"{configuration}"
    )
    return path


def acme(
    tmp_path: Path, database_url: str, clock: FixedClock, capsys: pytest.CaptureFixture[str], **kw: str
) -> Cli:
    """Acme, its October VM collected, and `billing-bridge --config ... ARGS` at the test's clock."""
    config = settings_file(tmp_path, database_url, **kw)
    clock.set(OCT)
    app = build_app(load_settings(config), clock=clock)
    app.clients.add(email="ops@acme.com", name="Acme")
    app.clients.link("1", LinkKind.OPENSTACK_PROJECT, "p-1")
    collect(app, hourly("vm-1", "p-1", "m1.large", OCT, 744), at=AFTER_OCTOBER)
    app.close()

    def build(settings: Settings, **edges: Any) -> App:
        return build_app(settings, clock=clock, **edges)

    return lambda *args: run_cli(capsys, "--config", str(config), *args, app_factory=build)


def suspend_from_21_to_26(cli: Cli, clock: FixedClock) -> None:
    clock.set(SUSPENDED)
    code, out, _ = cli("client", "suspend", "1", "--reason", "chargeback on card", "--json")
    assert code == 0
    document = json.loads(out)
    assert (document["action"], document["reason"]) == ("suspended", "chargeback on card")
    assert document["acted_on"] == ["openstack:vm-1 (vm-vm-1)", "openstack project p-1"]
    clock.set(RESUMED)
    assert cli("client", "resume", "1")[0] == 0


def invoiced_total(cli: Cli) -> str:
    code, out, _ = cli("invoice", "--date", "2022-11-01", "--json")
    assert code == 0
    (issued,) = json.loads(out)["invoices"]
    return str(issued["total"])


def reconciled(cli: Cli) -> dict[str, str]:
    code, out, _ = cli("reconcile", "--month", "2022-10", "--json")
    assert code == 0
    buckets = json.loads(out)["summary"]["hours"]["by_source"]["openstack"]["buckets"]
    return {bucket: hours for bucket, hours in buckets.items() if Decimal(hours)}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(OCT)


def test_suspended_hours_are_left_off_the_invoice_and_reconciled_as_suspended_not_billed(
    tmp_path: Path, database_url: str, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = acme(tmp_path, database_url, clock, capsys)
    suspend_from_21_to_26(cli, clock)
    clock.set(AFTER_OCTOBER)

    assert invoiced_total(cli) == "624.00"  # 744 h - 120 h suspended, at 1.00
    assert reconciled(cli) == {"invoiced": "624", "suspended_not_billed": "120"}


def test_with_bill_suspended_hours_on_the_suspended_hours_are_invoiced(
    tmp_path: Path, database_url: str, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = acme(tmp_path, database_url, clock, capsys, configuration="bill_suspended_hours = true\n")
    suspend_from_21_to_26(cli, clock)
    clock.set(AFTER_OCTOBER)

    assert invoiced_total(cli) == "744.00"
    assert reconciled(cli) == {"invoiced": "744"}


def test_the_suspension_history_says_who_suspended_when_and_why(
    tmp_path: Path, database_url: str, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = acme(tmp_path, database_url, clock, capsys)
    suspend_from_21_to_26(cli, clock)
    code, out, _ = cli("credit", "show", "1", "--json")
    assert code == 0
    assert json.loads(out)["suspensions"] == [
        {
            "from": SUSPENDED.isoformat(),
            "to": RESUMED.isoformat(),
            "reason": "chargeback on card",
            "by": "staff",
            "shelved": False,
        }
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("client", "suspend", "99"), "error: no client"),
        (("client", "resume", "1"), "error: client 1 is not suspended; nothing to resume"),
        (("client", "suspend", "1", "--reason", "x" * 5000), "error: --reason"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    tmp_path: Path,
    database_url: str,
    clock: FixedClock,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    cli = acme(tmp_path, database_url, clock, capsys)
    code, out, err = cli(*args)
    assert (code, out) == (2, "")
    assert err.startswith(message), err
    assert len(err.splitlines()) == 1
    assert json.loads(cli("credit", "show", "1", "--json")[1])["suspensions"] == []


def test_suspending_a_suspended_client_is_refused_naming_the_way_out(
    tmp_path: Path, database_url: str, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = acme(tmp_path, database_url, clock, capsys)
    clock.set(SUSPENDED)
    assert cli("client", "suspend", "1")[0] == 0
    code, _, err = cli("client", "suspend", "1", "--shelve")
    assert code == 2
    assert err.strip() == (
        "error: client 1 is already suspended since 2022-10-21T00:00:00+00:00; "
        "`billing-bridge client resume 1` resumes it"
    )
