"""Crash injection: the whole billing path killed and paused at seeded points, then checked end to end.

Each episode runs sync -> invoice -> push, every job in a child process as the daemon runs it, against the
fake Nova + Keystone, SolusVM and WHMCS on 127.0.0.1, on SQLite and on PostgreSQL. At seeded points the
child is killed with SIGKILL:

* sync: at the Nth Nova usage request or SolusVM request (killed by the fake as the request arrives), or
  at the Nth SQL statement, commit, or transaction after a commit (by SQLAlchemy events the child harness
  registers on its own engine, tests/support/crash_pusher.py);
* invoice: at the Nth SQL statement, commit, or transaction after a commit;
* push: at the Nth WHMCS call (before WHMCS applies it, after it applies it unanswered, or after the
  answer), or at the Nth SQL statement, commit, or transaction after a commit;

and paused with SIGSTOP in push: the fake holds the Nth write (WHMCS is slow to apply it), the test lets
the paused push's lease expire, runs a second push, lets WHMCS apply the held call and resumes the first.
All the while the fake WHMCS drops the answer of some writes after applying them and applies others only
after the bridge gave up waiting (slow replies). Each restart is a settle time later on the shared clock.

When an episode is over (every job run to the end), what the store and WHMCS hold is compared with a
reference run of the same world without any fault: duplicates (an invoice or client twice, usage twice),
losses (an invoice, client or hour missing, a row never settled) and mismatches (a total, a line, a
link or an id that differs), which must all be 0; and the calls a paused push made after it lost its
lease, which must be 0 too. Every point is counted (calls, statements, commits), never timed; a join
timeout only turns a hung child into a clear failure.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.connection
import os
import random
import signal
import sys
import tempfile
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.logs import configure as configure_logging
from bridge.settings import parse_settings
from bridge.store.database import make_engine, migrate
from bridge.store.outbox import OutboxState, list_rows
from bridge.store.tables import client_links, invoices, usage_records
from bridge.whmcs.reference import contains_reference
from tests.fakes.nova import COMPUTE_V21, FakeOpenStack, RecordedRequest
from tests.fakes.solusvm import FakeSolusVM
from tests.fakes.whmcs import WRITES, FakeWhmcs, Trap, TrapPhase
from tests.reliability.table import Size, Table
from tests.support.crash_pusher import EXIT_FAILED, HANG_GUARD_SECONDS, FileClock, Tripwire, Victim
from tests.support.databases import server_database

SEED = 20261124
BACKENDS = ("sqlite", "postgresql")
STAGES = ("sync", "invoice", "push")
JOBS = {"sync": "usage_sync", "invoice": "invoicing", "push": "push"}
DATABASE_KILLS = ("statement", "commit", "after_commit")
VENDOR_KILLS: dict[str, tuple[str, ...]] = {
    "sync": ("nova", "solusvm"),
    "invoice": (),
    "push": ("whmcs-before", "whmcs-applied", "whmcs-after"),
}
START = datetime(2022, 11, 1, 1, 0, tzinfo=UTC)
OCTOBER = (datetime(2022, 10, 1, tzinfo=UTC), datetime(2022, 11, 1, tzinfo=UTC))
LEASE = timedelta(seconds=30)
SETTLE = timedelta(seconds=45)
RESTART = SETTLE + timedelta(seconds=16)
"""How far the shared clock moves before each run: past the settle time and the lease of the last one."""
FINISH = timedelta(hours=1, seconds=1)
"""Before each of the runs that finish an episode: past any back-off (at most an hour)."""
FINISHING_RUNS = 6
CLIENTS = 8
DROP_RATE = 0.08
SLOW_RATE = 0.08


@dataclass(frozen=True)
class Quota:
    """What one size asks for: kill points and SIGSTOP points in all, split over the databases there are."""

    kills: int
    pauses: int


PRELOAD = [
    "tests.support.crash_pusher",
    "bridge.fleio.connection",
    "bridge.fleio.nova_usage",
    "bridge.solusvm.client",
    "bridge.solusvm.collector",
    "bridge.services.invoicing",
    "bridge.sync.push",
]
"""What the forkserver imports once, so each of the many restarts costs a fork, not the imports."""

SIZES: dict[str, Quota] = {"ci": Quota(kills=30, pauses=4), "full": Quota(kills=208, pauses=22)}


# -- the world: clouds, clients, prices --------------------------------------------------------------------


@dataclass
class Vendors:
    """The three fakes, shared by every episode of a table (Nova and SolusVM are only read)."""

    nova: KillingNova
    solusvm: KillingSolusVM
    stack: ExitStack


class KillSwitch:
    """Kills the victim at the ``at``-th request since it was armed; ``total`` counts every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._victim: Victim | None = None
        self._at = 0
        self._since = 0
        self.total = 0

    def arm(self, at: int, victim: Victim) -> None:
        with self._lock:
            self._at, self._victim, self._since = at, victim, 0

    def disarm(self) -> None:
        with self._lock:
            self._victim = None

    def tick(self) -> None:
        with self._lock:
            self.total += 1
            self._since += 1
            victim = self._victim if self._since >= self._at else None
            if victim is not None:
                self._victim = None
        if victim is not None:
            victim.kill()


