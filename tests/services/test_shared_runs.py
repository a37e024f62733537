"""Several workers on one database share month end and process_clients, chunk by chunk (issue 17).

Each worker is a child process running the daemon's job (``invoicing``, ``process_clients``) under its own
owner, as daemons on several hosts would; their clock is one file the test moves, so a killed worker's
claim expires when the test says, never after a wait. Clients are spread one per chunk (ids 1, 501,
1001, …), so every worker has chunks to take.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import signal
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.services.chunks import CHUNK_SIZE
from bridge.store import clients as client_store
from bridge.store.tables import clients, invoices, usage_records, work_chunks
from tests.support.crash_pusher import HANG_GUARD_SECONDS, FileClock, Tripwire
from tests.support.invoicing import PRICING

CHUNKS = 4
LEASE = timedelta(seconds=30)
INVOICE_DAY = datetime(2022, 11, 1, 2, tzinfo=UTC)
OCTOBER = datetime(2022, 10, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def forkserver() -> multiprocessing.context.BaseContext:
    """Children that import the bridge once: each worker starts with a fork."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.support.crash_pusher", "bridge.services.invoicing"])
    return context


@pytest.fixture
def world(make_app: Callable[..., App], clock: FixedClock, tmp_path: Path) -> Iterator[Workers]:
    clock.set(INVOICE_DAY)
    app = make_app(pricing=PRICING, daemon={"lease_seconds": int(LEASE.total_seconds())})
    spread_clients(app.engine)
    shared = FileClock(tmp_path / "clock")
    shared.set(clock.now())
    yield Workers(app, clock, shared, tmp_path)


class Workers:
    """The test's app (to look), the shared clock, and how to run a worker's job in a child process."""

    def __init__(self, app: App, clock: FixedClock, shared: FileClock, directory: Path) -> None:
        self.app = app
        self.clock = clock
        self.shared = shared
        self.directory = directory

    def advance(self, by: timedelta) -> None:
        self.shared.set(self.clock.advance(by))

    def start(
        self,
        context: multiprocessing.context.BaseContext,
        job: str,
        owner: str,
        tripwire: Tripwire | None = None,
    ) -> multiprocessing.process.BaseProcess:
        sections = {
            "pricing": PRICING,
            "daemon": {"lease_seconds": int(LEASE.total_seconds()), "state_dir": str(self.directory)},
        }
        child: multiprocessing.process.BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_run_job,
            args=(
                self.app.settings.database_url(),
                sections,
                str(self.directory / "clock"),
                job,
                owner,
                tripwire,
            ),
        )
        child.start()
        return child

    def run(self, context: multiprocessing.context.BaseContext, job: str, *owners: str) -> list[int | None]:
        """Run the job in one child per owner, all at once; their exit codes."""
        children = [self.start(context, job, owner) for owner in owners]
        return [ended(child) for child in children]


def ended(child: multiprocessing.process.BaseProcess) -> int | None:
    child.join(HANG_GUARD_SECONDS)
    if child.is_alive():
        child.kill()
        pytest.fail(f"worker did not end (no exit after {HANG_GUARD_SECONDS:.0f} s): it hangs")
    return child.exitcode


def _run_job(*args: Any) -> None:
    from tests.support.crash_pusher import run_job

    run_job(*args)


def spread_clients(engine: Engine) -> None:
    """One client per chunk, each with an OpenStack project that ran a VM for ten days of October 2022."""
    with engine.begin() as connection:
        for n in range(CHUNKS):
            client_id = n * CHUNK_SIZE + 1
            connection.execute(
                insert(clients).values(
                    id=client_id,
                    email=f"client{client_id}@example.com",
                    name=f"Client {client_id}",
                    currency="USD",
                    configuration="default",
                    created_at=OCTOBER - timedelta(days=30),
                )
            )
            client_store.insert_link(
                connection,
                client_id=client_id,
                kind=LinkKind.OPENSTACK_PROJECT,
                external_id=f"p-{client_id}",
                created_at=OCTOBER,
            )
            connection.execute(
                insert(usage_records).values(
                    source="openstack",
                    window_start=OCTOBER,
                    window_end=OCTOBER + timedelta(days=10),
                    resource_id=f"vm-{client_id}",
                    resource_name=f"vm-{client_id}",
                    owner=f"p-{client_id}",
                    plan="m1.small",
                    hours=Decimal(240),
                    tokens=None,
                    collected_at=OCTOBER + timedelta(days=10),
                )
            )


