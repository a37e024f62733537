"""Issue 14 through the command line: SolusVM October 2022 billed from runtime, however often `sync` ran.

Four SolusVM users, one server each, on plans of 2 tokens/h at 0.01 per token: a server that ran all
month; the same on a plan capped at 1000 tokens; a server created 10-10 08:30 and deleted 10-12 08:10
(47 h 40 min: 48 h); a server stopped 10-10 12:00 and started 10-17 12:00 (a week less: 576 h). SolusVM
records each change in its task list and activity log at the moment it happens (the fake's clock); the
bridge syncs on its own schedule: once a day, every hour, or once a day with a three-day outage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.settings import Settings, load_settings
from tests.fakes.solusvm import FakeSolusVM
from tests.support.cli import run_cli

Cli = Callable[..., tuple[int, str, str]]
START = datetime(2022, 9, 30, 9, tzinfo=UTC)
LAST_SYNC = datetime(2022, 11, 1, 9, tzinfo=UTC)
OUTAGE = (datetime(2022, 10, 14, 9, tzinfo=UTC), datetime(2022, 10, 17, 9, tzinfo=UTC))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2022, 9, 20, tzinfo=UTC))


@pytest.fixture
def solus(clock: FixedClock) -> Iterator[FakeSolusVM]:
    """The node shares the bridge's clock: what it records happens at the moment the test says."""
    with FakeSolusVM(per_page=50, clock=clock) as fake:
        yield fake


@pytest.fixture
def cli(clock: FixedClock, capsys: pytest.CaptureFixture[str], config: Path) -> Cli:
    config.write_text(config.read_text().replace("token_price = 0.00100", "token_price = 0.01"))

    def build(settings: Settings, **edges: Any) -> App:
        return build_app(settings, clock=clock, **edges)

    return lambda *args: run_cli(capsys, "--config", str(config), *args, app_factory=build)


def october(
    solus: FakeSolusVM, clock: FixedClock, cli: Cli, syncs: list[datetime], sync: Callable[[], None]
) -> dict[str, int]:
    """Play October on the node and ``sync`` at ``syncs``; the SolusVM user id of each client's e-mail."""
    plan = solus.add_plan("two", tokens_per_hour=2, tokens_per_month=2000)["id"]
    capped = solus.add_plan("two-capped", tokens_per_hour=2, tokens_per_month=1000)["id"]
    users = {
        name: solus.add_user(f"{name}@example.com")["id"] for name in ("month", "capped", "short", "paused")
    }
    servers: dict[str, int] = {}

    def create(name: str, plan_id: int) -> None:
        servers[name] = solus.create_server(name, user_id=users[name], plan_id=plan_id)["id"]

    changes = [
        (datetime(2022, 9, 20, tzinfo=UTC), lambda: create("month", plan)),
        (datetime(2022, 9, 20, tzinfo=UTC), lambda: create("capped", capped)),
        (datetime(2022, 9, 20, tzinfo=UTC), lambda: create("paused", plan)),
        (datetime(2022, 10, 10, 8, 30, tzinfo=UTC), lambda: create("short", plan)),
        (datetime(2022, 10, 10, 12, tzinfo=UTC), lambda: solus.stop_server(servers["paused"])),
        (datetime(2022, 10, 12, 8, 10, tzinfo=UTC), lambda: solus.delete_server(servers["short"])),
        (datetime(2022, 10, 17, 12, tzinfo=UTC), lambda: solus.start_server(servers["paused"])),
    ]
    steps = sorted(
        [(at, 0, act) for at, act in changes] + [(at, 1, None) for at in syncs], key=lambda s: s[:2]
    )
    for at, _, act in steps:
        clock.set(at)
        if act is not None:
            act()
            continue
        sync()
    for name, user_id in users.items():
        assert cli("client", "add", "--email", f"{name}@example.com", "--name", name)[0] == 0
        assert cli("client", "link", f"{name}@example.com", "--solusvm-user", str(user_id))[0] == 0
    return users


def sync_through_cli(cli: Cli) -> None:
    code, _, err = cli("sync", "--source", "solusvm")
    assert code == 0, err


