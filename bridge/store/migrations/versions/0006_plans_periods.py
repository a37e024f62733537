"""Pricing plans, plan assignments, discounts, billing periods and subscriptions (issue 8).

``client_terms`` holds each client's plan assignments and discounts, each from a start instant (one table,
so an invoicing chunk reads every client's terms in one query). ``billing_periods`` are the schedules
subscriptions recharge on (seed 004), ``subscriptions`` their recurring fees and ``subscription_charges``
the one-off charges billed at the end of a period, prorated to the billing date in force when added.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import ExactDecimal, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_terms",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("plan", sa.String(64), nullable=True),
        sa.Column("discount_type", sa.String(16), nullable=True),
        sa.Column("value", ExactDecimal(20, 8), nullable=True),
        sa.Column("source", sa.String(16), nullable=True),
        sa.Column("resource_kind", sa.String(128), nullable=True),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_client_terms"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_client_terms_client_id_clients"),
    )
    op.create_index("ix_client_terms_client_id_starts_at", "client_terms", ["client_id", "starts_at"])
    op.create_table(
        "billing_periods",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("frequency", sa.String(8), nullable=False),
        sa.Column("invoice_day", sa.Integer(), nullable=False),
        sa.Column("invoice_month", sa.Integer(), nullable=True),
        sa.Column("periods", sa.Integer(), nullable=True),
        sa.Column("charged", sa.Integer(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("next_recharge_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_periods"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_billing_periods_client_id_clients"),
    )
    op.create_index("ix_billing_periods_client_id", "billing_periods", ["client_id"])
    op.create_index("ix_billing_periods_next_recharge_on", "billing_periods", ["next_recharge_on"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("frequency", sa.String(8), nullable=False),
        sa.Column("amount", ExactDecimal(20, 8), nullable=False),
        sa.Column("prorate", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("billed_until", sa.Date(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_subscriptions_client_id_clients"),
        sa.ForeignKeyConstraint(
            ["period_id"], ["billing_periods.id"], name="fk_subscriptions_period_id_billing_periods"
        ),
    )
    op.create_index("ix_subscriptions_client_id", "subscriptions", ["client_id"])
    op.create_index("ix_subscriptions_period_id", "subscriptions", ["period_id"])
    op.create_table(
        "subscription_charges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("amount", ExactDecimal(20, 8), nullable=False),
        sa.Column("prorate", sa.Boolean(), nullable=False),
        sa.Column("added_on", sa.Date(), nullable=False),
        sa.Column("span_start", sa.Date(), nullable=False),
        sa.Column("bill_until", sa.Date(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscription_charges"),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name="fk_subscription_charges_subscription_id_subscriptions",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name="fk_subscription_charges_invoice_id_invoices"
        ),
    )
    op.create_index("ix_subscription_charges_subscription_id", "subscription_charges", ["subscription_id"])


def downgrade() -> None:
    op.drop_index("ix_subscription_charges_subscription_id", table_name="subscription_charges")
    op.drop_table("subscription_charges")
    op.drop_index("ix_subscriptions_period_id", table_name="subscriptions")
    op.drop_index("ix_subscriptions_client_id", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_billing_periods_next_recharge_on", table_name="billing_periods")
    op.drop_index("ix_billing_periods_client_id", table_name="billing_periods")
    op.drop_table("billing_periods")
    op.drop_index("ix_client_terms_client_id_starts_at", table_name="client_terms")
    op.drop_table("client_terms")
