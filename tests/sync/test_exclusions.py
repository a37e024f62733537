"""Month end and a plan recalculation exclude each other across daemons, through the database (issue 17).

Month end's lease is per daemon now (several daemons share its chunks), so it can no longer be the lease a
recalculation takes to keep out of its way. Here two apps with their own owners, as daemons on two hosts,
share one database: while one runs month end, the other's `plan assign` is refused with one line naming
who runs it, and while a recalculation runs, month end does not start anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.settings import Settings
from tests.support.cli import run_cli

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2022, 11, 1, 2, tzinfo=UTC))


@pytest.fixture
def other_host(
    tmp_path: Path, database_url: str, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """`billing-bridge --config … ARGS` run by the operator on host B, against the shared database."""
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\nlevel = "warning"\n'
        '[pricing.flavors]\n"m1.large" = "0.10"\n'
        '[plans.gold]\ndescription = "large VMs for less"\nflavors = { "m1.large" = "0.08" }\n'
    )

    def build(settings: Settings, **edges: Any) -> App:
        return build_app(settings, clock=clock, owner="host-b:2", **edges)

    def cli(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, "--config", str(path), *args, app_factory=build)

    assert cli("client", "add", "--email", "ops@acme.com", "--name", "Acme")[0] == 0
    return cli


def test_a_plan_assignment_is_refused_while_another_daemon_runs_month_end_and_goes_after(
    make_app: Callable[..., App], other_host: Cli
) -> None:
    month_end = make_app(owner="host-a:1")

    with month_end.runner.holding("invoicing") as lease:  # host A is in the middle of month end
        assert lease is not None
        code, _, err = other_host("plan", "assign", "1", "gold", "--start", "now")

        assert code == 1
        assert err.strip().splitlines() == [
            "error: invoicing is running in host-a:1 right now; try again when it finishes"
        ]
        assert other_host("plan", "list", "1")[1].startswith("client 1 is on plan default")

    code, _, err = other_host("plan", "assign", "1", "gold", "--start", "now")
    assert code == 0, err
    assert other_host("plan", "list", "1")[1].startswith("client 1 is on plan gold")


def test_month_end_does_not_start_while_another_daemon_recalculates_and_runs_after(
    make_app: Callable[..., App],
) -> None:
    month_end = make_app(owner="host-a:1")
    recalculating = make_app(owner="host-b:2")

    with recalculating.runner.holding("recalculation") as lease:
        assert lease is not None
        outcome = month_end.runner.run("invoicing")

        assert (outcome.status, outcome.error) == (
            "skipped",
            "a plan recalculation is running in host-b:2 right now; try again when it finishes",
        )
        with month_end.runner.holding("recalculation") as second:
            assert second is None, "one recalculation at a time, across daemons"

    assert month_end.runner.run("invoicing").status == "succeeded"


def test_daemons_running_month_end_together_do_not_exclude_each_other(
    make_app: Callable[..., App],
) -> None:
    first, second = make_app(owner="host-a:1"), make_app(owner="host-b:2")

    with first.runner.holding("invoicing") as lease:
        assert lease is not None
        assert second.runner.run("invoicing").status == "succeeded"
