"""A data file written before owners existed opens with its tasks intact and owned by the
local operator (the columns are added on open, by whichever process opens it first)."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from services.models import LOCAL_OWNER, TaskStatus
from services.store import Store


def _old_data_file(path: Path) -> str:
    """Today's schema minus the owner columns: what the code before this change wrote."""
    store = Store(f"sqlite:///{path}")
    task, _ = store.create_task("runway", status=TaskStatus.QUEUED, provider_task_id="p-1")
    store.close()
    with sqlite3.connect(path) as conn:
        for index in ("ix_tasks_owner_created", "ix_runs_owner"):
            conn.execute(f"DROP INDEX IF EXISTS {index}")
        conn.execute("ALTER TABLE tasks DROP COLUMN owner")
        conn.execute("ALTER TABLE runs DROP COLUMN owner")
        columns = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
    assert "owner" not in columns
    return task.id


def test_an_old_data_file_gains_owners_and_keeps_its_tasks(tmp_path: Path) -> None:
    path = tmp_path / "reenact.db"
    task_id = _old_data_file(path)
    # Several processes opening it at once all come up.
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: Store(f"sqlite:///{path}"), range(4)))
    for store in stores:
        task = store.get_task(task_id)
        assert task is not None and task.provider_task_id == "p-1"
        assert task.owner == LOCAL_OWNER
        assert store.list_tasks(owner=LOCAL_OWNER)[0].id == task_id
        assert store.list_tasks(owner="someone@example.com") == []
        store.close()