class KillingNova(FakeOpenStack):
    """Fake Nova whose kill switch counts usage requests (the ones a sync makes per window)."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.switch = KillSwitch()

    def _record(self, request: RecordedRequest) -> None:
        super()._record(request)
        if request.path.startswith(f"{COMPUTE_V21}/os-simple-tenant-usage"):
            self.switch.tick()


class KillingSolusVM(FakeSolusVM):
    """Fake SolusVM whose kill switch counts every request."""

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self.switch = KillSwitch()

    def handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> Any:
        self.switch.tick()
        return super().handle(method, target, headers, raw_body)


class ChaosWhmcs(FakeWhmcs):
    """Fake WHMCS whose writes now and then apply and drop the answer, or apply only after the bridge gave
    up waiting (a slow reply), as a seeded coin decides."""

    def __init__(self, rng: random.Random, *, chaos: bool = True) -> None:
        super().__init__()
        self.rng = rng
        self.chaos = chaos

    def _take_fault(self, action: str) -> Any:
        if not self.chaos or action not in WRITES:
            return super()._take_fault(action)
        draw = self.rng.random()
        if draw < DROP_RATE:
            self.fail("commit_then_drop", action=action)
        elif draw < DROP_RATE + SLOW_RATE:
            self.fail("slow_apply", action=action)
        return super()._take_fault(action)


def start_vendors() -> Vendors:
    """Nova with each client's October servers, SolusVM with servers for two clients (their November hours
    are observed, not invoiced), both quiet about the broken pipes of killed clients."""
    stack = ExitStack()
    nova = stack.enter_context(KillingNova(FixedClock(datetime(2022, 11, 15, tzinfo=UTC))))
    solusvm = stack.enter_context(KillingSolusVM(per_page=2))
    for fake_server in (nova._server, solusvm._httpd):
        _quiet(fake_server)
    rng = random.Random(SEED)
    for n in range(CLIENTS):
        project = f"p-{n}"
        nova.create_server(
            project, at=datetime(2022, 9, 15, tzinfo=UTC), name=f"web-{n}", server_id=f"web{n}"
        )
        start = datetime(2022, 10, rng.randint(2, 12), rng.randint(0, 23), 30, tzinfo=UTC)
        db = nova.create_server(project, at=start, flavor="m1.large", name=f"db-{n}", server_id=f"db{n}")
        nova.delete(db, at=start + timedelta(hours=rng.randint(20, 300)))
    nova.create_server("p-unlinked", at=datetime(2022, 10, 20, tzinfo=UTC), name="stray", server_id="stray")
    plan = solusvm.add_plan("small", tokens_per_hour=3)
    created = "2022-09-01T00:00:00.000000Z"  # before the runs' clock: a future created_at is refused
    for n in range(2):
        user = solusvm.add_user(f"client{n}@example.com")
        solusvm.add_server(f"vps-{n}", user_id=user["id"], plan_id=plan["id"], created_at=created)
    solusvm.add_server("vps-off", user_id=1, plan_id=plan["id"], status="stopped", created_at=created)
    return Vendors(nova, solusvm, stack)


def _quiet(server: Any) -> None:
    """A reply to a process that was just killed fails with a broken pipe: expected, not worth a trace."""
    report = server.handle_error

    def quiet(request: Any, address: Any) -> None:
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            report(request, address)

    server.handle_error = quiet


def sections(vendors: Vendors, whmcs: FakeWhmcs, **push: Any) -> dict[str, Any]:
    """The settings of every run (TOML-shaped); ``push`` overrides ``[whmcs]`` keys."""
    nova = vendors.nova
    return {
        "billing": {"generate_invoices": False},
        "pricing": {"token_price": "0.00100", "flavors": {"m1.small": "0.0125", "m1.large": "0.10"}},
        "openstack": {
            "enabled": True,
            "auth_url": nova.auth_url,
            "username": nova.username,
            "password": nova.password,
            "project_name": nova.project_name,
            "region_name": nova.region,
            "window": 24,
        },
        "solusvm": {"enabled": True, "url": vendors.solusvm.url, "token": vendors.solusvm.token},
        "whmcs": {
            "enabled": True,
            "url": whmcs.url,
            "identifier": whmcs.identifier,
            "secret": whmcs.secret,
            "invoice_status": "Draft",
            "push_concurrency": 2,
            "read_timeout_seconds": 0.2,
            "in_doubt_settle_seconds": SETTLE.total_seconds(),
            "retry_wait_max_seconds": 0,
            **push,
        },
        "daemon": {"lease_seconds": int(LEASE.total_seconds())},
    }


def add_clients(app: App) -> None:
    """The bridge's clients, linked to their projects (and two to their SolusVM users)."""
    for n in range(CLIENTS):
        client = app.clients.add(email=f"client{n}@example.com", name=f"Client Number {n}")
        app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, f"p-{n}")
        if n < 2:
            app.clients.link(str(client.id), LinkKind.SOLUSVM_USER, str(n + 1))


