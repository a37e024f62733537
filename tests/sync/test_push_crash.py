"""Crash safety: a push killed with SIGKILL at any moment, restarted and run to the end, leaves WHMCS
holding exactly one invoice per client and period, with the right total.

A child process runs the push job (200 invoices of 20 clients not yet in WHMCS, 4 threads); the fake
WHMCS kills it at seeded points: when call N arrives (nothing applied), after applying call N but before
answering (the bridge never learns), or just after answering (the bridge is recording it). The kill
points are counted in calls, never in seconds: the test never sleeps, bounds its loop by a number of runs,
and replays the same way each time. Each restart is one settle time later on the shared clock, so the
rows a kill left in doubt are looked up by the next run.
"""

from __future__ import annotations

import ast
import multiprocessing
import random
import signal
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.store.outbox import OutboxState
from tests.fakes.whmcs import FakeWhmcs, Trap, TrapPhase
from tests.support.crash_pusher import HANG_GUARD_SECONDS, OWNER, FileClock, Victim
from tests.support.whmcs_push import (
    bridge_invoice,
    issue_invoice,
    rows,
    whmcs_invoices_carrying,
    whmcs_section,
)

SEED = 20221101
CLIENTS = 20
PERIODS = [f"2021-{month:02d}" for month in range(3, 13)]  # 10 periods: 200 invoices
KILLS = 20
MAX_RUNS = 3 * KILLS
"""Runs the loop may take to reach KILLS kill points (a run that finishes first ends the loop)."""
PHASES: tuple[TrapPhase, ...] = ("before", "applied", "after")
SETTLE = timedelta(seconds=60)
RESTART = SETTLE + timedelta(seconds=1)
"""How far the shared clock moves between two runs: past the settle time and the 30 s lease."""


def test_a_push_killed_at_twenty_random_moments_still_creates_each_invoice_once(
    make_app: Callable[..., App],
    database_url: str,
    clock: FixedClock,
    tmp_path: Path,
    fake: FakeWhmcs,
    forkserver: multiprocessing.context.BaseContext,
) -> None:
    rng = random.Random(SEED)
    whmcs = whmcs_section(
        fake,
        invoice_status="Draft",
        push_concurrency=4,
        read_timeout_seconds=5.0,
        in_doubt_settle_seconds=SETTLE.total_seconds(),
    )
    app = make_app(owner=OWNER, whmcs=whmcs, daemon={"lease_seconds": 30})
    expected: dict[str, Decimal] = {}
    for n in range(CLIENTS):
        client = app.clients.add(email=f"client{n}@example.com", name=f"Client Number {n}")
        for period in PERIODS:
            amounts = [f"{rng.randint(1, 99_999) / 100:.2f}" for _ in range(rng.randint(1, 3))]
            reference = issue_invoice(app.engine, client.id, period, amounts)
            expected[reference] = sum((Decimal(amount) for amount in amounts), Decimal(0))
    shared = FileClock(tmp_path / "clock")

    points: set[tuple[int, str]] = set()
    runs = 0
    while len(points) < KILLS and runs < MAX_RUNS:
        runs += 1
        shared.set(clock.advance(RESTART))
        at_call = fake.received + rng.randint(1, 12)
        phase = rng.choice(PHASES)
        victim = Victim()
        fake.trap(Trap(at_call, phase, victim.kill))
        child = forkserver.Process(  # type: ignore[attr-defined]
            target=_push_once, args=(database_url, whmcs, str(tmp_path / "clock"))
        )
        child.start()
        victim.aim(child.pid)
        child.join(HANG_GUARD_SECONDS)
        if child.is_alive():
            child.kill()
            pytest.fail(f"push run {runs} did not end (no exit after {HANG_GUARD_SECONDS:.0f} s): it hangs")
        fake.disarm()
        if child.exitcode == -signal.SIGKILL:
            points.add((at_call, phase))
        else:
            assert child.exitcode == 0
            break  # the push finished before the kill point: nothing left to interrupt
    assert len(points) >= KILLS, f"only {len(points)} kills in {runs} runs"

    clock.advance(RESTART)
    outcome = app.runner.run("push")  # the daemon, restarted for good

    assert outcome.status == "succeeded", outcome.error
    assert {row.state for row in rows(app.engine)} == {OutboxState.DONE}
    assert sorted(client.email for client in fake.clients.values()) == sorted(
        f"client{n}@example.com" for n in range(CLIENTS)
    )
    for reference, total in expected.items():
        pushed = whmcs_invoices_carrying(fake, reference)
        assert len(pushed) == 1, f"{reference}: {len(pushed)} invoices in WHMCS"
        (invoice,) = pushed
        assert (invoice.total, invoice.status) == (total, "Unpaid"), reference
        assert bridge_invoice(app.engine, reference).remote_id == str(invoice.id)
    assert len(fake.invoices) == len(expected)


def _push_once(database_url: str, whmcs: dict[str, Any], clock_path: str) -> None:
    from tests.support.crash_pusher import push_once

    push_once(database_url, whmcs, clock_path)


WALL_CLOCK = {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time", "time_ns", "sleep"}


def test_no_test_reads_the_wall_clock_or_sleeps() -> None:
    """Issue 12, point 9: a crash test bounded by a 45 s deadline failed CI on a loaded machine. Tests are
    bounded by counts and events; ``time.sleep``, ``time.monotonic`` and their kin appear in none."""
    found = []
    for path in sorted(Path(__file__).parents[1].rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "time"
                and node.attr in WALL_CLOCK
            ) or (isinstance(node, ast.ImportFrom) and node.module == "time"):
                found.append(f"{path.relative_to(Path(__file__).parents[2])}:{node.lineno}")
    assert found == []
