"""Several daemons push at once (issue 17): they share the outbox by client through the database, every row
goes to WHMCS once, a client's calls stay in order, and a push killed mid-run loses nothing.

Each push is a child process running the daemon's ``push`` job under its own owner, as daemons on two hosts
would, against one database and the WHMCS fake at the HTTP boundary. Their clock is one file the test
moves, so a killed push's lease expires when the test says; what happens when is ordered by the fake
(it holds a call until the test lets it go, or kills its caller at the Nth call), never by waiting.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.store.outbox import OutboxState
from bridge.store.tables import push_claims
from tests.fakes.whmcs import FakeWhmcs, Trap
from tests.support.crash_pusher import HANG_GUARD_SECONDS, FileClock, Victim
from tests.support.whmcs_push import issue_invoice, rows, whmcs_invoices_carrying, whmcs_section

CLIENTS = 8
PERIODS = ("2022-09", "2022-10")
LEASE = timedelta(seconds=30)
SETTLE = timedelta(seconds=60)


class Pushes:
    """The test's app (to look), the shared clock, and pushes started as child processes."""

    def __init__(
        self,
        app: App,
        clock: FixedClock,
        database_url: str,
        whmcs: dict[str, Any],
        directory: Path,
        forkserver: multiprocessing.context.BaseContext,
    ) -> None:
        self.app = app
        self.clock = clock
        self.database_url = database_url
        self.whmcs = whmcs
        self.shared = FileClock(directory / "clock")
        self.shared.set(clock.now())
        self.forkserver = forkserver

    def start(self, owner: str, **whmcs: Any) -> multiprocessing.process.BaseProcess:
        """The push of the daemon ``owner``, with ``[whmcs]`` settings changed by ``whmcs``."""
        section = {**self.whmcs, **whmcs}
        child: multiprocessing.process.BaseProcess = self.forkserver.Process(  # type: ignore[attr-defined]
            target=_push_once, args=(self.database_url, section, str(self.shared._path), owner)
        )
        child.start()
        return child

    def run(self, owner: str) -> int | None:
        return ended(self.start(owner))

    def advance(self, by: timedelta) -> None:
        self.shared.set(self.clock.advance(by))


@pytest.fixture
def pushes(
    make_app: Callable[..., App],
    database_url: str,
    clock: FixedClock,
    tmp_path: Path,
    fake: FakeWhmcs,
    forkserver: multiprocessing.context.BaseContext,
) -> Pushes:
    """Clients not yet in WHMCS (an add_client row each), each with two invoices to push after it."""
    whmcs = whmcs_section(
        fake, push_concurrency=2, read_timeout_seconds=30.0, in_doubt_settle_seconds=SETTLE.total_seconds()
    )
    app = make_app(owner="host-c:3", whmcs=whmcs, daemon={"lease_seconds": int(LEASE.total_seconds())})
    for n in range(CLIENTS):
        client = app.clients.add(email=f"client{n}@example.com", name=f"Client Number {n}")
        for period in PERIODS:
            issue_invoice(app.engine, client.id, period, [f"{n + 1}.00"])
    return Pushes(app, clock, database_url, whmcs, tmp_path, forkserver)


def ended(child: multiprocessing.process.BaseProcess) -> int | None:
    child.join(HANG_GUARD_SECONDS)
    if child.is_alive():
        child.kill()
        pytest.fail(f"push did not end (no exit after {HANG_GUARD_SECONDS:.0f} s): it hangs")
    return child.exitcode


def claim_holders(engine: Engine) -> dict[int, str]:
    with engine.connect() as connection:
        return {int(row.client_id): str(row.holder) for row in connection.execute(select(push_claims))}


def assert_whmcs_holds_everything_once(pushes: Pushes, fake: FakeWhmcs) -> None:
    """Every row done; WHMCS holds each client once and each invoice once, after its client."""
    assert {row.state for row in rows(pushes.app.engine)} == {OutboxState.DONE}
    assert sorted(client.email for client in fake.clients.values()) == sorted(
        f"client{n}@example.com" for n in range(CLIENTS)
    )
    for client_id in range(1, CLIENTS + 1):
        for period in PERIODS:
            (invoice,) = whmcs_invoices_carrying(fake, f"BB-{client_id}-{period}")
            assert fake.clients[invoice.userid].email == f"client{client_id - 1}@example.com"
    assert len(fake.invoices) == CLIENTS * len(PERIODS)
    for client_id, sent in _create_calls_by_client(fake).items():
        assert sent == sorted(sent), f"client {client_id}'s invoices went out of order: {sent}"


def _create_calls_by_client(fake: FakeWhmcs) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {}
    for request in fake.requests:
        if request.action == "CreateInvoice":
            sent.setdefault(request.params["userid"], []).append(request.params["notes"].split(":")[0])
    return sent


def test_two_pushes_at_once_share_the_clients_and_send_every_row_once(
    pushes: Pushes, fake: FakeWhmcs
) -> None:
    fake.trap(Trap(fake.received + 1, "hold", lambda: None, writes_only=True))
    first = pushes.start("host-a:1", push_concurrency=1)
    (held,) = fake.wait_held()  # the first push is inside its first client's AddClient
    assert held.action == "AddClient"

    assert pushes.run("host-b:2") == 0, "the second push ends while the first is still at work"
    assert claim_holders(pushes.app.engine) == {
        client_id: "host-a:1" if client_id == 1 else "host-b:2" for client_id in range(1, CLIENTS + 1)
    }
    left = {row.client_id for row in rows(pushes.app.engine) if row.state is not OutboxState.DONE}
    assert left == {1}, "the second push left the first one's client alone, and pushed every other"

    fake.release_held()
    assert ended(first) == 0

    assert_whmcs_holds_everything_once(pushes, fake)
    tokens = {row.client_id: row.lease_token for row in rows(pushes.app.engine)}
    others = {tokens[client_id] for client_id in range(2, CLIENTS + 1)}
    assert len(others) == 1 and tokens[1] not in others, "each push sent its clients' rows, under its lease"


def test_a_push_killed_mid_run_loses_nothing_and_another_push_finishes_its_clients_once(
    pushes: Pushes, fake: FakeWhmcs
) -> None:
    victim = Victim()
    fake.trap(Trap(fake.received + 6, "applied", victim.kill))  # applied by WHMCS, never answered
    killed = pushes.start("host-a:1")
    victim.aim(killed.pid)
    assert ended(killed) == -signal.SIGKILL
    theirs = {c for c, holder in claim_holders(pushes.app.engine).items() if holder == "host-a:1"}
    assert theirs, "the killed push held clients"

    assert pushes.run("host-b:2") == 0
    left = {row.client_id for row in rows(pushes.app.engine) if row.state is not OutboxState.DONE}
    assert left and left <= theirs, "the killed push's clients wait for its lease to expire"

    pushes.advance(LEASE + SETTLE)  # its lease expired, and WHMCS can no longer be applying its call
    assert pushes.run("host-b:2") == 0

    assert_whmcs_holds_everything_once(pushes, fake)
    holders = claim_holders(pushes.app.engine)
    assert {holders[client_id] for client_id in left} == {"host-b:2"}


def _push_once(database_url: str, whmcs: dict[str, Any], clock_path: str, owner: str) -> None:
    from tests.support.crash_pusher import push_once

    push_once(database_url, whmcs, clock_path, owner)
