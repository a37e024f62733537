"""Connecting to the store and keeping its schema at the code's revision (Alembic)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bridge.errors import BridgeError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, connect_timeout: int = 10) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": backend != "sqlite"}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif backend in ("mysql", "mariadb"):
        kwargs["connect_args"] = {"connect_timeout": connect_timeout, "charset": "utf8mb4"}
        kwargs["pool_recycle"] = 3600
        kwargs["isolation_level"] = "READ COMMITTED"
    elif backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": connect_timeout}
    engine = create_engine(parsed, **kwargs)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT (and so rollbacks of nested work): the bridge
    # emits BEGIN itself, as SQLAlchemy's documentation for pysqlite recommends.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "")
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


SQLITE_BEGIN = "sqlite_begin"


def write_connection(engine: Engine) -> Connection:
    """A connection for a transaction that reads and then writes.

    On SQLite its transaction takes the write lock at BEGIN (IMMEDIATE), so it waits for another writer
    instead of failing with "database is locked" half-way; plain reads stay concurrent. Other databases
    lock rows as usual.
    """
    return engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory of a SQLite file (only on the way to migrating, never on a bad config)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    if len(heads) != 1:
        raise BridgeError(f"migrations have {len(heads)} heads {heads}; merge them before release")
    return heads[0]


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head


def schema_state(engine: Engine) -> SchemaState:
    """Where the database's schema stands against the code; raises BridgeError if it does not answer.

    A SQLite file that does not exist is an empty database: reading it would create it, so it is not read.
    """
    if sqlite_file_missing(engine.url.render_as_string(hide_password=False)):
        return SchemaState(current=None, head=head_revision())
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        raise BridgeError(f"database does not answer: {_reason(error)}") from None
    return SchemaState(current=current, head=head_revision())


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to head; safe to repeat. Returns (revision before, revision after)."""
    before = schema_state(engine).current
    try:
        command.upgrade(alembic_config(engine), "head")
    except SQLAlchemyError as error:
        raise BridgeError(f"migration failed: {_reason(error)}") from None
    return before, head_revision()


def require_schema_at_head(engine: Engine) -> None:
    state = schema_state(engine)
    if not state.at_head:
        raise BridgeError(
            f"database schema is at revision {state.current or 'none'} but this version needs {state.head}; "
            "run `billing-bridge migrate` first"
        )


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _reason(error: SQLAlchemyError) -> str:
    """The driver's message without the SQL statement or parameters (which may hold data)."""
    original = getattr(error, "orig", None)
    return str(original if original is not None else error).splitlines()[0]


def sqlite_file_missing(url: str) -> bool:
    """True for a SQLite URL whose file does not exist yet (so `run` can say to migrate, not create it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return False
    return not Path(parsed.database).exists()
