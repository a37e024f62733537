"""The vendor fault matrix: one row per fault a vendor (or the database) can throw at the bridge.

Each row drives the real command, ``billing-bridge sync`` or ``push`` through ``bridge.cli.main`` in this
process, against the fakes of tests/fakes/ over real HTTP, with one fault injected at the HTTP boundary
(mid-run where that matters). Then the vendor recovers, the operator does what the row's *recovery* names
(nothing, fix a setting, ``outbox retry``), and the same command runs again. The columns:

* **operator sees**: the faulted run's exit code and the line that says what happened (the CLI's error
  line, the report line, or the first warning logged);
* **recovery**: what brought the bridge back (the second run must exit 0);
* **retries**: vendor requests beyond a fault-free run of the same scenario (repeats, settling lookups);
* **duplicates**: WHMCS invoices or clients beyond one per reference or e-mail address; for usage, hours
  stored beyond what the vendor's own records allow (over-billing) - after recovery;
* **losses**: invoices or clients missing from WHMCS, usage hours missing from the store - after recovery.

``python -m tests.reliability --only faults [--size ci|full]`` prints it; test_faults.py runs it at CI size.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import (
    AbstractContextManager,
    ExitStack,
    contextmanager,
    nullcontext,
    redirect_stderr,
    redirect_stdout,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog
import time_machine
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from bridge.bootstrap import build_app
from bridge.cli import main
from bridge.clock import FixedClock, SystemClock
from bridge.logs import CHATTY_LIBRARIES
from bridge.settings import parse_settings
from bridge.solusvm.uptime import hour_start
from bridge.store.database import make_engine, migrate
from bridge.store.tables import usage_records
from bridge.store.usage import HOURS_PLACES
from bridge.usage.solusvm_runtime import open_months
from bridge.whmcs.settings import WhmcsSettings
from tests.fakes.nova import FakeOpenStack, Fault, RecordedRequest, hours_for
from tests.fakes.solusvm import FakeSolusVM
from tests.fakes.whmcs import FakeWhmcs
from tests.reliability.table import Size, Table
from tests.support.databases import server_database
from tests.support.whmcs_push import issue_invoice, whmcs_invoices_carrying, whmcs_section

Backend = Literal["sqlite", "postgresql"]
Sections = dict[str, dict[str, Any]]

COLUMNS = ("fault", "operator sees", "recovery", "retries", "duplicates", "losses")
MIN_FAULTS = 20
START = datetime(2022, 10, 3, tzinfo=UTC)
"""Nova's collection starts here (the first hour is collected before the fault, to set the watermark)."""
HOUR = timedelta(hours=1)
LINE_WIDTH = 150
HANG_GUARD_SECONDS = 120


@dataclass(frozen=True)
class Scale:
    """How much work each run does: Nova windows per sync, bridge clients with an invoice, SolusVM servers."""

    windows: int
    clients: int
    servers: int


SCALES: dict[Size, Scale] = {"ci": Scale(windows=3, clients=2, servers=3), "full": Scale(8, 4, 6)}


# --- running the CLI in this process ----------------------------------------------------------------------


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


