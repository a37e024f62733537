"""A push that lost its lease sends nothing more, and another push never takes a row that is in flight.

The issue's story, on every database: a push is paused (SIGSTOP) while WHMCS is slow to apply its
CreateInvoice, its lease expires, a second push runs, WHMCS applies the first call, and the first push is
resumed. The resumed push must stop before its next call, the second must leave the in-flight row alone,
and WHMCS must end with one invoice per client and period. Everything is ordered by events (the fake
holds the call, the test releases it) and by the shared clock the test moves; nothing waits on time.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.store.outbox import OutboxState
from tests.fakes.whmcs import FakeWhmcs, Trap
from tests.support.crash_pusher import EXIT_FAILED, HANG_GUARD_SECONDS, FileClock
from tests.support.whmcs_push import issue_invoice, row, whmcs_invoices_carrying, whmcs_section

LEASE = timedelta(seconds=30)
SETTLE = timedelta(seconds=120)


def test_a_paused_push_whose_lease_expired_sends_nothing_more_and_whmcs_holds_one_invoice(
    make_app: Callable[..., App],
    database_url: str,
    clock: FixedClock,
    tmp_path: Path,
    fake: FakeWhmcs,
    forkserver: multiprocessing.context.BaseContext,
) -> None:
    whmcs = whmcs_section(
        fake, push_concurrency=1, read_timeout_seconds=30.0, in_doubt_settle_seconds=SETTLE.total_seconds()
    )
    second = make_app(owner="daemon-b", whmcs=whmcs, daemon={"lease_seconds": int(LEASE.total_seconds())})
    clients = [second.clients.add(email=f"c{n}@example.com", name=f"Client {n}").id for n in (1, 2)]
    assert second.runner.run("push").status == "succeeded"  # both clients are in WHMCS
    slow, other = (issue_invoice(second.engine, client, "2022-10", ["12.34"]) for client in clients)
    shared = FileClock(tmp_path / "clock")
    shared.set(clock.now())
    fake.trap(Trap(fake.received + 1, "hold", lambda: None, writes_only=True))  # WHMCS is slow to apply it

    first = forkserver.Process(  # type: ignore[attr-defined]
        target=_push_once, args=(database_url, whmcs, str(tmp_path / "clock"), "daemon-a")
    )
    first.start()
    (held,) = fake.wait_held()
    assert (held.action, held.params["notes"].split(":")[0]) == ("CreateInvoice", slow)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        shared.set(clock.advance(LEASE + timedelta(seconds=1)))  # the paused push's lease expires

        outcome = second.runner.run("push")

        assert outcome.status == "succeeded", outcome.error
        assert len(whmcs_invoices_carrying(fake, other)) == 1
        assert whmcs_invoices_carrying(fake, slow) == [], "the row in flight was neither looked up nor sent"
        assert row(second.engine, slow).state is OutboxState.IN_DOUBT
        fake.release_held()  # WHMCS applies the first push's call at last
        calls = fake.call_count()
    finally:
        os.kill(first.pid, signal.SIGCONT)
    first.join(HANG_GUARD_SECONDS)
    if first.is_alive():
        first.kill()
        pytest.fail("the resumed push did not end: it hangs")

    assert first.exitcode == EXIT_FAILED, "the resumed push stops with an error (its lease was lost)"
    assert fake.call_count() == calls, "the resumed push made no call after losing its lease"
    assert row(second.engine, slow).state is OutboxState.IN_DOUBT, "its answer was not recorded either"

    clock.advance(SETTLE)
    assert second.runner.run("push").status == "succeeded"

    (invoice,) = whmcs_invoices_carrying(fake, slow)
    assert (row(second.engine, slow).state, row(second.engine, slow).remote_id) == (
        OutboxState.DONE,
        str(invoice.id),
    )
    assert len(whmcs_invoices_carrying(fake, other)) == 1
    assert len(fake.invoices) == 2


def _push_once(database_url: str, whmcs: dict[str, Any], clock_path: str, owner: str) -> None:
    from tests.support.crash_pusher import push_once

    push_once(database_url, whmcs, clock_path, owner)
