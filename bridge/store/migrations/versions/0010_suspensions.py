"""Suspension history (issue 15 point 8): who suspended a client, when, why, and when it was resumed.

A suspended client's hours are not billed by default (``bill_suspended_hours``), so invoicing and the
reconciliation need every suspension of a month, not only the current one ``client_credit_states`` keeps.
Clients suspended when this runs get their open suspension, from their ``suspended_at``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_suspensions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_by", sa.String(128), nullable=False),
        sa.Column("ended_by", sa.String(128), nullable=True),
        sa.Column("shelved", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_client_suspensions_client_id_clients", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_client_suspensions"),
        sa.UniqueConstraint("client_id", "started_at", name="uq_client_suspensions_client_id_started_at"),
    )
    op.execute(
        "INSERT INTO client_suspensions (client_id, started_at, reason, started_by, shelved) "
        "SELECT client_id, suspended_at, 'up-to-date credit under the credit limit', 'process_clients', "
        "shelved FROM client_credit_states WHERE suspended_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("client_suspensions")
