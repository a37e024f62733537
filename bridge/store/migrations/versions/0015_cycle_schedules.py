"""Each client's billing-cycle schedule history (issue 15): calendar months or anniversary, from when.

A switch takes effect after the ongoing cycle (seed 001), so invoicing must know which schedule held when
each cycle started. A row is written when a client moves to a configuration with the other schedule, and
when a run finds that a configuration's ``billing_cycle_calendar`` no longer matches a client's last row.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cycle_schedules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("calendar_months", sa.Boolean(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cycle_schedules"),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name="fk_cycle_schedules_client_id_clients",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_cycle_schedules_client_id_since", "cycle_schedules", ["client_id", "since"])


def downgrade() -> None:
    op.drop_index("ix_cycle_schedules_client_id_since", table_name="cycle_schedules")
    op.drop_table("cycle_schedules")
