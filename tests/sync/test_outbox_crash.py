"""Crash safety: a push killed with SIGKILL at any moment, restarted and run to the end, leaves WHMCS
holding exactly one invoice per client and period, with the right total.

A child process runs the push job (200 invoices of 20 clients not yet in WHMCS, 4 threads); the fake
WHMCS kills it at seeded points: when call N arrives (nothing applied), after applying call N but before
answering (the bridge never learns), or a moment after answering (the bridge is recording it). The kill
points are counted in calls, not in seconds, so the test never sleeps and replays the same way each time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from bridge.bootstrap import App
from bridge.store.outbox import OutboxState
from tests.fakes.whmcs import FakeWhmcs
from tests.support.whmcs_push import (
    bridge_invoice,
    issue_invoice,
    rows,
    whmcs_invoices_carrying,
    whmcs_section,
)
from tests.sync.crash_pusher import OWNER

SEED = 20221101
CLIENTS = 20
PERIODS = [f"2021-{month:02d}" for month in range(3, 13)]  # 10 periods: 200 invoices
KILLS = 20
PHASES = ("before", "applied", "after")
DEADLINE_SECONDS = 45.0
RUN_TIMEOUT_SECONDS = 20.0


class KillingWhmcs(FakeWhmcs):
    """The fake WHMCS, able to SIGKILL the pushing process at the Nth call it receives."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen = 0
        self._armed: tuple[int, str, float] | None = None
        self._victim: int | None = None
        self._victim_known = threading.Event()
        self._guard = threading.Lock()

    def start(self) -> None:
        """Serve; a reply to a process that was just killed fails with a broken pipe, which is expected
        here and not worth a traceback on stderr."""
        super().start()
        server = self._server
        assert server is not None
        report = server.handle_error

        def quiet(request: Any, address: Any) -> None:
            if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
                report(request, address)

        server.handle_error = quiet  # type: ignore[method-assign]

    def arm(self, at_call: int, phase: str, delay: float) -> None:
        with self._guard:
            self._armed = (at_call, phase, delay)
            self._victim = None
            self._victim_known.clear()

    def aim(self, pid: int) -> None:
        self._victim = pid
        self._victim_known.set()

    def disarm(self) -> None:
        with self._guard:
            self._armed = None

    def handle(self, params: dict[str, str]) -> tuple[int, str, bytes] | None:
        with self._guard:
            self.seen += 1
            armed = self._armed
            fire = armed is not None and self.seen >= armed[0]
            if fire:
                self._armed = None
        if not fire or armed is None:
            return super().handle(params)
        _, phase, delay = armed
        if phase == "before":
            self._kill()
            return None
        reply = super().handle(params)
        if phase == "applied":
            self._kill()
            return None
        threading.Timer(delay, self._kill).start()
        return reply

    def _kill(self) -> None:
        if not self._victim_known.wait(RUN_TIMEOUT_SECONDS) or self._victim is None:
            return
        with contextlib.suppress(ProcessLookupError):  # it finished first
            os.kill(self._victim, signal.SIGKILL)


@pytest.fixture
def fake() -> Iterator[KillingWhmcs]:
    with KillingWhmcs(hold_seconds=2.0) as server:
        yield server


@pytest.fixture(scope="module")
def forkserver() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.sync.crash_pusher"])
    return context


def test_a_push_killed_at_twenty_random_moments_still_creates_each_invoice_once(
    make_app: Callable[..., App],
    database_url: str,
    fake: KillingWhmcs,
    forkserver: multiprocessing.context.BaseContext,
) -> None:
    rng = random.Random(SEED)
    whmcs = whmcs_section(fake, invoice_status="Draft", push_concurrency=4, read_timeout_seconds=5.0)
    app = make_app(owner=OWNER, whmcs=whmcs)
    expected: dict[str, Decimal] = {}
    for n in range(CLIENTS):
        client = app.clients.add(email=f"client{n}@example.com", name=f"Client Number {n}")
        for period in PERIODS:
            amounts = [f"{rng.randint(1, 99_999) / 100:.2f}" for _ in range(rng.randint(1, 3))]
            reference = issue_invoice(app.engine, client.id, period, amounts)
            expected[reference] = sum((Decimal(amount) for amount in amounts), Decimal(0))

    points: set[tuple[int, str]] = set()
    runs = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(points) < KILLS and time.monotonic() < deadline:
        at_call = fake.seen + rng.randint(1, 12)
        phase = rng.choice(PHASES)
        fake.arm(at_call, phase, delay=rng.uniform(0.0, 0.004))
        child = forkserver.Process(target=_push_once, args=(database_url, whmcs, app.clock.now().isoformat()))  # type: ignore[attr-defined]
        child.start()
        fake.aim(child.pid)
        child.join(RUN_TIMEOUT_SECONDS)
        assert not child.is_alive(), "a push run hung"
        runs += 1
        fake.disarm()
        if child.exitcode == -signal.SIGKILL:
            points.add((at_call, phase))
        else:
            assert child.exitcode == 0
            break  # the push finished before the kill point: nothing left to interrupt
    assert len(points) >= KILLS, f"only {len(points)} kills in {runs} runs before the deadline"

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


def _push_once(database_url: str, whmcs: dict[str, Any], now: str) -> None:
    from tests.sync.crash_pusher import push_once

    push_once(database_url, whmcs, now)
