"""An index that answers the reconciliation's read of a month's usage on its own (issue 18).

``reconcile`` sums each resource's hours of a cycle per (owner, source, resource, plan) for a chunk of
owners. Through ``(owner, window_start)`` every window costs a second look-up in the table, and the table
holds the windows in the order they were collected (hour by hour, every owner interleaved), so those
look-ups land all over it: that read was the largest part of a run. This index holds every column the read
needs, in the order it groups them, so the database reads one contiguous run of index entries per owner
and groups without sorting. It reads all of an owner's windows still kept hourly, not only the month's
(window_start comes after the grouping columns): with the default retention (``hourly_usage_months = 1``)
that is at most the month before as well, read in one contiguous run, which costs less than sorting the
month's windows for the grouping.

The ``(owner, window_start)`` index stays: it finds an owner's first window in one seek (the first cycle's
anchor) and walks the distinct owners.

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None

INDEX = "ix_usage_records_owner_resource_covering"
COLUMNS = [
    "owner",
    "source",
    "resource_id",
    "plan",
    "window_start",
    "window_end",
    "hours",
    "resource_name",
]


def upgrade() -> None:
    op.create_index(INDEX, "usage_records", COLUMNS)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="usage_records")
