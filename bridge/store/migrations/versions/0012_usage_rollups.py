"""Usage rolled up as it is collected (issue 17): per resource, plan and billing day, in the same
transaction as the hourly windows, so month end reads days, not hours; and the state of the rollups (their
zone, how far the hourly evidence was pruned).

Created empty: the first sync or invoicing run builds the rollups from the hourly rows already stored
(bridge/store/usage_rollups.py, ``ensure``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import ExactDecimal, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_rollups",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("plan", sa.String(128), nullable=False),
        sa.Column("day_start", UTCDateTime(), nullable=False),
        sa.Column("first_start", UTCDateTime(), nullable=False),
        sa.Column("last_end", UTCDateTime(), nullable=False),
        sa.Column("latest_name", sa.String(280), nullable=False),
        sa.Column("windows", sa.Integer(), nullable=False),
        sa.Column("hours", ExactDecimal(20, 8), nullable=False),
        sa.Column("tokens", ExactDecimal(20, 8), nullable=True),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_rollups"),
        sa.UniqueConstraint(
            "source",
            "day_start",
            "resource_id",
            "owner",
            "plan",
            name="uq_usage_rollups_source_day_start_resource_id_owner_plan",
        ),
    )
    op.create_index("ix_usage_rollups_owner_day_start", "usage_rollups", ["owner", "day_start"])
    op.create_table(
        "usage_rollup_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("pruned_before", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_usage_rollup_state"),
    )


def downgrade() -> None:
    op.drop_table("usage_rollup_state")
    op.drop_index("ix_usage_rollups_owner_day_start", table_name="usage_rollups")
    op.drop_table("usage_rollups")