def run_cli(config: Path, *args: str) -> CliRun:
    """``billing-bridge --config CONFIG ARGS`` as a user runs it; logging is put back as it was after."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in CHATTY_LIBRARIES}
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main(["--config", str(config), *args])
    except SystemExit as exited:
        code = int(exited.code or 0)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)
        structlog.reset_defaults()
    return CliRun(code, out.getvalue(), err.getvalue())


def write_settings(path: Path, sections: Sections) -> None:
    """A settings file from TOML-shaped sections (JSON scalars and lists are valid TOML values)."""
    body = []
    for name, values in sections.items():
        body.append(f"[{name}]")
        body.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    path.write_text("\n".join(body) + "\n")


def operator_line(run: CliRun) -> str:
    """What tells the operator what happened: the error line, a report line that names trouble, the first
    warning or error logged, else the report's last line."""
    err_lines = run.err.splitlines()
    errors = [line for line in err_lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    words = ("stopped", "failed", "put off")
    troubled = [line for line in run.out.splitlines() if any(word in line for word in words)]
    if run.code and troubled:
        source, _, rest = troubled[0].partition(": ")
        return f"{source}: stopped: {rest.split('; stopped: ')[-1]}" if "; stopped: " in rest else troubled[0]
    for line in err_lines:
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("level") in ("warning", "error"):
                detail = event.get("error") or event.get("reason") or event.get("error_type") or ""
                return f"{event['level']} {event['event']}: {detail}".rstrip(": ")
    lines = run.out.strip().splitlines()
    return lines[-1] if lines else ""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LINE_WIDTH else text[: LINE_WIDTH - 3] + "..."


# --- databases ----------------------------------------------------------------------------------------


@contextmanager
def migrated_database(backend: Backend, directory: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{directory / 'bridge.sqlite3'}"
        else:
            url = stack.enter_context(server_database(backend))
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url


def kill_sessions(url: str) -> int:
    """End every other session of the database, as a PostgreSQL restart does; how many were ended."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
    engine.dispose()
    return len(killed)


# --- the scenarios ------------------------------------------------------------------------------------


class World(Protocol):
    """One scenario: the fakes, the store, the settings and the command under test."""

    config: Path
    sections: Sections
    notes: list[str]

    def command(self) -> list[str]: ...
    def vendor_requests(self) -> int: ...
    def clear_faults(self) -> None: ...
    def damage(self) -> tuple[int, int]: ...
    def operator_step(self) -> str | None: ...
    def note_run(self, run: CliRun, hours: set[datetime]) -> None: ...
    def settle(self) -> None: ...
    def later(self) -> AbstractContextManager[object]: ...


class _Settings:
    """Keeps the settings file in step with ``sections`` (a row may change a key, then put it back);
    ``notes`` says what an injected fault did (shown with the recovery)."""

    config: Path
    sections: Sections
    notes: list[str]

    def write(self, section: str, **values: Any) -> None:
        self.sections.setdefault(section, {}).update(values)
        write_settings(self.config, self.sections)

    def operator_step(self) -> str | None:
        return None

    def note_run(self, run: CliRun, hours: set[datetime]) -> None:
        """Nothing to remember by default."""

    def settle(self) -> None:
        """Wait until the vendor is no longer working on a call (nothing to wait for by default)."""

    def later(self) -> AbstractContextManager[object]:
        """The time the operator's steps and the next run happen in (by default: now)."""
        return nullcontext()


class HookedWhmcs(FakeWhmcs):
    """The WHMCS fake with a hook, ``before(action)``, run as each call arrives (to act mid-push), and a
    wait for the calls it is still working on (a slow call applies after the bridge gave up on it)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.before: Callable[[str], None] | None = None
        self._busy = 0
        self._idle = threading.Condition()

    def start(self) -> None:
        super().start()
        assert self._server is not None
        self._server.handle_error = lambda *_: None  # type: ignore[method-assign]  # replies to gone clients

    def handle(self, params: dict[str, str]) -> tuple[int, str, bytes] | None:
        with self._idle:
            self._busy += 1
        try:
            if self.before is not None:
                self.before(params.get("action", ""))
            return super().handle(params)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self) -> None:
        """Until no call is in the works (bounded only as a hang guard)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._busy == 0, timeout=HANG_GUARD_SECONDS):
                raise RuntimeError("the WHMCS fake is still busy")


class PushWorld(_Settings):
    """``push``: bridge clients, each with one issued October invoice, to a WHMCS that knows none of them."""

    def __init__(self, stack: ExitStack, directory: Path, url: str, scale: Scale, sections: Sections) -> None:
        self.url = url
        self.notes = []
        self.whmcs = stack.enter_context(HookedWhmcs(hold_seconds=1.5))
        self.config = directory / "settings.toml"
        self.sections = {
            "database": {"url": url},
            "logging": {"format": "json"},
            "whmcs": whmcs_section(self.whmcs, read_timeout_seconds=1.0),
        }
        for name, values in sections.items():
            self.sections.setdefault(name, {}).update(values)
        write_settings(self.config, self.sections)
        app = build_app(parse_settings({"database": {"url": url}}))
        self.emails = [f"client{n}@example.com" for n in range(scale.clients)]
        self.references = []
        for n, email in enumerate(self.emails):
            client = app.clients.add(email=email, name=f"Client {n}")
            self.references.append(issue_invoice(app.engine, client.id, "2022-10", ["10.00", f"{n}.25"]))
        app.close()

    def command(self) -> list[str]:
        return ["push"]

    def settle(self) -> None:
        self.whmcs.wait_idle()

    def later(self) -> AbstractContextManager[object]:
        """The next push comes after whmcs.in_doubt_settle_seconds (the daemon's push job runs every few
        minutes): a row whose answer was lost is looked up only once WHMCS can no longer be applying it."""
        settle = timedelta(seconds=WhmcsSettings.model_fields["in_doubt_settle_seconds"].default) + timedelta(
            minutes=1
        )
        return time_machine.travel(SystemClock().now() + settle, tick=True)

    def vendor_requests(self) -> int:
        return self.whmcs.call_count()

    def clear_faults(self) -> None:
        self.whmcs.clear_faults()
        self.whmcs.before = None

    def operator_step(self) -> str | None:
        """``outbox retry`` for each row the next push would not send: failed, or put off until later."""
        now = SystemClock().now()
        waiting = [
            row
            for row in json.loads(run_cli(self.config, "outbox", "--json").out)
            if row["state"] == "failed" or datetime.fromisoformat(row["next_attempt_at"]) > now
        ]
        for row in waiting:
            run_cli(self.config, "outbox", "retry", str(row["id"]))
        return f"outbox retry ({len(waiting)} rows)" if waiting else None

    def damage(self) -> tuple[int, int]:
        with self.whmcs._lock:
            emails = [client.email for client in self.whmcs.clients.values()]
        counts = [len(whmcs_invoices_carrying(self.whmcs, ref)) for ref in self.references]
        counts += [emails.count(email) for email in self.emails]
        return sum(max(0, n - 1) for n in counts), sum(1 for n in counts if n == 0)


class NovaWorld(_Settings):
    """``sync --source openstack``: four instances (one launched and one deleted mid-window) over
    ``scale.windows`` hourly windows, after a first window collected fault-free (the watermark)."""

    def __init__(self, stack: ExitStack, directory: Path, url: str, scale: Scale, sections: Sections) -> None:
        self.url = url
        self.notes = []
        self.until = START + HOUR * (1 + scale.windows)
        self.nova = stack.enter_context(FakeOpenStack(FixedClock(START + timedelta(days=30))))
        day_before = START - timedelta(days=1)
        self.instances = [
            self.nova.create_server("p-1", at=day_before, name="web-1"),
            self.nova.create_server("p-2", at=day_before, name="db-1"),
            self.nova.create_server("p-1", at=START + timedelta(hours=1, minutes=30), name="late-1"),
            self.nova.create_server("p-2", at=day_before, name="gone-1"),
        ]
        self.nova.delete(self.instances[-1], START + timedelta(hours=2, minutes=15))
        self.config = directory / "settings.toml"
        self.sections = {
            "database": {"url": url},
            "logging": {"format": "json"},
            "openstack": self.nova.section(retry_wait_max_seconds=0),
        }
        for name, values in sections.items():
            self.sections.setdefault(name, {}).update(values)
        write_settings(self.config, self.sections)
        seed = run_cli(
            self.config, "sync", "--source", "openstack", "--from", _iso(START), "--until", _iso(START + HOUR)
        )
        assert seed.code == 0, seed.err

    def command(self) -> list[str]:
        return ["sync", "--source", "openstack", "--until", _iso(self.until)]

    def vendor_requests(self) -> int:
        return len(self.nova.usage_requests()) + len(self.nova.token_requests())

    def clear_faults(self) -> None:
        self.nova.clear_faults()
        self.nova.before_usage = None

    def damage(self) -> tuple[int, int]:
        expected: dict[tuple[str, datetime], Decimal] = {}
        start = START
        while start < self.until:
            for server_id in self.instances:
                hours = hours_for(self.nova.instance(server_id), start, start + HOUR)
                if hours > 0:
                    expected[(server_id, start)] = Decimal(repr(hours)).quantize(HOURS_PLACES)
            start += HOUR
        stored = _stored_hours(self.url, "openstack")
        duplicates = sum(1 for key, hours in stored.items() if hours > expected.get(key, Decimal(0)))
        losses = sum(1 for key, hours in expected.items() if stored.get(key, Decimal(0)) < hours)
        return duplicates, losses


class SolusWorld(_Settings):
    """``sync --source solusvm``: running servers over pages of two, and one stopped server."""

    def __init__(self, stack: ExitStack, directory: Path, url: str, scale: Scale, sections: Sections) -> None:
        self.url = url
        self.notes = []
        self.solus = stack.enter_context(FakeSolusVM(per_page=2))
        user = self.solus.add_user("ann@example.com")
        plan = self.solus.add_plan("small", tokens_per_hour=7)
        self.running = [
            str(self.solus.add_server(f"vps-{n}", user_id=user["id"], plan_id=plan["id"])["id"])
            for n in range(scale.servers)
        ]
        self.solus.add_server("off-1", user_id=user["id"], plan_id=plan["id"], status="stopped")
        self.config = directory / "settings.toml"
        self.sections = {
            "database": {"url": url},
            "logging": {"format": "json"},
            "solusvm": {
                "enabled": True,
                "url": self.solus.url,
                "token": self.solus.token,
                "max_retry_wait_seconds": 0.01,
            },
        }
        for name, values in sections.items():
            self.sections.setdefault(name, {}).update(values)
        write_settings(self.config, self.sections)
        self.observed: list[set[datetime]] = []

    def command(self) -> list[str]:
        return ["sync", "--source", "solusvm"]

    def vendor_requests(self) -> int:
        with self.solus._lock:
            return len(self.solus.requests)

    def clear_faults(self) -> None:
        with self.solus._lock:
            self.solus._faults.clear()

    def note_run(self, run: CliRun, hours: set[datetime]) -> None:
        """A run that succeeded observed the servers in one of ``hours`` (two if it crossed an hour)."""
        if run.code == 0:
            self.observed.append(hours)

    def damage(self) -> tuple[int, int]:
        """Billed from runtime (issue 14): each running server (created long before) ran every hour from
        the open months' start (the billing month before the first run's) up to the last successful run.
        A duplicate is an hour billed for the stopped server, beyond one hour, or after the last run's
        hours; a loss is a whole hour before the last run's hours billed less than in full."""
        stored = _stored_hours(self.url, "solusvm")
        if not self.observed:
            return len(stored), 0
        first, last = min(min(hours) for hours in self.observed), max(max(hours) for hours in self.observed)
        duplicates = sum(
            1
            for (server, hour), hours in stored.items()
            if server not in self.running or hours > 1 or hour > last
        )
        settled = min(self.observed[-1])  # the last run's first hour: every hour before it ran in full
        hour, losses = open_months(first, UTC), 0
        while hour < settled:
            losses += sum(1 for server in self.running if stored.get((server, hour), Decimal(0)) < 1)
            hour += timedelta(hours=1)
        return duplicates, losses


def _stored_hours(url: str, source: str) -> dict[tuple[str, datetime], Decimal]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(usage_records.c.resource_id, usage_records.c.window_start, usage_records.c.hours).where(
                usage_records.c.source == source
            )
        ).all()
    engine.dispose()
    return {(row.resource_id, row.window_start): row.hours for row in rows}


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


