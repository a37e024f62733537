"""Chunk claims (issue 17): several workers on one database share a run's clients, a chunk each at a time.

A run (``invoicing 2022-11-01``, ``process_clients``) splits the client ids into fixed ranges, one row per
range and generation; a worker claims a free or expired row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL and
MariaDB) with a new token and an expiry, and marks it done, fenced on that token, in the transaction that
stores the chunk's work (bridge/store/chunks.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_chunks",
        sa.Column("run", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_client", sa.Integer(), nullable=False),
        sa.Column("last_client", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("holder", sa.String(128), nullable=True),
        sa.Column("token", sa.String(64), nullable=True),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("run", "generation", "chunk", name="pk_work_chunks"),
    )


def downgrade() -> None:
    op.drop_table("work_chunks")