# -- what a finished episode holds -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The store and WHMCS after an episode, in terms that compare across runs (references, not ids)."""

    october_hours: dict[str, Decimal]
    usage_duplicates: int
    solusvm_resources: frozenset[str]
    bridge_invoices: dict[str, tuple[Decimal, str | None]]
    whmcs_invoices: dict[str, list[tuple[int, str, Decimal, tuple[tuple[str, Decimal], ...]]]]
    whmcs_clients: dict[str, list[tuple[int, str]]]
    links: dict[str, str]
    unsettled: int
    cancelled_duplicates: int

    @classmethod
    def read(cls, engine: Engine, whmcs: FakeWhmcs) -> Outcome:
        with engine.connect() as connection:
            hours = dict(
                connection.execute(
                    select(usage_records.c.resource_id, func.sum(usage_records.c.hours))
                    .where(
                        usage_records.c.source == "openstack",
                        usage_records.c.window_start >= OCTOBER[0],
                        usage_records.c.window_start < OCTOBER[1],
                    )
                    .group_by(usage_records.c.resource_id)
                ).all()
            )
            doubled = connection.execute(
                select(func.count())
                .select_from(usage_records)
                .group_by(usage_records.c.source, usage_records.c.window_start, usage_records.c.resource_id)
                .having(func.count() > 1)
            ).all()
            solus = frozenset(
                connection.scalars(
                    select(usage_records.c.resource_id).where(usage_records.c.source == "solusvm").distinct()
                )
            )
            issued = {
                row.reference: (Decimal(row.total), row.remote_id)
                for row in connection.execute(
                    select(invoices.c.reference, invoices.c.total, invoices.c.remote_id)
                )
            }
            links = {
                f"client{row.client_id - 1}@example.com": row.external_id
                for row in connection.execute(
                    select(client_links.c.client_id, client_links.c.external_id).where(
                        client_links.c.kind == LinkKind.WHMCS_CLIENT.value
                    )
                )
            }
            rows = list_rows(connection, tuple(OutboxState), limit=100_000)
        unsettled = sum(1 for row in rows if row.state is not OutboxState.DONE)
        with whmcs._lock:
            carried: dict[str, list[tuple[int, str, Decimal, tuple[tuple[str, Decimal], ...]]]] = {}
            for invoice in whmcs.invoices.values():
                for reference in issued:
                    if contains_reference(invoice.notes, reference):
                        lines = tuple((item.description, item.amount) for item in invoice.items)
                        carried.setdefault(reference, []).append(
                            (invoice.id, invoice.status, invoice.total, lines)
                        )
            clients: dict[str, list[tuple[int, str]]] = {}
            for client in whmcs.clients.values():
                clients.setdefault(client.email, []).append((client.id, client.fields["status"]))
        cancelled = sum(1 for found in carried.values() for entry in found if entry[1] == "Cancelled")
        return cls(
            october_hours={str(key): Decimal(value) for key, value in hours.items()},
            usage_duplicates=len(doubled),
            solusvm_resources=solus,
            bridge_invoices=issued,
            whmcs_invoices=carried,
            whmcs_clients=clients,
            links=links,
            unsettled=unsettled,
            cancelled_duplicates=cancelled,
        )


