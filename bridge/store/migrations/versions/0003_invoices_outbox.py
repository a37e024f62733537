"""Invoices with their lines, gap-free number sequences, the outbox of external effects, agreements.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import ExactDecimal, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=True),
        sa.Column("period_end", UTCDateTime(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issuer", sa.String(16), nullable=False),
        sa.Column("number", sa.String(64), nullable=True),
        sa.Column("proforma_number", sa.String(64), nullable=True),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("total", ExactDecimal(20, 8), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=True),
        sa.Column("paid_amount", ExactDecimal(20, 8), nullable=True),
        sa.Column("remote_id", sa.String(32), nullable=True),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_invoices"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_invoices_client_id_clients"),
        sa.ForeignKeyConstraint(["replaces_id"], ["invoices.id"], name="fk_invoices_replaces_id_invoices"),
        sa.UniqueConstraint("reference", name="uq_invoices_reference"),
        sa.UniqueConstraint("number", name="uq_invoices_number"),
        sa.UniqueConstraint("proforma_number", name="uq_invoices_proforma_number"),
    )
    op.create_index(
        "ix_invoices_client_id_kind_period_start", "invoices", ["client_id", "kind", "period_start"]
    )
    op.create_index("ix_invoices_status", "invoices", ["status"])
    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line_reference", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("resource_name", sa.String(255), nullable=False),
        sa.Column("plan", sa.String(128), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("period_end", UTCDateTime(), nullable=False),
        sa.Column("hours", ExactDecimal(20, 8), nullable=False),
        sa.Column("billed_hours", ExactDecimal(20, 8), nullable=False),
        sa.Column("unit_price", ExactDecimal(20, 8), nullable=False),
        sa.Column("tokens_per_hour", sa.Integer(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=True),
        sa.Column("amount", ExactDecimal(20, 8), nullable=False),
        sa.Column("capped", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_invoice_lines"),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name="fk_invoice_lines_invoice_id_invoices", ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "invoice_id", "line_reference", name="uq_invoice_lines_invoice_id_line_reference"
        ),
    )
    op.create_table(
        "number_sequences",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("next_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_number_sequences"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_outbox_client_id_clients"),
        sa.UniqueConstraint("reference", name="uq_outbox_reference"),
    )
    op.create_index("ix_outbox_state_client_id_id", "outbox", ["state", "client_id", "id"])
    op.create_table(
        "client_agreements",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("has_agreement", sa.Boolean(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_client_agreements"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_client_agreements_client_id_clients", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("client_agreements")
    op.drop_index("ix_outbox_state_client_id_id", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("number_sequences")
    op.drop_table("invoice_lines")
    op.drop_index("ix_invoices_status", table_name="invoices")
    op.drop_index("ix_invoices_client_id_kind_period_start", table_name="invoices")
    op.drop_table("invoices")
