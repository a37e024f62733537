"""Shared fixtures: a migrated database on each backend, settings, a fixed clock and an app."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import Engine, text

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.logs import CHATTY_LIBRARIES
from bridge.settings import Settings, parse_settings
from bridge.store.database import make_engine, migrate
from bridge.store.tables import metadata
from tests.support.databases import BACKENDS, server_database

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


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


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, _migrated_servers: dict[str, str]) -> Iterator[str]:
    """A migrated, empty database on ``backend``; emptied again after the test."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    url = _migrated_servers[backend]
    yield url
    _empty_all_tables(url, backend)


def _empty_all_tables(url: str, backend: str) -> None:
    """Empty every table and restart the id counters, so each test starts like a fresh database."""
    names = [table.name for table in metadata.sorted_tables]
    engine = make_engine(url)
    with engine.begin() as connection:
        if backend == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            for name in names:
                connection.execute(text(f"TRUNCATE TABLE {name}"))
            connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    engine.dispose()


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