@dataclass
class Verdict:
    duplicates: int = 0
    losses: int = 0
    mismatches: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, count: int, what: str) -> None:
        if count <= 0:
            return
        setattr(self, kind, getattr(self, kind) + count)
        if what:
            self.problems.append(f"{kind}: {what}")


def compare(reference: Outcome, episode: Outcome) -> Verdict:
    """Duplicates, losses and mismatches of ``episode`` against the fault-free ``reference``."""
    verdict = Verdict()
    verdict.add("duplicates", episode.usage_duplicates, "usage hours recorded twice")
    for resource, hours in reference.october_hours.items():
        got = episode.october_hours.get(resource, Decimal(0))
        verdict.add("losses", int(got < hours), f"{resource}: {got} of {hours} October hours")
        verdict.add("mismatches", int(got > hours), f"{resource}: {got} October hours, not {hours}")
    verdict.add(
        "losses", len(reference.solusvm_resources - episode.solusvm_resources), "SolusVM servers unseen"
    )
    for ref, (total, _) in reference.bridge_invoices.items():
        issued = episode.bridge_invoices.get(ref)
        verdict.add("losses", int(issued is None), f"{ref} not issued")
        verdict.add("mismatches", int(issued is not None and issued[0] != total), f"{ref} total {issued}")
        expected = [entry for entry in reference.whmcs_invoices.get(ref, []) if entry[1] != "Cancelled"]
        live = [entry for entry in episode.whmcs_invoices.get(ref, []) if entry[1] != "Cancelled"]
        verdict.add("duplicates", len(live) - 1, f"{ref}: {len(live)} invoices in WHMCS")
        verdict.add("losses", int(not live), f"{ref}: not in WHMCS")
        if live and expected:
            invoice_id, status, amount, lines = live[0]
            verdict.add("mismatches", int((status, amount, lines) != expected[0][1:]), f"{ref}: {live[0]}")
            verdict.add("mismatches", int(issued is None or issued[1] != str(invoice_id)), f"{ref} remote id")
    extra = set(episode.bridge_invoices) - set(reference.bridge_invoices)
    verdict.add("duplicates", len(extra), f"invoices issued beyond the reference: {sorted(extra)}")
    for email in reference.whmcs_clients:
        open_clients = [entry for entry in episode.whmcs_clients.get(email, []) if entry[1] != "Closed"]
        verdict.add("duplicates", len(open_clients) - 1, f"{email}: {len(open_clients)} clients in WHMCS")
        verdict.add("losses", int(not open_clients), f"{email}: not in WHMCS")
        linked = episode.links.get(email)
        verdict.add(
            "mismatches", int(bool(open_clients) and linked != str(open_clients[0][0])), f"{email} link"
        )
    verdict.add("losses", episode.unsettled, f"{episode.unsettled} outbox rows never settled")
    return verdict


