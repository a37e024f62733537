"""Self-service (issues 15.7 and 19): the ledger of each client's auto-invoicing choices (who, when, old and
new), and the password a client signs in to its pages with (a salted hash, never the password).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_invoicing_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("old_choice", sa.String(48), nullable=True),
        sa.Column("new_choice", sa.String(48), nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name="fk_auto_invoicing_changes_client_id_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_auto_invoicing_changes"),
    )
    op.create_index(
        "ix_auto_invoicing_changes_client_id_changed_at",
        "auto_invoicing_changes",
        ["client_id", "changed_at"],
    )
    op.create_table(
        "client_passwords",
        sa.Column("client_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_client_passwords_client_id_clients", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("client_id", name="pk_client_passwords"),
    )


def downgrade() -> None:
    op.drop_table("client_passwords")
    op.drop_index("ix_auto_invoicing_changes_client_id_changed_at", table_name="auto_invoicing_changes")
    op.drop_table("auto_invoicing_changes")
