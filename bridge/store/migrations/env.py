"""Alembic environment: runs against the engine billing-bridge hands it (see bridge.store.database)."""

from __future__ import annotations

from alembic import context

from bridge.store.tables import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