def invoices_per_client(engine: Engine) -> dict[int, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(invoices.c.client_id, func.count()).group_by(invoices.c.client_id, invoices.c.period_start)
        ).all()
    return {int(client_id): int(count) for client_id, count in rows}


def chunk_holders(engine: Engine) -> dict[int, tuple[str | None, bool]]:
    """Each chunk of the latest generation: who holds or finished it, and whether it is done."""
    with engine.connect() as connection:
        latest = connection.scalar(select(func.max(work_chunks.c.generation)))
        rows = connection.execute(
            select(work_chunks.c.chunk, work_chunks.c.holder, work_chunks.c.done_at).where(
                work_chunks.c.generation == latest
            )
        ).all()
    return {int(row.chunk): (row.holder, row.done_at is not None) for row in rows}


EVERY_CLIENT = {n * CHUNK_SIZE + 1: 1 for n in range(CHUNKS)}


def test_two_workers_at_once_invoice_every_client_period_exactly_once(
    world: Workers, forkserver: multiprocessing.context.BaseContext
) -> None:
    assert world.run(forkserver, "invoicing", "host-a:1", "host-b:2") == [0, 0]

    assert invoices_per_client(world.app.engine) == EVERY_CLIENT
    holders = chunk_holders(world.app.engine)
    assert all(done for _, done in holders.values()) and len(holders) == CHUNKS
    assert {holder for holder, _ in holders.values()} <= {"host-a:1", "host-b:2"}

    assert world.run(forkserver, "invoicing", "host-a:1", "host-b:2") == [0, 0]
    assert invoices_per_client(world.app.engine) == EVERY_CLIENT, "a second month end adds nothing"


def test_a_worker_killed_mid_chunk_loses_nothing_and_its_chunk_is_finished_by_another_once(
    world: Workers, forkserver: multiprocessing.context.BaseContext
) -> None:
    killed = world.start(
        forkserver, "invoicing", "host-a:1", Tripwire("statement", 1, "INSERT INTO invoices")
    )
    assert ended(killed) == -signal.SIGKILL
    (lost,) = [chunk for chunk, (holder, done) in chunk_holders(world.app.engine).items() if holder]
    assert chunk_holders(world.app.engine)[lost] == ("host-a:1", False)
    assert invoices_per_client(world.app.engine) == {}, "the killed worker's transaction left nothing"

    assert world.run(forkserver, "invoicing", "host-b:2") == [0]
    lost_client = lost * CHUNK_SIZE + 1
    assert invoices_per_client(world.app.engine) == {k: 1 for k in EVERY_CLIENT if k != lost_client}
    assert chunk_holders(world.app.engine)[lost] == ("host-a:1", False), "held until its claim expires"

    world.advance(LEASE)
    assert world.run(forkserver, "invoicing", "host-b:2") == [0]
    assert invoices_per_client(world.app.engine) == EVERY_CLIENT
    assert chunk_holders(world.app.engine) == {n: ("host-b:2", True) for n in range(CHUNKS)}


def test_process_clients_workers_take_every_chunk_of_the_run_once_between_them(
    world: Workers, forkserver: multiprocessing.context.BaseContext
) -> None:
    assert world.run(forkserver, "process_clients", "host-a:1", "host-b:2") == [0, 0]
    holders = chunk_holders(world.app.engine)
    assert len(holders) == CHUNKS and all(done for _, done in holders.values())
    assert {holder for holder, _ in holders.values()} <= {"host-a:1", "host-b:2"}
