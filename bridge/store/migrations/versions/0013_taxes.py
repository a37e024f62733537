"""Taxes (issue 16): a client's tax identity, its exemption history and VIES evidence; invoice taxes.

``clients.country`` and ``clients.vat_id`` are the client's tax identity (NULL: not given); a sign-up
keeps them in ``enrollments`` until its client is made. Every
exemption decision is kept (``client_tax_exemptions``: who, when, why; the latest one is in force), and
every VIES answer (``vies_checks``: VIES's request date and consultation number when given, or its error
code). An invoice keeps what it was taxed with: ``subtotal`` (net), one ``invoice_taxes`` row per rate,
why it is taxed so, and the reverse-charge note; ``total`` stays the amount due (subtotal + tax). An
invoice stored before this migration has NULL ``subtotal``: its total is net, without tax.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import ExactDecimal, UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("country", sa.String(2), nullable=True))
        batch.add_column(sa.Column("vat_id", sa.String(32), nullable=True))
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("country", sa.String(2), nullable=True))
        batch.add_column(sa.Column("vat_id", sa.String(32), nullable=True))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("subtotal", ExactDecimal(20, 8), nullable=True))
        batch.add_column(sa.Column("tax_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reverse_charge", sa.Text(), nullable=True))
    op.create_table(
        "client_tax_exemptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("exempt", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name="fk_client_tax_exemptions_client_id_clients",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_client_tax_exemptions"),
    )
    op.create_index("ix_client_tax_exemptions_client_id", "client_tax_exemptions", ["client_id"])
    op.create_table(
        "vies_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("vat_id", sa.String(32), nullable=False),
        sa.Column("asked_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=True),
        sa.Column("request_date", UTCDateTime(), nullable=True),
        sa.Column("consultation_number", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_vies_checks_client_id_clients", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_vies_checks"),
    )
    op.create_index("ix_vies_checks_client_id_asked_at", "vies_checks", ["client_id", "asked_at"])
    op.create_table(
        "invoice_taxes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("rate", ExactDecimal(20, 8), nullable=False),
        sa.Column("base", ExactDecimal(20, 8), nullable=False),
        sa.Column("amount", ExactDecimal(20, 8), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name="fk_invoice_taxes_invoice_id_invoices", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_invoice_taxes"),
        sa.UniqueConstraint("invoice_id", "position", name="uq_invoice_taxes_invoice_id_position"),
    )


def downgrade() -> None:
    op.drop_table("invoice_taxes")
    op.drop_index("ix_vies_checks_client_id_asked_at", table_name="vies_checks")
    op.drop_table("vies_checks")
    op.drop_index("ix_client_tax_exemptions_client_id", table_name="client_tax_exemptions")
    op.drop_table("client_tax_exemptions")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("reverse_charge")
        batch.drop_column("tax_reason")
        batch.drop_column("subtotal")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("vat_id")
        batch.drop_column("country")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("vat_id")
        batch.drop_column("country")