WORLDS: dict[str, type[PushWorld | NovaWorld | SolusWorld]] = {
    "push": PushWorld,
    "nova": NovaWorld,
    "solusvm": SolusWorld,
}


# --- the faults ---------------------------------------------------------------------------------------

Inject = Callable[[Any], None]


@dataclass(frozen=True)
class VendorFault:
    """One row: inject the fault into the world, expect this exit code from the faulted run; ``fix`` is
    the operator's repair before the next run (returns what it did)."""

    name: str
    world: Literal["push", "nova", "solusvm"]
    inject: Inject
    expect: int | tuple[int, ...]
    fix: Callable[[Any], str] | None = None
    backend: Backend = "sqlite"
    sections: Sections = field(default_factory=dict)


def on_usage_request(number: int, fault: Fault) -> Inject:
    """Nova answers its ``number``-th usage request of the run with ``fault`` (a fault mid-run)."""

    def inject(world: NovaWorld) -> None:
        seen = {"requests": 0}
        lock = threading.Lock()

        def before(_request: RecordedRequest) -> None:
            with lock:
                seen["requests"] += 1
                now = seen["requests"] == number
            if now:
                world.nova.fail_next(fault)

        world.nova.before_usage = before

    return inject


def whmcs(kind: str, action: str | None = "CreateInvoice", **options: Any) -> Inject:
    return lambda world: world.whmcs.fail(kind, action=action, **options)


