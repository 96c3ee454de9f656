"""A partial index for the monitor's claim: the pollable tasks (queued or running with a
provider id) by when each is next due.

Every pass of every monitor replica takes the most overdue few of these (Store.claim_due).
Without it, PostgreSQL read and sorted every task to find them (4.5 ms at 10,000 in flight);
with it, it walks the index from the oldest and stops at the limit, and finished tasks,
however many, are not in it at all. The claim names the same two statuses as literals so
that either engine can tell the index applies.

Revision ID: 0005_claim_index
Revises: 0004_batches
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_claim_index"
down_revision = "0004_batches"
branch_labels = None
depends_on = None

POLLABLE = "status IN ('queued', 'running') AND provider_task_id IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_tasks_due",
        "tasks",
        ["next_poll_at"],
        postgresql_where=sa.text(POLLABLE),
        sqlite_where=sa.text(POLLABLE),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_due", table_name="tasks")
