"""The database schema as the operator manages it: upgrading it to this version's head, and the checks
made before a command touches billing data (a schema behind the code, a SQLite file not made yet)."""

from __future__ import annotations

from bridge.store.database import (
    ensure_sqlite_directory,
    migrate,
    require_schema_at_head,
    sqlite_file_missing,
)
from bridge.store.unit_of_work import UnitOfWork


def upgrade(uow: UnitOfWork, url: str) -> tuple[str | None, str]:
    """Upgrade to head (making a SQLite file's directory first); safe to repeat. Returns the revisions
    (before, after)."""
    ensure_sqlite_directory(url)
    return migrate(uow.engine)


def require_at_head(uow: UnitOfWork) -> None:
    """Raise :class:`~bridge.errors.BridgeError`, saying to run ``migrate``, unless the schema is at head."""
    require_schema_at_head(uow.engine)


def database_missing(url: str) -> bool:
    """True for a SQLite URL whose file does not exist yet (so ``run`` can say to migrate, not create it)."""
    return sqlite_file_missing(url)
