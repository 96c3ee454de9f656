"""Lifecycle: who holds a task's claim and until when, and where saving its result stands.

Before this, an archive claim lived in the task's meta ("archiver", the holder) and its
lease in `next_poll_at`; a given-up archive was marked with meta "archive_gave_up". Each
task now says it in columns: `archive_state` (NULL while no result is expected; then
pending, done, gave_up or blocked), `lease_owner` and `lease_until` (UTC). Existing rows are
classified from what the old code left, and the old meta keys are removed.

Revision ID: 0002_lifecycle
Revises: 0001_baseline
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_lifecycle"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

# The old code's meta keys for an archive claim and for an archive that gave up.
_OLD_META = ("archiver", "archive_gave_up")

_tasks = sa.table(
    "tasks",
    sa.column("id", sa.String(32)),
    sa.column("status", sa.String(16)),
    sa.column("result_path", sa.Text()),
    sa.column("error_kind", sa.String(32)),
    sa.column("meta", sa.JSON()),
    sa.column("next_poll_at", sa.DateTime()),
    sa.column("archive_state", sa.String(16)),
)


def _archive_state(row: Any, meta: dict[str, Any]) -> str | None:
    if row.status != "succeeded":
        return None
    if row.result_path is not None:
        return "done"
    if meta.get("archive_gave_up"):
        return "gave_up"
    if row.error_kind == "disk_full":
        return "blocked"
    return "pending"


def _classify_rows() -> None:
    """Set archive_state from the old markers, drop the old meta keys and make pending
    archives due now (their old lease was in next_poll_at). Plain Python over the rows, so
    it reads the same on every database."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            _tasks.c.id,
            _tasks.c.status,
            _tasks.c.result_path,
            _tasks.c.error_kind,
            _tasks.c.meta,
            _tasks.c.next_poll_at,
        )
    ).all()
    changes = []
    for row in rows:
        meta = row.meta if isinstance(row.meta, dict) else {}
        state = _archive_state(row, meta)
        stale = any(key in meta for key in _OLD_META)
        if state is None and not stale:
            continue
        changes.append(
            {
                "b_id": row.id,
                "b_state": state,
                "b_meta": {k: v for k, v in meta.items() if k not in _OLD_META},
                "b_next": None if state == "pending" else row.next_poll_at,
            }
        )
    if changes:
        bind.execute(
            sa.update(_tasks)
            .where(_tasks.c.id == sa.bindparam("b_id"))
            .values(
                archive_state=sa.bindparam("b_state"),
                meta=sa.bindparam("b_meta", type_=sa.JSON()),
                next_poll_at=sa.bindparam("b_next", type_=sa.DateTime()),
            ),
            changes,
        )


def upgrade() -> None:
    # Plain ADD COLUMN on every database, SQLite included: no table rebuild is needed.
    op.add_column("tasks", sa.Column("lease_owner", sa.String(200), nullable=True))
    op.add_column("tasks", sa.Column("lease_until", sa.DateTime(), nullable=True))
    op.add_column("tasks", sa.Column("archive_state", sa.String(16), nullable=True))
    # The archive sweep asks for pending archives whose lease ran out, every second: with
    # this index it reads those rows only, not every succeeded task ever made.
    op.create_index("ix_tasks_archive", "tasks", ["archive_state", "lease_until"])
    _classify_rows()


def downgrade() -> None:
    # The old meta markers are not written back: a pending archive is simply due again.
    op.drop_index("ix_tasks_archive", table_name="tasks")
    op.drop_column("tasks", "archive_state")
    op.drop_column("tasks", "lease_until")
    op.drop_column("tasks", "lease_owner")
