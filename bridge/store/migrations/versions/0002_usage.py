"""Usage records (one per resource per collection window), a watermark per source, SolusVM plan rates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import ExactDecimal, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("resource_name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("plan", sa.String(128), nullable=False),
        sa.Column("hours", ExactDecimal(20, 8), nullable=False),
        sa.Column("tokens", ExactDecimal(20, 8), nullable=True),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_records"),
        sa.UniqueConstraint(
            "source", "window_start", "resource_id", name="uq_usage_records_source_window_start_resource_id"
        ),
    )
    op.create_index("ix_usage_records_owner_window_start", "usage_records", ["owner", "window_start"])
    op.create_index(
        "ix_usage_records_resource_id_window_start", "usage_records", ["resource_id", "window_start"]
    )
    op.create_table(
        "usage_watermarks",
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("collected_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("records_collected", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("source", name="pk_usage_watermarks"),
    )
    op.create_table(
        "solusvm_plans",
        sa.Column("plan_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("tokens_per_hour", sa.Integer(), nullable=False),
        sa.Column("tokens_per_month", sa.Integer(), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("plan_id", name="pk_solusvm_plans"),
    )


def downgrade() -> None:
    op.drop_table("solusvm_plans")
    op.drop_table("usage_watermarks")
    op.drop_index("ix_usage_records_resource_id_window_start", table_name="usage_records")
    op.drop_index("ix_usage_records_owner_window_start", table_name="usage_records")
    op.drop_table("usage_records")
