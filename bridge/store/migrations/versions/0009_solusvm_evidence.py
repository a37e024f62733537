"""SolusVM runtime evidence (issue 14): servers (kept after deletion), polls, and task/activity records.

A SolusVM server-month is billed from the runtime these rebuild (bridge/domain/runtime.py), not from the
hours a poll happened to see. ``solusvm_records`` keeps the vendor's fields, not derived events, so the
derivation may improve; ``listed_after``/``listed_at`` are the syncs between which a record first appeared.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "solusvm_servers",
        sa.Column("server_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_listed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("server_id", name="pk_solusvm_servers"),
    )
    op.create_index("ix_solusvm_servers_last_listed_at", "solusvm_servers", ["last_listed_at"])
    op.create_table(
        "solusvm_polls",
        sa.Column("server_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("server_id", "at", name="pk_solusvm_polls"),
    )
    op.create_table(
        "solusvm_records",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("listed_after", UTCDateTime(), nullable=True),
        sa.Column("listed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "record_id", name="pk_solusvm_records"),
    )
    op.create_index("ix_solusvm_records_server_id", "solusvm_records", ["server_id"])


def downgrade() -> None:
    op.drop_index("ix_solusvm_records_server_id", table_name="solusvm_records")
    op.drop_table("solusvm_records")
    op.drop_table("solusvm_polls")
    op.drop_index("ix_solusvm_servers_last_listed_at", table_name="solusvm_servers")
    op.drop_table("solusvm_servers")
