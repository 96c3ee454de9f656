"""Baseline: the store as it was before Alembic (runs, tasks and what hangs off them).

A new database gets every table. A data file written before Alembic already has some of
them: it gets only what it lacks (tables added since it was made, the owner columns and the
indexes `create_all` never added to an existing table) and keeps every row.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

# Frozen here rather than imported: a migration must not follow later code.
LOCAL_OWNER = "local"


def _tables() -> list[tuple[str, list[SchemaItem]]]:
    """Each table as the code before Alembic declared it (columns in its order, so a new
    file's CREATE TABLE reads exactly like an old one's). New objects on every call: a
    Column belongs to the one table it is given to."""
    return [
        (
            "runs",
            [
                sa.Column("id", sa.String(32), primary_key=True),
                sa.Column("created_at", sa.DateTime(), nullable=False),
                sa.Column("inputs", sa.JSON(), nullable=False),
                sa.Column("options", sa.JSON(), nullable=False),
                sa.Column("providers", sa.JSON(), nullable=False),
                sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
                sa.Column("owner", sa.String(320), nullable=False),
            ],
        ),
        (
            "tasks",
            [
                sa.Column("id", sa.String(32), primary_key=True),
                sa.Column("provider", sa.String(32), nullable=False),
                sa.Column("provider_task_id", sa.String(256), nullable=True),
                sa.Column("status", sa.String(16), nullable=False),
                sa.Column("progress", sa.Float(), nullable=False),
                sa.Column("error", sa.Text(), nullable=True),
                sa.Column("error_kind", sa.String(32), nullable=True),
                sa.Column("result_url", sa.Text(), nullable=True),
                sa.Column("result_path", sa.Text(), nullable=True),
                sa.Column("created_at", sa.DateTime(), nullable=False),
                sa.Column("updated_at", sa.DateTime(), nullable=False),
                sa.Column("started_at", sa.DateTime(), nullable=True),
                sa.Column("finished_at", sa.DateTime(), nullable=True),
                sa.Column("next_poll_at", sa.DateTime(), nullable=True),
                sa.Column("poll_failures", sa.Integer(), nullable=False),
                sa.Column(
                    "run_id",
                    sa.String(32),
                    sa.ForeignKey("runs.id", ondelete="SET NULL"),
                    nullable=True,
                ),
                sa.Column("inputs", sa.JSON(), nullable=True),
                sa.Column("options", sa.JSON(), nullable=False),
                sa.Column("tracked", sa.Integer(), nullable=False),
                sa.Column("retry_of", sa.String(32), nullable=True),
                sa.Column("cost_estimate", sa.Float(), nullable=True),
                sa.Column("meta", sa.JSON(), nullable=False),
                sa.Column("idempotency_key", sa.String(160), nullable=True, unique=True),
                sa.Column("owner", sa.String(320), nullable=False),
            ],
        ),
        (
            "task_analyses",
            [
                sa.Column(
                    "task_id",
                    sa.String(32),
                    sa.ForeignKey("tasks.id", ondelete="CASCADE"),
                    primary_key=True,
                ),
                sa.Column("state", sa.String(16), nullable=False),
                sa.Column("result_path", sa.Text(), nullable=True),
                sa.Column("output", sa.JSON(), nullable=True),
                sa.Column("fidelity", sa.JSON(), nullable=True),
                sa.Column("error", sa.Text(), nullable=True),
                sa.Column("lease_until", sa.DateTime(), nullable=True),
                sa.Column("updated_at", sa.DateTime(), nullable=False),
            ],
        ),
        (
            "votes",
            [
                sa.Column(
                    "run_id",
                    sa.String(32),
                    sa.ForeignKey("runs.id", ondelete="CASCADE"),
                    primary_key=True,
                ),
                sa.Column("winner", sa.String(32), nullable=False),
                sa.Column("contenders", sa.JSON(), nullable=False),
                sa.Column("note", sa.Text(), nullable=True),
                sa.Column("blind", sa.Integer(), nullable=False),
                sa.Column("created_at", sa.DateTime(), nullable=False),
            ],
        ),
        (
            "uploads",
            [
                sa.Column("owner", sa.String(320), primary_key=True),
                sa.Column("path", sa.String(600), primary_key=True),
                sa.Column("digest", sa.String(64), nullable=False),
                sa.Column("size_bytes", sa.Integer(), nullable=False),
                sa.Column("created_at", sa.DateTime(), nullable=False),
            ],
        ),
        (
            "preferences",
            [
                sa.Column("key", sa.String(64), primary_key=True),
                sa.Column("value", sa.JSON(), nullable=False),
                sa.Column("updated_at", sa.DateTime(), nullable=False),
            ],
        ),
        (
            "task_events",
            [
                sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
                sa.Column(
                    "task_id",
                    sa.String(32),
                    sa.ForeignKey("tasks.id", ondelete="CASCADE"),
                    nullable=False,
                ),
                sa.Column("at", sa.DateTime(), nullable=False),
                sa.Column("status", sa.String(16), nullable=True),
                sa.Column("progress", sa.Float(), nullable=True),
                sa.Column("message", sa.Text(), nullable=False),
            ],
        ),
    ]


# Columns added after the first data files were written: an existing table gains them with
# a default, because SQLite cannot add a NOT NULL column without one.
_LATE_COLUMNS = (("tasks", "owner"), ("runs", "owner"))

_INDEXES = (
    ("ix_runs_owner", "runs", ["owner"]),
    ("ix_tasks_created", "tasks", ["created_at"]),
    ("ix_tasks_status_poll", "tasks", ["status", "next_poll_at"]),
    ("ix_tasks_provider_ptid", "tasks", ["provider", "provider_task_id"]),
    ("ix_tasks_run", "tasks", ["run_id"]),
    ("ix_tasks_owner_created", "tasks", ["owner", "created_at"]),
    ("ix_uploads_digest", "uploads", ["digest"]),
    ("ix_task_events_task_id", "task_events", ["task_id"]),
)


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for name, items in _tables():
        if name not in existing:
            op.create_table(name, *items)
    for table, column in _LATE_COLUMNS:
        if column not in {c["name"] for c in sa.inspect(bind).get_columns(table)}:
            op.add_column(
                table,
                sa.Column(column, sa.String(320), nullable=False, server_default=LOCAL_OWNER),
            )
    for name, table, columns in _INDEXES:
        if name not in {i["name"] for i in sa.inspect(bind).get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, _ in reversed(_tables()):
        op.drop_table(name)
