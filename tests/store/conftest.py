"""The repository contract suite: every test in tests/store/ runs on SQLite, MariaDB and PostgreSQL.

In the style of APScheduler 3.x's tests/test_jobstores.py (one fixture parametrized over every store, every
test on every store): one test module per store module, each test a promise the repository keeps on every
database: exact money, aware UTC times, upserts that never double, a write that holds its lock, a condition
that picks one winner. Service tests build on those promises and run on SQLite only (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from bridge.store.database import make_engine
from bridge.store.unit_of_work import UnitOfWork


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The store's engine as the bridge makes it, on an empty migrated database (no app: the store alone)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> UnitOfWork:
    return UnitOfWork(engine)


@pytest.fixture
def impatient(database_url: str) -> Iterator[UnitOfWork]:
    """A second bridge on the same database that waits at most a second for a lock another holds."""
    engine = make_engine(database_url, lock_timeout=1)
    yield UnitOfWork(engine)
    engine.dispose()
