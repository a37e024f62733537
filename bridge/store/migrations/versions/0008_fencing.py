"""Fencing the push (issue 12): a token per lease acquisition, and the claiming token on each outbox row.

``leases.token`` is new at every acquisition (renewals keep it); ``outbox.lease_token`` and
``outbox.claimed_at`` record which holder claimed a row and when, so every write on the row is a
compare-and-set on that token while the lease is still held, and an in-doubt row is looked up only once
WHMCS can no longer be applying its call. Leases taken before this migration have no token: they can
only expire.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("token", sa.String(64), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("lease_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("claimed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("lease_token")
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("token")
