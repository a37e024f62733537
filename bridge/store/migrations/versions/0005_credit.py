"""The credit engine: a ledger of credit movements, each client's credit state, notifications sent.

Balances are sums of ledger rows, never overwritten numbers; every row has a unique reference, so a
payment recorded twice (a retry, a re-run) is one payment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import ExactDecimal, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("amount", ExactDecimal(20, 8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_ledger_entries_client_id_clients"),
        sa.UniqueConstraint("reference", name="uq_ledger_entries_reference"),
    )
    op.create_index("ix_ledger_entries_client_id_occurred_at", "ledger_entries", ["client_id", "occurred_at"])
    op.create_table(
        "client_credit_states",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("settled_until", UTCDateTime(), nullable=True),
        sa.Column("under_limit_since", UTCDateTime(), nullable=True),
        sa.Column("suspended_at", UTCDateTime(), nullable=True),
        sa.Column("shelved", sa.Boolean(), nullable=False),
        sa.Column("terminated_at", UTCDateTime(), nullable=True),
        sa.Column("notifications_sent", sa.String(64), nullable=False),
        sa.Column("auto_invoicing", sa.String(16), nullable=True),
        sa.Column("auto_invoice_amount", ExactDecimal(20, 8), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_client_credit_states"),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name="fk_client_credit_states_client_id_clients",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "client_notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_client_notifications"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_client_notifications_client_id_clients"
        ),
        sa.UniqueConstraint("reference", name="uq_client_notifications_reference"),
    )


def downgrade() -> None:
    op.drop_table("client_notifications")
    op.drop_table("client_credit_states")
    op.drop_index("ix_ledger_entries_client_id_occurred_at", table_name="ledger_entries")
    op.drop_table("ledger_entries")