def wrong(section: str, key: str, value: Any) -> tuple[Inject, Callable[[Any], str]]:
    """A wrong setting for the faulted run, and the operator's fix (the right value) before the next."""
    holder: dict[str, Any] = {}

    def inject(world: Any) -> None:
        holder["right"] = world.sections[section][key]
        world.write(section, **{key: value})

    def fix(world: Any) -> str:
        world.write(section, **{key: holder["right"]})
        return f"fix {section}.{key}"

    return inject, fix


def ip_not_allowed(world: PushWorld) -> None:
    world.whmcs.access_key = "bypass-the-ip-allow-list"  # WHMCS answers 403 "Invalid IP" without it


def allow_ip(world: PushWorld) -> str:
    world.write("whmcs", access_key="bypass-the-ip-allow-list")
    return "set whmcs.access_key"


def kill_sessions_before_create_invoice(world: PushWorld) -> None:
    done = threading.Event()

    def before(action: str) -> None:
        if action == "CreateInvoice" and not done.is_set():
            done.set()
            world.notes.append(f"{kill_sessions(world.url)} sessions killed")

    world.whmcs.before = before


def kill_sessions_mid_sync(world: NovaWorld) -> None:
    seen = {"requests": 0}

    def before(_request: RecordedRequest) -> None:
        seen["requests"] += 1
        if seen["requests"] == 2:
            world.notes.append(f"{kill_sessions(world.url)} sessions killed")

    world.nova.before_usage = before


