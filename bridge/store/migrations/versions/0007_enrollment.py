"""Enrollment: sign-up requests, single-use links, terms acceptance (issue 9).

``enrollments`` holds one sign-up per email address from the request to the active client (its SolusVM
user state beside it); ``enrollment_tokens`` the keyed digests of the mailed sign-up links and of the
one-time login links (never the tokens themselves); ``terms_acceptances`` which version of which
document was accepted, when and from where.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bridge.store.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sealed_password", sa.Text(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("solusvm_state", sa.String(16), nullable=False),
        sa.Column("solusvm_user_id", sa.String(32), nullable=True),
        sa.Column("solusvm_error", sa.Text(), nullable=True),
        sa.Column("solusvm_attempts", sa.Integer(), nullable=False),
        sa.Column("solusvm_claimed_until", UTCDateTime(), nullable=True),
        sa.Column("auto_order_service", sa.String(128), nullable=True),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_enrollments"),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_enrollments_client_id_clients"),
        sa.UniqueConstraint("email", name="uq_enrollments_email"),
        sa.UniqueConstraint("client_id", name="uq_enrollments_client_id"),
    )
    op.create_index("ix_enrollments_state_solusvm_state", "enrollments", ["state", "solusvm_state"])
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_tokens"),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_enrollment_tokens_enrollment_id_enrollments",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_enrollment_tokens_client_id_clients", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("digest", name="uq_enrollment_tokens_digest"),
    )
    op.create_index("ix_enrollment_tokens_enrollment_id", "enrollment_tokens", ["enrollment_id"])
    op.create_index("ix_enrollment_tokens_client_id", "enrollment_tokens", ["client_id"])
    op.create_index("ix_enrollment_tokens_expires_at", "enrollment_tokens", ["expires_at"])
    op.create_table(
        "terms_acceptances",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("document", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("accepted_at", UTCDateTime(), nullable=False),
        sa.Column("accepted_from", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_terms_acceptances"),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_terms_acceptances_enrollment_id_enrollments",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "enrollment_id", "document", "version", name="uq_terms_acceptances_enrollment_id_document_version"
        ),
    )


def downgrade() -> None:
    op.drop_table("terms_acceptances")
    op.drop_index("ix_enrollment_tokens_expires_at", table_name="enrollment_tokens")
    op.drop_index("ix_enrollment_tokens_client_id", table_name="enrollment_tokens")
    op.drop_index("ix_enrollment_tokens_enrollment_id", table_name="enrollment_tokens")
    op.drop_table("enrollment_tokens")
    op.drop_index("ix_enrollments_state_solusvm_state", table_name="enrollments")
    op.drop_table("enrollments")
