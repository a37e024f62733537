"""Shared fixtures: a migrated database on each backend, settings, a fixed clock and an app.

Which databases a test runs on is decided here, once (:data:`EVERY_BACKEND`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Connection, Engine, text

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.logs import CHATTY_LIBRARIES
from bridge.settings import Settings, parse_settings
from bridge.store.database import make_engine, migrate
from bridge.store.tables import metadata
from tests.support.clock import START
from tests.support.databases import BACKENDS, server_database

# Property tests assert what holds, never how fast: no per-example deadline and no "too slow" health check,
# which fail on a loaded 2-core CI machine though nothing is wrong. Examples are bounded by count.
hypothesis_settings.register_profile(
    "bridge", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
hypothesis_settings.load_profile("bridge")

EVERY_BACKEND: dict[str, tuple[str, ...]] = {
    # The store: the repository contract suite (one module per store module), the migrations, the column
    # types and the timeouts. What differs between the databases (types, locking, upserts, Decimal
    # precision, aware datetimes, FOR UPDATE / BEGIN IMMEDIATE) is proven there once per repository.
    "tests/store/": (),
    # Two transactions at once: each database waits for a lock, and gives up, in its own way.
    "tests/usage/test_sync.py": (
        "test_a_sync_blocked_by_another_transaction_fails_with_one_line_naming_the_timeout",
    ),
    "tests/sync/test_push.py": ("test_one_clients_rows_stay_in_order_while_clients_go_in_parallel",),
    "tests/web/test_enrollment_flow.py": ("test_a_double_submit_and_a_reload_make_nothing_twice",),
    # Leases and fencing: racing UPDATEs and INSERTs whose outcome rests on each database's isolation.
    "tests/sync/test_jobs.py": (
        "test_two_daemons_never_run_the_same_job_at_once",
        "test_an_expired_lease_of_a_dead_daemon_is_taken_over",
        "test_racing_daemons_take_a_free_lease_exactly_once",
        "test_every_acquisition_gets_a_new_token_and_only_the_current_one_renews",
        "test_a_lease_past_its_expiry_stops_the_run_at_its_next_checkpoint",
        "test_a_lease_taken_over_fails_the_holders_checks_and_fenced_writes",
    ),
    "tests/sync/test_push_lease.py": (),
    # Several daemons pushing at once: clients claimed with FOR UPDATE SKIP LOCKED, or SQLite's one writer.
    "tests/sync/test_push_shared.py": (),
    # Month end and a plan recalculation exclude each other across daemons through their leases.
    "tests/sync/test_exclusions.py": (),
    # Several workers claiming chunks of one run (FOR UPDATE SKIP LOCKED, or SQLite's one writer).
    "tests/services/test_shared_runs.py": (),
    # Crash tests: processes killed mid-transaction, and what each database keeps of it.
    "tests/sync/test_push_crash.py": (),
    # Issue 12's promise in the test's name: text each database would truncate, refuse or keep.
    "tests/cli/test_input_bounds.py": (
        "test_a_name_too_long_or_with_control_characters_exits_2_on_every_database",
    ),
}
"""Tests that run on SQLite, MariaDB and PostgreSQL: a file or folder (every test in it), or the named
tests of a file. Every other test that asks for a ``database_url`` runs on SQLite only: it uses the
database for what the contract suite in tests/store/ proves on all three, so two more runs would prove
nothing more. A test may still choose its databases with ``@pytest.mark.parametrize("backend", [...])``,
and ``BRIDGE_EVERY_BACKEND=1`` runs every test on all three (before a release, say)."""


def backends_for(path: str, name: str) -> tuple[str, ...]:
    """The databases the test ``name`` of the file ``path`` (relative to the root) runs on."""
    if os.environ.get("BRIDGE_EVERY_BACKEND") == "1":
        return BACKENDS
    for listed, names in EVERY_BACKEND.items():
        if (path == listed or (listed.endswith("/") and path.startswith(listed))) and (
            not names or name in names
        ):
            return BACKENDS
    return ("sqlite",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give ``backend`` its databases, unless the test parametrizes it itself."""
    if "backend" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if "backend" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return
    path = metafunc.definition.nodeid.split("::", 1)[0]
    metafunc.parametrize("backend", backends_for(path, metafunc.function.__name__), indirect=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    """A stale entry in EVERY_BACKEND (a test renamed or moved) would silently lose its databases."""
    root = Path(str(session.config.rootpath))
    for path, names in EVERY_BACKEND.items():
        if not (root / path).exists():
            raise pytest.UsageError(f"EVERY_BACKEND names {path}, which does not exist")
        for name in names:
            if not re.search(rf"^def {name}\(", (root / path).read_text(), re.MULTILINE):
                raise pytest.UsageError(f"EVERY_BACKEND names {name}, which is no test in {path}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``make test`` (pytest-xdist, ``--dist loadgroup``) tests go to whichever worker is free, but
    the tests of a module that share a module-scoped fixture (the fault matrix, the bad-input table, a
    forkserver) stay on one worker, so the fixture is built once."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None:
            continue
        if any(defs[-1].scope == "module" for defs in definitions.name2fixturedefs.values() if defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging for the whole process; give the next test the state it found."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in CHATTY_LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)
    structlog.reset_defaults()


class _MigratedServers(dict[str, str]):
    """Backend -> URL of one migrated database per server, created on first use and kept for the run."""

    def __init__(self, stack: ExitStack) -> None:
        super().__init__()
        self._stack = stack

    def __missing__(self, backend: str) -> str:
        url = self._stack.enter_context(server_database(backend))
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        self[backend] = url
        return url


@pytest.fixture(scope="session")
def _migrated_servers() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        yield _MigratedServers(stack)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database a test runs on: parametrized by :func:`pytest_generate_tests`."""
    return str(request.param)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (per xdist worker): tests get a copy of it, which
    is what migrating a new file gives, without running every migration for every test."""
    path = tmp_path_factory.mktemp("template") / "bridge.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as connection:  # fold the WAL into the file, so the file alone is the database
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def database_url(
    backend: str, tmp_path: Path, _sqlite_template: Path, _migrated_servers: dict[str, str]
) -> Iterator[str]:
    """A migrated, empty database on ``backend``; emptied again after the test."""
    if backend == "sqlite":
        path = tmp_path / "bridge.sqlite3"
        shutil.copyfile(_sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url = _migrated_servers[backend]
    yield url
    _empty_all_tables(url, backend)


def _empty_all_tables(url: str, backend: str) -> None:
    """Empty every table and restart the id counters, so each test starts like a fresh database.

    Only the tables the test touched (rows, or an id counter that moved, also by a rolled-back insert)
    are truncated: on MariaDB each TRUNCATE recreates its table, and a test touches a few of the 22.
    """
    engine = make_engine(url)
    with engine.begin() as connection:
        touched = _touched_tables(connection, backend)
        if touched and backend == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(touched)} RESTART IDENTITY CASCADE"))
        elif touched:
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            for name in touched:
                connection.execute(text(f"TRUNCATE TABLE {name}"))
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    engine.dispose()


def _touched_tables(connection: Connection, backend: str) -> list[str]:
    """The bridge's tables that hold a row or whose id counter has moved."""
    names = [table.name for table in metadata.sorted_tables]
    probes = " UNION ALL ".join(
        f"SELECT '{name}' AS name FROM (SELECT 1 AS one FROM {name} LIMIT 1) AS probe_{name}"
        for name in names
    )
    touched = set(connection.execute(text(probes)).scalars())
    if backend == "postgresql":
        sequences = connection.execute(
            text(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
            )
        ).scalars()
        counters = set(sequences)
        touched |= {name for name in names if f"{name}_id_seq" in counters}
    else:
        moved = connection.execute(
            text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND auto_increment > 1"
            )
        ).scalars()
        touched |= set(moved) & set(names)
    return [name for name in names if name in touched]


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, for migration tests."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    with server_database(backend) as url:
        yield url


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings from TOML-shaped sections; the state directory is the test's temporary directory."""

    def build(database_url: str = "", **sections: dict[str, Any]) -> Settings:
        raw: dict[str, Any] = {"daemon": {"state_dir": str(tmp_path / "state")}, **sections}
        raw.setdefault("database", {})["url"] = database_url
        return parse_settings(raw)

    return build


@pytest.fixture
def make_app(
    database_url: str, clock: FixedClock, make_settings: Callable[..., Settings]
) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def build(owner: str = "test-daemon", **sections: dict[str, Any]) -> App:
        app = build_app(make_settings(database_url, **sections), clock=clock, owner=owner)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return make_app()


@pytest.fixture
def engine(app: App) -> Engine:
    return app.engine
