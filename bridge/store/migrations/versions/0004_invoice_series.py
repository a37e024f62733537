"""Invoice numbers are unique per series (the configuration that numbered them), not store-wide.

Each configuration keeps its own gap-free fiscal and proforma sequences (seed 001 puts numbering in the
configuration), so two configurations may both issue number 1.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("series", sa.String(64), nullable=True))
        batch.drop_constraint("uq_invoices_number", type_="unique")
        batch.drop_constraint("uq_invoices_proforma_number", type_="unique")
        batch.create_unique_constraint("uq_invoices_series_number", ["series", "number"])
        batch.create_unique_constraint("uq_invoices_series_proforma_number", ["series", "proforma_number"])


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("uq_invoices_series_proforma_number", type_="unique")
        batch.drop_constraint("uq_invoices_series_number", type_="unique")
        batch.create_unique_constraint("uq_invoices_proforma_number", ["proforma_number"])
        batch.create_unique_constraint("uq_invoices_number", ["number"])
        batch.drop_column("series")