# -- running the jobs in child processes -------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One injection: where (stage), how (``nova``, ``whmcs-applied``, ``commit``, ``pause`` ...) and at
    which count."""

    stage: str
    how: str
    at: int


@dataclass
class Tally:
    """What a table has tried and found so far."""

    kills: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    pauses: Counter[str] = field(default_factory=Counter)
    episodes: Counter[str] = field(default_factory=Counter)
    verdict: dict[str, Verdict] = field(default_factory=dict)
    after_lease: int = 0
    swept: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class Calibration:
    """How many of each countable thing one fault-free run of a stage does, to draw kill points from."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def of(self, stage: str, how: str) -> int:
        return max(1, self.counts.get((stage, how), 1))


class Episode:
    """One database, one WHMCS, the pipeline run to the end under injected kills and pauses."""

    def __init__(
        self,
        url: str,
        vendors: Vendors,
        rng: random.Random,
        calibration: Calibration,
        forkserver: Any,
        directory: Path,
    ) -> None:
        self.url = url
        self.vendors = vendors
        self.rng = rng
        self.calibration = calibration
        self.forkserver = forkserver
        self.whmcs = ChaosWhmcs(random.Random(rng.random()))
        self.clock = FileClock(directory / "clock")
        self.now = START
        self.clock.set(self.now)
        self.runs = 0

    def __enter__(self) -> Episode:
        self.whmcs.start()
        _quiet(self.whmcs._server)
        return self

    def __exit__(self, *exc: object) -> None:
        self.whmcs.stop()

    def settings(self, **push: Any) -> dict[str, Any]:
        return sections(self.vendors, self.whmcs, **push)

    def advance(self, step: timedelta = RESTART) -> None:
        self.now += step
        self.clock.set(self.now)

    def run(self, stage: str, point: Point | None = None, *, advance: bool = True) -> int:
        """One run of the stage's job in a child process, a restart later (unless not ``advance``); its
        exit code (-9: killed at ``point``)."""
        self.runs += 1
        if advance:
            self.advance()
        victim = Victim()
        tripwire = None
        if point is not None:
            tripwire = self._arm(point, victim)
        child = self.forkserver.Process(
            target=_run_job,
            args=(self.url, self.settings(), str(self.clock._path), JOBS[stage], "crash-daemon", tripwire),
        )
        child.start()
        victim.aim(child.pid)
        code = _join(child, f"{stage} run {self.runs}")
        self.vendors.nova.switch.disarm()
        self.vendors.solusvm.switch.disarm()
        self.whmcs.disarm()
        return code

    def _arm(self, point: Point, victim: Victim) -> Tripwire | None:
        if point.how in DATABASE_KILLS:
            return Tripwire(point.how, point.at)  # type: ignore[arg-type]
        if point.how == "nova":
            self.vendors.nova.switch.arm(point.at, victim)
        elif point.how == "solusvm":
            self.vendors.solusvm.switch.arm(point.at, victim)
        else:
            phase: TrapPhase = point.how.removeprefix("whmcs-")  # type: ignore[assignment]
            self.whmcs.trap(Trap(self.whmcs.received + point.at, phase, victim.kill))
        return None

    def pause(self, at: int, owner: str) -> int | None:
        """The issue's story at the ``at``-th call from now (the next write from there): the push is paused
        while WHMCS holds its write, its lease expires, a second push runs, WHMCS applies the held write,
        the first push resumes. Returns the calls the resumed push made, or None if it reached no write."""
        self.runs += 1
        self.advance()
        held_read, held_write = os.pipe()
        self.whmcs.trap(Trap(self.whmcs.received + at, "hold", lambda: os.write(held_write, b"!"), True))
        paused = self.forkserver.Process(
            target=_run_job,
            args=(
                self.url,
                self.settings(push_concurrency=1, read_timeout_seconds=30.0),
                str(self.clock._path),
                "push",
                owner,
                None,
            ),
        )
        paused.start()
        try:
            ready = multiprocessing.connection.wait([held_read, paused.sentinel], HANG_GUARD_SECONDS)
            if held_read not in ready:
                self.whmcs.disarm()
                _join(paused, "a push to pause")
                return None
            os.kill(paused.pid, signal.SIGSTOP)
            try:
                self.advance(LEASE + timedelta(seconds=1))  # past the lease, within the settle time
                self.run("push", advance=False)  # the second push, while the first is paused
                self.whmcs.release_held()
                calls = self.whmcs.call_count()
            finally:
                os.kill(paused.pid, signal.SIGCONT)
            code = _join(paused, "the resumed push")
            if code not in (0, EXIT_FAILED):
                raise AssertionError(f"the resumed push ended with exit code {code}")
            return self.whmcs.call_count() - calls
        finally:
            os.close(held_read)
            os.close(held_write)

    def finish(self, stage: str) -> None:
        """Run the stage to the end: clean runs, each past any back-off, until it succeeds and (push)
        nothing is left to settle."""
        for _ in range(FINISHING_RUNS):
            self.advance(FINISH)
            code = self.run(stage, advance=False)
            if code == 0 and (stage != "push" or not self.unsettled()):
                return
        raise AssertionError(f"{stage} did not finish in {FINISHING_RUNS} clean runs")

    def unsettled(self) -> int:
        engine = make_engine(self.url)
        try:
            with engine.connect() as connection:
                due = (OutboxState.PENDING, OutboxState.IN_DOUBT, OutboxState.FAILED)
                return len(list_rows(connection, due, limit=100_000))
        finally:
            engine.dispose()


