"""`billing-bridge migrate` builds the schema the code describes, and repeating it is harmless."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from bridge.errors import BridgeError
from bridge.store.database import (
    MIGRATIONS,
    head_revision,
    make_engine,
    migrate,
    require_schema_at_head,
    schema_state,
)
from bridge.store.tables import metadata


def alembics_reading(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_the_head_read_from_the_migration_files_is_alembics() -> None:
    assert [head_revision()] == ScriptDirectory(str(MIGRATIONS)).get_heads()


def test_migrate_from_empty_reaches_head_and_repeating_changes_nothing(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        assert schema_state(engine).current is None is alembics_reading(engine)
        with pytest.raises(BridgeError, match="run `billing-bridge migrate` first"):
            require_schema_at_head(engine)
        assert migrate(engine) == (None, head_revision())
        assert migrate(engine) == (head_revision(), head_revision())
        assert schema_state(engine).current == alembics_reading(engine) == head_revision()
        require_schema_at_head(engine)
    finally:
        engine.dispose()


def test_migrations_create_exactly_the_tables_the_code_uses(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        migrate(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
        assert differences == []
    finally:
        engine.dispose()