def created_in_the_future(world: SolusWorld) -> None:
    world.solus.servers[1]["created_at"] = "2099-01-01T00:00:00.000000Z"


def clock_fixed(world: SolusWorld) -> str:
    world.solus.servers[1]["created_at"] = "2024-01-01T00:00:00.000000Z"
    return "SolusVM's clock fixed; next run"


WRONG_SECRET = wrong("whmcs", "secret", "not-the-secret")
WRONG_PASSWORD = wrong("openstack", "password", "not-the-password")

FAULTS: tuple[VendorFault, ...] = (
    # WHMCS, under `push`. A write whose answer was lost (or may have been applied) is in doubt: the push
    # exits 1 with the row put off, and a push after whmcs.in_doubt_settle_seconds looks it up first.
    VendorFault("WHMCS answers HTTP 500 once", "push", whmcs("http_500"), 1),
    VendorFault("WHMCS down: HTTP 500 on every call", "push", whmcs("http_500", action=None, times=None), 1),
    VendorFault("WHMCS times out, call not applied", "push", whmcs("timeout"), 1),
    VendorFault(
        "WHMCS applies a call after the read timeout",
        "push",
        whmcs("slow", latency_ms=1500),
        1,
    ),
    VendorFault("WHMCS answers an HTML maintenance page", "push", whmcs("html"), 1),
    VendorFault(
        "WHMCS result=error",
        "push",
        whmcs("error", message="Invalid Payment Method. Valid options include"),
        1,
    ),
    VendorFault("WHMCS 403: IP not allowed", "push", ip_not_allowed, 1, fix=allow_ip),
    VendorFault("WHMCS refuses the API credentials", "push", WRONG_SECRET[0], 1, fix=WRONG_SECRET[1]),
    VendorFault("WHMCS applies CreateInvoice, then drops the reply", "push", whmcs("commit_then_drop"), 1),
    VendorFault(
        "WHMCS applies AddClient, then drops the reply",
        "push",
        whmcs("commit_then_drop", action="AddClient"),
        1,
    ),
    # Keystone and Nova, under `sync --source openstack`
    VendorFault(
        "Keystone token request fails once (HTTP 503)", "nova", lambda w: w.nova.fail_token_requests(503), 0
    ),
    VendorFault("Keystone refuses the credentials", "nova", WRONG_PASSWORD[0], 1, fix=WRONG_PASSWORD[1]),
    VendorFault("Keystone token expires mid-run", "nova", on_usage_request(2, Fault.token_expired()), 0),
    VendorFault("Nova HTTP 503 twice", "nova", lambda w: w.nova.fail_next(Fault.http(503), times=2), 0),
    VendorFault(
        "Nova HTTP 503 on every try", "nova", lambda w: w.nova.fail_next(Fault.http(503), times=5), 1
    ),
    VendorFault("Nova drops the connection mid-run", "nova", on_usage_request(2, Fault.disconnect()), 0),
    VendorFault("Nova partial page (body cut off)", "nova", on_usage_request(2, Fault.cut_off()), 0),
    VendorFault(
        "Nova reports 25 h in a 1 h window", "nova", on_usage_request(2, Fault.server_field("hours", 25.0)), 2
    ),
    VendorFault(
        "Nova lists a server under another project",
        "nova",
        on_usage_request(2, Fault.server_field("tenant_id", "p-other")),
        2,
    ),
    VendorFault("Nova empty page with a next link", "nova", on_usage_request(2, Fault.empty_with_next()), 2),
    # SolusVM, under `sync --source solusvm`
    VendorFault(
        "SolusVM 429 with Retry-After: 1",
        "solusvm",
        lambda w: w.solus.rate_limit_next("1"),
        0,
        sections={"solusvm": {"max_retry_wait_seconds": 5}},
    ),
    VendorFault("SolusVM 429 asking to wait 120 s", "solusvm", lambda w: w.solus.rate_limit_next("120"), 1),
    VendorFault("SolusVM HTTP 500 twice", "solusvm", lambda w: w.solus.fail_next(2), 0),
    VendorFault(
        "SolusVM last_page 10^9, empty pages",
        "solusvm",
        lambda w: w.solus.inflate_paging_next(10**9, total=10**11, n=100, path="/api/v1/servers"),
        2,
    ),
    VendorFault(
        "SolusVM last_page 10^9, honest total",
        "solusvm",
        lambda w: w.solus.inflate_paging_next(10**9, n=100, path="/api/v1/servers"),
        2,
    ),
    VendorFault("SolusVM server created in the future", "solusvm", created_in_the_future, 2, fix=clock_fixed),
    VendorFault("SolusVM answers an HTML login page", "solusvm", lambda w: w.solus.html_next(), 1),
    # The database
    VendorFault(
        "PostgreSQL sessions killed mid-sync (restart)",
        "nova",
        kill_sessions_mid_sync,
        0,
        backend="postgresql",
    ),
    VendorFault(  # another push thread may be mid-statement when its session dies: exit 1, one line
        "PostgreSQL sessions killed mid-push (restart)",
        "push",
        kill_sessions_before_create_invoice,
        (0, 1),
        backend="postgresql",
    ),
)


