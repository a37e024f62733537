"""Database waits are bounded and their failures are one line: statement timeouts and lost connections.

(A lock held by another transaction is tested through `sync` in tests/usage/test_sync.py.)
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bridge.store.database import DatabaseConnectionLost, DatabaseTimeout, make_engine

SLEEP = {"mariadb": "SELECT SLEEP(5)", "postgresql": "SELECT pg_sleep(5)"}


@pytest.mark.parametrize("backend", ["mariadb", "postgresql"])
def test_a_statement_past_the_statement_timeout_is_cancelled_with_one_line(
    backend: str, database_url: str
) -> None:
    engine = make_engine(database_url, statement_timeout=1)
    with pytest.raises(DatabaseTimeout) as raised, engine.connect() as connection:
        connection.execute(text(SLEEP[backend]))
    engine.dispose()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        "database: a statement ran longer than database.statement_timeout_seconds (1 s) and was cancelled"
    )


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_connection_ended_by_the_server_mid_statement_is_one_line(database_url: str) -> None:
    engine = make_engine(database_url)
    with pytest.raises(DatabaseConnectionLost) as raised, engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
    with engine.connect() as connection:  # the pool has dropped the dead connection
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("database connection lost mid-run (terminating connection due to administrator")