def _run_job(url: str, settings: dict[str, Any], clock: str, job: str, owner: str, tripwire: Any) -> None:
    from tests.support.crash_pusher import run_job

    warnings.simplefilter("ignore")  # openstacksdk's deprecation notices about its own internals
    run_job(url, settings, clock, job, owner, tripwire)


def _join(child: Any, what: str) -> int:
    child.join(HANG_GUARD_SECONDS)
    if child.is_alive():
        child.kill()
        child.join()
        raise AssertionError(f"{what} did not end (no exit after {HANG_GUARD_SECONDS:.0f} s): it hangs")
    return int(child.exitcode)


# -- the reference run and the databases ------------------------------------------------------------------


def reference_run(vendors: Vendors, directory: Path) -> tuple[Outcome, Calibration]:
    """The same world without any fault, in this process on SQLite: what every episode must end with, and
    how many statements, commits, transactions and vendor calls each stage makes (to draw points from)."""
    calibration = Calibration()
    url = f"sqlite:///{directory / 'reference.sqlite3'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    counts: Counter[str] = Counter()
    with ChaosWhmcs(random.Random(SEED), chaos=False) as whmcs, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        configure_logging("warning", "json", stream=open(os.devnull, "w"))  # noqa: SIM115
        settings = parse_settings({**sections(vendors, whmcs), "database": {"url": url}})
        app = build_app(settings, clock=FixedClock(START + RESTART), owner="reference")
        for moment in ("before_cursor_execute", "commit", "begin"):
            event.listen(app.engine, moment, lambda *_, name=moment: counts.update([name]))
        try:
            add_clients(app)
            for stage in STAGES:
                counts.clear()
                nova, solusvm, calls = vendors.nova.switch.total, vendors.solusvm.switch.total, whmcs.received
                outcome = app.runner.run(JOBS[stage])
                if outcome.status != "succeeded":
                    raise AssertionError(f"the reference {stage} failed: {outcome.error}")
                calibration.counts.update(
                    {
                        (stage, "statement"): counts["before_cursor_execute"],
                        (stage, "commit"): counts["commit"],
                        (stage, "after_commit"): counts["begin"],
                        (stage, "nova"): vendors.nova.switch.total - nova,
                        (stage, "solusvm"): vendors.solusvm.switch.total - solusvm,
                        (stage, "whmcs"): whmcs.received - calls,
                    }
                )
            reference = Outcome.read(app.engine, whmcs)
        finally:
            app.close()
    if reference.unsettled or not reference.whmcs_invoices:
        raise AssertionError("the reference run did not push every invoice")
    return reference, calibration


Fresh = Callable[[], Any]