# --- running a row ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultResult:
    fault: VendorFault
    exit_code: int
    line: str
    recovery: str
    recovered: bool
    retries: int
    duplicates: int
    losses: int

    @property
    def as_expected(self) -> bool:
        expect = self.fault.expect
        return self.exit_code in (expect if isinstance(expect, tuple) else (expect,))

    @property
    def healthy(self) -> bool:
        return self.as_expected and self.recovered and self.duplicates == 0 and self.losses == 0

    def cells(self) -> tuple[str, ...]:
        return (
            self.fault.name,
            _short(f"exit {self.exit_code}: {self.line}"),
            self.recovery if self.recovered else f"{self.recovery}: NOT RECOVERED",
            str(self.retries),
            str(self.duplicates),
            str(self.losses),
        )


def _hours_now() -> datetime:
    return hour_start(SystemClock().now())


def _drive(
    world: World, inject: Inject | None, fix: Callable[[Any], str] | None
) -> tuple[CliRun, list[str], CliRun]:
    """The faulted run, the operator's steps after it, and the run after them."""
    if inject is not None:
        inject(world)
    before = _hours_now()
    first = run_cli(world.config, *world.command())
    world.note_run(first, {before, _hours_now()})
    world.settle()  # the next run comes later, when the vendor has finished what it was doing
    world.clear_faults()
    with world.later():
        steps = [fix(world)] if fix is not None else []
        step = world.operator_step()
        if step is not None:
            steps.append(step)
        before = _hours_now()
        second = run_cli(world.config, *world.command())
        world.note_run(second, {before, _hours_now()})
        world.settle()
    return first, steps, second