def sync_through_app(app: App) -> None:
    (report,) = app.usage_sync().run(("solusvm",))
    assert report.error is None, report.error


def every(step: timedelta, *, skip: tuple[datetime, datetime] | None = None) -> list[datetime]:
    instants, at = [], START
    while at <= LAST_SYNC:
        if skip is None or not skip[0] < at < skip[1]:
            instants.append(at)
        at += step
    return instants


def solusvm_lines(cli: Cli, clock: FixedClock) -> dict[str, dict[str, Any]]:
    """Each client's SolusVM line on the invoice of 2022-11-01, by client name."""
    clock.set(datetime(2022, 11, 2, 9, tzinfo=UTC))
    code, out, err = cli("invoice", "--date", "2022-11-01", "--json")
    assert code == 0, err
    lines = {}
    for invoice in json.loads(out)["invoices"]:
        ((line,),) = [group["lines"] for group in invoice["groups"] if group["source"] == "solusvm"]
        lines[invoice["client"]["name"]] = line
    return lines


SCHEDULES = {
    "polls 24 h apart": every(timedelta(days=1)),
    "a three-day gap": every(timedelta(days=1), skip=OUTAGE),
    "polls every hour": every(timedelta(hours=1)),
}
#: The month-long server's 744 hours, (observed, inferred): an hour is observed when a poll fell in it.
MONTH_SPLIT = {"polls 24 h apart": (31, 713), "a three-day gap": (29, 715), "polls every hour": (744, 0)}


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_october_is_billed_from_runtime_whatever_the_sync_schedule(
    schedule: str, solus: FakeSolusVM, clock: FixedClock, cli: Cli, config: Path
) -> None:
    syncs = SCHEDULES[schedule]
    if len(syncs) < 100:
        october(solus, clock, cli, syncs, lambda: sync_through_cli(cli))
    else:  # the same sync the command runs, on one app: 770 command lines would take a minute and a half
        app = build_app(load_settings(config), clock=clock)
        october(solus, clock, cli, syncs[:-1], lambda: sync_through_app(app))
        clock.set(syncs[-1])
        sync_through_cli(cli)
    lines = solusvm_lines(cli, clock)
    billed = {
        name: (line["billed_hours"], line["tokens"], line["amount"], line["capped"])
        for name, line in lines.items()
    }
    assert billed == {
        "month": ("744", 1488, "14.88", False),
        "capped": ("744", 1000, "10.00", True),
        "short": ("48", 96, "0.96", False),
        "paused": ("576", 1152, "11.52", False),
    }
    for line in lines.values():
        assert line["observed_hours"] + line["inferred_hours"] == int(line["billed_hours"])
    assert (lines["month"]["observed_hours"], lines["month"]["inferred_hours"]) == MONTH_SPLIT[schedule]
    code, out, err = cli(
        "usage",
        "show",
        "--client",
        "month@example.com",
        "--from",
        "2022-10-01",
        "--to",
        "2022-11-01",
        "--json",
    )
    assert code == 0, err
    (shown,) = json.loads(out)["resources"]
    assert (shown["hours"], shown["observed_hours"], shown["inferred_hours"]) == (
        "744",
        *MONTH_SPLIT[schedule],
    )


def test_without_timestamps_on_tasks_and_log_entries_only_hours_the_evidence_supports_are_billed(
    solus: FakeSolusVM, clock: FixedClock, cli: Cli
) -> None:
    """The current SDK's Task has no timestamps: a change then lies somewhere between the two syncs around
    its first listing, and the day it may lie in is not billed (never more than the true runtime)."""
    solus.timestamps = "none"
    october(solus, clock, cli, SCHEDULES["polls 24 h apart"], lambda: sync_through_cli(cli))
    billed = {name: line["billed_hours"] for name, line in solusvm_lines(cli, clock).items()}
    # short: from its created_at (the server list has it) to the sync before its deletion was listed;
    # paused: the days in which the stop and the start may lie are not billed either
    assert billed == {"month": "744", "capped": "744", "short": "25", "paused": "552"}
