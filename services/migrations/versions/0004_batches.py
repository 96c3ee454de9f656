"""Batches: many rows (driving clip, character, providers, options) submitted as one.

A `batches` row keeps what the creator asked for — every row with the sentences that kept a
row back — and, through `runs.batch_id` / `runs.batch_row`, which run each row became. A
run made before this revision belongs to no batch (both NULL).

Revision ID: 0004_batches
Revises: 0003_costs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_batches"
down_revision = "0003_costs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("estimate_usd", sa.Float(), nullable=True),
    )
    op.create_index("ix_batches_owner_created", "batches", ["owner", "created_at"])
    # Batch mode: SQLite adds a foreign key only by rebuilding the table (the migration runs
    # with foreign keys off, and checks them before it commits); elsewhere plain ALTERs.
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("batch_id", sa.String(32), nullable=True))
        runs.add_column(sa.Column("batch_row", sa.Integer(), nullable=True))
        runs.create_foreign_key(
            "fk_runs_batch_id", "batches", ["batch_id"], ["id"], ondelete="SET NULL"
        )
        runs.create_index("ix_runs_batch", ["batch_id", "batch_row"])


def downgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_index("ix_runs_batch")
        runs.drop_constraint("fk_runs_batch_id", type_="foreignkey")
        runs.drop_column("batch_row")
        runs.drop_column("batch_id")
    op.drop_index("ix_batches_owner_created", table_name="batches")
    op.drop_table("batches")
