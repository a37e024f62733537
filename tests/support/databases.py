"""Fresh test databases on SQLite, MariaDB and PostgreSQL (127.0.0.1, as on every dev and CI machine)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SERVERS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
}
BACKENDS = ("sqlite", "mariadb", "postgresql")


def services_required() -> bool:
    return os.environ.get("BRIDGE_REQUIRE_SERVICES") == "1"


def unavailable(backend: str, reason: str) -> None:
    """Skip, or fail under BRIDGE_REQUIRE_SERVICES=1 (CI must exercise every database)."""
    message = f"{backend} on 127.0.0.1 is not available ({reason})"
    if services_required():
        pytest.fail(message + "; BRIDGE_REQUIRE_SERVICES=1 requires it", pytrace=False)
    pytest.skip(message)


@contextmanager
def server_database(backend: str) -> Iterator[str]:
    """Create an empty database with a unique name on the server, yield its URL, drop it afterwards."""
    name = f"bb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(SERVERS[backend], isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
            if backend == "postgresql":
                # A commit need not wait for the disk: no test outlives the server, and the WAL flush
                # per commit was most of the wait of a PostgreSQL test. What a transaction sees is as before.
                connection.execute(text(f"ALTER DATABASE {name} SET synchronous_commit = off"))
    except Exception as error:
        admin.dispose()
        unavailable(backend, str(error).splitlines()[0])
    url = make_url(SERVERS[backend]).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            if backend == "postgresql":
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
