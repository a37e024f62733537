"""Push claims (issue 17): several daemons share the push to WHMCS, a client each at a time.

A push claims a client before it works the client's outbox rows: one row per client, naming the lease of
the push that holds it and that lease's token. The claim holds while that lease is held with that token,
so it frees itself when the push ends (its lease released) or dies (its lease expired), and nothing has
to sweep claims (bridge/store/push_claims.py).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_claims",
        sa.Column("client_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("lease", sa.String(64), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_push_claims"),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_push_claims_client_id_clients", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("push_claims")