def _databases(stack: ExitStack, tally: Tally) -> list[tuple[str, Fresh]]:
    """Each backend there is, as a maker of fresh migrated databases (one per episode). PostgreSQL missing
    is skipped (it fails under BRIDGE_REQUIRE_SERVICES=1, see tests/support/databases.py)."""
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    made = Counter[str]()

    @contextmanager
    def sqlite() -> Iterator[str]:
        made["sqlite"] += 1
        path = directory / f"episode-{made['sqlite']}.sqlite3"
        url = f"sqlite:///{path}"
        _migrate(url)
        yield url

    @contextmanager
    def postgresql() -> Iterator[str]:
        with server_database("postgresql") as url:
            _migrate(url)
            yield url

    databases: list[tuple[str, Fresh]] = [("sqlite", sqlite)]
    try:
        with postgresql():
            pass
    except pytest.skip.Exception as skipped:
        tally.skipped["postgresql"] = str(skipped.msg)
    else:
        databases.append(("postgresql", postgresql))
    return databases


def _migrate(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()


# -- injecting -----------------------------------------------------------------------------------------


@dataclass
class Injector:
    """Runs episodes on one database until its share of kill and SIGSTOP points is tried."""

    backend: str
    fresh: Fresh
    vendors: Vendors
    reference: Outcome
    calibration: Calibration
    rng: random.Random
    tally: Tally
    forkserver: Any
    kills: int
    pauses: int

    def run(self) -> None:
        killed = paused = 0
        episodes = 0
        while killed < self.kills or paused < self.pauses:
            episodes += 1
            if episodes > 4 * (self.kills + self.pauses):
                raise AssertionError(f"{self.backend}: the points were not reached in {episodes} episodes")
            left = self.kills - killed
            budget = {"sync": min(4, left), "invoice": min(3, max(left - 4, 0))}
            budget["push"] = max(left - budget["sync"] - budget["invoice"], 0)
            budget["push"] = min(budget["push"], 8)
            done = self.episode(budget, min(2, max(self.pauses - paused, 0)))
            killed += done[0]
            paused += done[1]

    def episode(self, budget: dict[str, int], pauses: int) -> tuple[int, int]:
        killed = paused = 0
        with self.fresh() as url, tempfile.TemporaryDirectory() as directory:
            app = build_app(
                parse_settings({"database": {"url": url}}), clock=FixedClock(START), owner="operator"
            )
            add_clients(app)
            app.close()
            episode = Episode(url, self.vendors, self.rng, self.calibration, self.forkserver, Path(directory))
            with episode:
                for stage in STAGES:
                    stage_kills, stage_pauses, ended = self.stage(episode, stage, budget[stage], pauses)
                    killed += stage_kills
                    paused += stage_pauses
                    if not ended:
                        episode.finish(stage)
                engine = make_engine(url)
                try:
                    outcome = Outcome.read(engine, episode.whmcs)
                finally:
                    engine.dispose()
        verdict = compare(self.reference, outcome)
        self.tally.episodes[self.backend] += 1
        total = self.tally.verdict.setdefault(self.backend, Verdict())
        for kind in ("duplicates", "losses", "mismatches"):
            total.add(kind, getattr(verdict, kind), "")
        total.problems.extend(verdict.problems)
        self.tally.swept += outcome.cancelled_duplicates
        return killed, paused

    def stage(self, episode: Episode, stage: str, kills: int, pauses: int) -> tuple[int, int, bool]:
        """Inject into ``stage`` until its kills (and, in push, pauses) are tried or it ran to its end:
        the kills and pauses tried, and whether it ended."""
        killed = paused = 0
        started = episode.whmcs.received
        ways = VENDOR_KILLS[stage] + DATABASE_KILLS
        while killed < kills or (stage == "push" and paused < pauses):
            remaining = self.calibration.of(stage, "whmcs") - (episode.whmcs.received - started)
            if stage == "push" and paused < pauses and (killed >= kills or self.rng.random() < 0.3):
                calls = episode.pause(self.rng.randint(1, max(remaining, 2)), f"paused-{episode.runs}")
                if calls is None:
                    return killed, paused, False  # no write left to pause
                paused += 1
                self.tally.pauses[self.backend] += 1
                self.tally.after_lease += calls
                continue
            if killed >= kills:
                break
            how = self.rng.choice(ways)
            total = self.calibration.of(stage, "whmcs")
            if how.startswith("whmcs"):
                limit = max(remaining, 3)
            elif stage == "push":  # the statements and commits of the calls still to make
                limit = max(self.calibration.of(stage, how) * max(remaining, 1) // total, 3)
            else:
                limit = self.calibration.of(stage, how)
            code = episode.run(stage, Point(stage, how, self.rng.randint(1, limit)))
            if code == -signal.SIGKILL:
                killed += 1
                self.tally.kills[(self.backend, stage, how)] += 1
            elif code == 0 and (stage != "push" or not episode.unsettled()):
                return killed, paused, True  # the stage ran to its end before the point
        return killed, paused, False


# -- the table ---------------------------------------------------------------------------------------------


def table(size: Size) -> Table:
    """Kill and pause the pipeline at seeded points on every database there is; see the module docstring."""
    quota = SIZES[size]
    tally = Tally()
    rng = random.Random(SEED)
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(PRELOAD)
    vendors = start_vendors()
    with vendors.stack, ExitStack() as stack:
        reference, calibration = reference_run(
            vendors, Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        databases = _databases(stack, tally)
        for index, (backend, fresh) in enumerate(databases):
            share = len(databases) - index
            kills = math.ceil((quota.kills - sum(tally.kills.values())) / share)
            pauses = math.ceil((quota.pauses - sum(tally.pauses.values())) / share)
            injector = Injector(
                backend, fresh, vendors, reference, calibration, rng, tally, forkserver, kills, pauses
            )
            injector.run()
    for backend, verdict in tally.verdict.items():
        for problem in verdict.problems[:20]:
            print(f"crash table, {backend}: {problem}", file=sys.stderr)
    return _render(size, quota, tally)


def healthy(table: Table) -> bool:
    """Enough points tried, and nothing doubled, lost or changed; no call after a lost lease."""
    totals = table.totals
    return (
        totals["kill points tried"] >= totals["kill points required"]
        and totals["SIGSTOP points tried"] >= totals["SIGSTOP points required"]
        and totals["duplicates"] == 0
        and totals["losses"] == 0
        and totals["mismatches"] == 0
        and totals["calls after a lost lease"] == 0
    )


def _render(size: Size, quota: Quota, tally: Tally) -> Table:
    lines: list[tuple[tuple[str, int, int, str], tuple[str, ...]]] = []
    for (backend, stage, how), count in tally.kills.items():
        lines.append(
            ((backend, STAGES.index(stage), 0, how), (backend, stage, f"SIGKILL at {how}", str(count)))
        )
    for backend, count in tally.pauses.items():
        lines.append(
            ((backend, STAGES.index("push"), 1, ""), (backend, "push", "SIGSTOP past the lease", str(count)))
        )
    rows = [(*row, "", "", "") for _, row in sorted(lines)]
    for backend, verdict in sorted(tally.verdict.items()):
        episodes = f"end to end, {tally.episodes[backend]} episodes"
        counts = (verdict.duplicates, verdict.losses, verdict.mismatches)
        rows.append((backend, "all", episodes, "", *(str(count) for count in counts)))
    for backend, reason in tally.skipped.items():
        rows.append((backend, "-", f"skipped: {reason}", "0", "", "", ""))
    verdicts = tally.verdict.values()
    return Table(
        title=f"Crash injection ({size}): SIGKILL and SIGSTOP across sync -> invoice -> push",
        columns=("database", "stage", "injection", "points", "duplicates", "losses", "mismatches"),
        rows=tuple(rows),
        totals={
            "kill points tried": sum(tally.kills.values()),
            "kill points required": quota.kills,
            "SIGSTOP points tried": sum(tally.pauses.values()),
            "SIGSTOP points required": quota.pauses,
            "duplicates": sum(verdict.duplicates for verdict in verdicts),
            "losses": sum(verdict.losses for verdict in verdicts),
            "mismatches": sum(verdict.mismatches for verdict in verdicts),
            "calls after a lost lease": tally.after_lease,
            "late duplicates cancelled by the sweep": tally.swept,
        },
    )
