"""Connecting to the store and keeping its schema at the code's revision (Alembic).

Every connection waits at most ``database.lock_timeout_seconds`` for a lock another transaction holds,
and (MariaDB, PostgreSQL) lets no statement run longer than ``database.statement_timeout_seconds``; a run
that hits either, or whose connection is lost mid-statement (a database restart), fails with one
:class:`~bridge.errors.BridgeError` line naming the setting or the cause, instead of waiting forever or
printing the driver's multi-line error. Its transaction is rolled back, so nothing is half-written.

Alembic (with Mako, about 12 MB) is loaded only to migrate: where the schema stands is read from the
``alembic_version`` table and the migration files' ``revision`` lines, so the daemon never loads it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import SQLAlchemyError

from bridge.errors import BridgeError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


DEFAULT_LOCK_TIMEOUT = 30
DEFAULT_STATEMENT_TIMEOUT = 600

_PG_LOCK_NOT_AVAILABLE = "55P03"
_PG_QUERY_CANCELED = "57014"
_MYSQL_LOCK_WAIT_TIMEOUT = 1205
_MYSQL_STATEMENT_TIMEOUTS = (1969, 3024)  # MariaDB max_statement_time, MySQL max_execution_time


class DatabaseTimeout(BridgeError):
    """A statement waited longer than a lock or statement timeout allows; the message names the setting."""


class DatabaseConnectionLost(BridgeError):
    """The database closed the connection mid-run (a restart, an administrator ending the session)."""


def make_engine(
    url: str,
    *,
    connect_timeout: int = 10,
    lock_timeout: int = DEFAULT_LOCK_TIMEOUT,
    statement_timeout: int = DEFAULT_STATEMENT_TIMEOUT,
) -> Engine:
    """An engine for ``url`` with the lock and statement timeouts set on every connection (seconds;
    ``statement_timeout = 0`` means none). SQLite gets WAL, a busy timeout of ``lock_timeout`` and
    enforced foreign keys."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": backend != "sqlite"}
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": lock_timeout, "check_same_thread": False}
    elif backend in ("mysql", "mariadb"):
        kwargs["connect_args"] = {"connect_timeout": connect_timeout, "charset": "utf8mb4"}
        kwargs["pool_recycle"] = 3600
        kwargs["isolation_level"] = "READ COMMITTED"
    elif backend == "postgresql":
        options = f"-c lock_timeout={lock_timeout * 1000} -c statement_timeout={statement_timeout * 1000}"
        kwargs["connect_args"] = {"connect_timeout": connect_timeout, "options": options}
    engine = create_engine(parsed, **kwargs)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(lock_timeout))
        event.listen(engine, "begin", _sqlite_begin)
    elif backend in ("mysql", "mariadb"):
        event.listen(engine, "connect", _mysql_timeouts(lock_timeout, statement_timeout))
    event.listen(engine, "handle_error", _one_line_errors(lock_timeout, statement_timeout))
    return engine


def _mysql_timeouts(lock_timeout: int, statement_timeout: int) -> Callable[[Any, Any], None]:
    """Session timeouts: row locks (InnoDB) and metadata locks, and MariaDB's or MySQL's statement limit."""

    def set_timeouts(dbapi_connection: Any, _record: Any) -> None:
        mariadb = "mariadb" in dbapi_connection.get_server_info().lower()
        statement = (
            f"max_statement_time = {statement_timeout}"
            if mariadb
            else f"max_execution_time = {statement_timeout * 1000}"
        )
        cursor = dbapi_connection.cursor()
        cursor.execute(
            f"SET SESSION innodb_lock_wait_timeout = {lock_timeout}, lock_wait_timeout = {lock_timeout}, "
            f"{statement}"
        )
        cursor.close()

    return set_timeouts


def _one_line_errors(lock_timeout: int, statement_timeout: int) -> Callable[[ExceptionContext], Any]:
    """Turn a lock or statement timeout, or a connection lost mid-statement, into one clear BridgeError."""

    def translate(context: ExceptionContext) -> BridgeError | None:
        if context.is_pre_ping:
            return None  # the pool reconnects on its own
        original = context.original_exception
        kind = _timeout_kind(original)
        if kind == "lock":
            return DatabaseTimeout(
                f"database: waited more than database.lock_timeout_seconds ({lock_timeout} s) for a lock "
                "another transaction holds, so this transaction was rolled back; find the blocking session "
                "(pg_stat_activity, SHOW PROCESSLIST, another billing-bridge) or raise the setting"
            )
        if kind == "statement":
            return DatabaseTimeout(
                f"database: a statement ran longer than database.statement_timeout_seconds "
                f"({statement_timeout} s) and was cancelled, so this transaction was rolled back; raise the "
                "setting for a store this large (or for a long migration)"
            )
        if context.is_disconnect and context.connection is not None:
            return DatabaseConnectionLost(
                f"database connection lost mid-run ({_first_line(original)}); the unfinished transaction "
                "was rolled back, run again once the database is back"
            )
        return None

    return translate


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _timeout_kind(error: BaseException) -> str | None:
    """``"lock"`` or ``"statement"`` for a driver error that is one of the timeouts, else None."""
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate == _PG_LOCK_NOT_AVAILABLE:
        return "lock"
    if sqlstate == _PG_QUERY_CANCELED and "statement timeout" in str(error):
        return "statement"
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if code == _MYSQL_LOCK_WAIT_TIMEOUT:
        return "lock"
    if code in _MYSQL_STATEMENT_TIMEOUTS:
        return "statement"
    if type(error).__name__ == "OperationalError" and str(error) == "database is locked":
        return "lock"  # SQLite: the busy timeout ran out
    return None


def _sqlite_pragmas(lock_timeout: int) -> Callable[[Any, Any], None]:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT (and so rollbacks of nested work): the
        # bridge emits BEGIN itself, as SQLAlchemy's documentation for pysqlite recommends.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={lock_timeout * 1000}")
        cursor.close()

    return set_pragmas


def _sqlite_begin(connection: Any) -> None:
    """Emit SQLite's BEGIN, with the mode the unit of work asked for (IMMEDIATE for a writer)."""
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "")
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


SQLITE_BEGIN = "sqlite_begin"


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory of a SQLite file (only on the way to migrating, never on a bad config)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The revision the code needs: the one migration no other revises (tests hold it to Alembic's)."""
    revised: dict[str, tuple[str, ...]] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        revision, down_revision = _revision_lines(path)
        revised[revision] = down_revision
    heads = sorted(set(revised) - {old for olds in revised.values() for old in olds})
    if len(heads) != 1:
        raise BridgeError(f"migrations have {len(heads)} heads {heads}; merge them before release")
    return heads[0]


def _revision_lines(path: Path) -> tuple[str, tuple[str, ...]]:
    """A migration file's ``revision`` and the revisions it revises, read without running the file."""
    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    values[target.id] = ast.literal_eval(node.value) if node.value is not None else None
    down = values.get("down_revision")
    return str(values["revision"]), (down,) if isinstance(down, str) else tuple(down or ())


def current_revision(connection: Connection) -> str | None:
    """The revision in ``alembic_version`` (None before the first migration), as Alembic reads it."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(versions) > 1:
        raise BridgeError(f"the database records {len(versions)} schema heads {sorted(versions)}")
    return versions[0] if versions else None


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
            current = current_revision(connection)
    except SQLAlchemyError as error:
        raise BridgeError(f"database does not answer: {_reason(error)}") from None
    return SchemaState(current=current, head=head_revision())


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade to head; safe to repeat. Returns (revision before, revision after)."""
    from alembic import command

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