@cache
def _clean_requests(world: str, size: Size) -> int:
    """Vendor requests of the two runs of a scenario when nothing goes wrong (the retries' baseline)."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url = stack.enter_context(migrated_database("sqlite", Path(tmp)))
        scenario = WORLDS[world](stack, Path(tmp), url, SCALES[size], {})
        start = scenario.vendor_requests()
        _drive(scenario, None, None)
        return scenario.vendor_requests() - start


def run_fault(fault: VendorFault, size: Size) -> FaultResult:
    """One row, from a fresh store and fresh fakes."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url = stack.enter_context(migrated_database(fault.backend, Path(tmp)))
        world = WORLDS[fault.world](stack, Path(tmp), url, SCALES[size], fault.sections)
        start = world.vendor_requests()
        first, steps, second = _drive(world, fault.inject, fault.fix)
        requests = world.vendor_requests() - start
        duplicates, losses = world.damage()
    return FaultResult(
        fault=fault,
        exit_code=first.code,
        line=operator_line(first),
        recovery=", ".join([*world.notes, *(steps or ["next run"])]),
        recovered=second.code == 0,
        retries=max(0, requests - _clean_requests(fault.world, size)),
        duplicates=duplicates,
        losses=losses,
    )


def results(size: Size) -> list[FaultResult]:
    return [run_fault(fault, size) for fault in FAULTS]


def table_of(found: list[FaultResult]) -> Table:
    return Table(
        title="Vendor fault matrix: each fault, what the operator sees, and what it cost after recovery",
        columns=COLUMNS,
        rows=tuple(result.cells() for result in found),
        totals={
            "faults": len(found),
            "exit as expected": sum(1 for result in found if result.as_expected),
            "recovered": sum(1 for result in found if result.recovered),
            "duplicates": sum(result.duplicates for result in found),
            "losses": sum(result.losses for result in found),
        },
    )


def table(size: Size) -> Table:
    return table_of(results(size))


def healthy(found: Table) -> bool:
    totals = found.totals
    faults = totals["faults"]
    return (
        faults >= MIN_FAULTS
        and totals["exit as expected"] == faults
        and totals["recovered"] == faults
        and totals["duplicates"] == 0
        and totals["losses"] == 0
    )
