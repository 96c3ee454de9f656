"""The store on a real SQLite file: persistence across connections, idempotency, CAS updates."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from services.models import TaskInputs, TaskOptions, TaskStatus, utcnow
from services.store import Store


def _store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'db.sqlite'}")


def test_task_survives_a_new_connection(tmp_path: Path) -> None:
    s1 = _store(tmp_path)
    task, created = s1.create_task(
        "cometapi",
        status=TaskStatus.SUBMITTING,
        inputs=TaskInputs(video="/v.mp4", image="/i.png"),
        options=TaskOptions(seed=7),
    )
    assert created
    s1.update_task(task.id, provider_task_id="p-1", status=TaskStatus.QUEUED)
    s1.close()
    s2 = _store(tmp_path)
    again = s2.get_task(task.id)
    assert again is not None
    assert again.status is TaskStatus.QUEUED
    assert again.provider_task_id == "p-1"
    assert again.options.seed == 7
    assert again.created_at.tzinfo is not None
    assert [e.status for e in s2.events(task.id)] == [TaskStatus.SUBMITTING, TaskStatus.QUEUED]


def test_idempotency_key_returns_the_first_task_under_concurrency(tmp_path: Path) -> None:
    store = _store(tmp_path)
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(8)

    def insert() -> None:
        barrier.wait()
        task, created = store.create_task("local", idempotency_key="click-1")
        results.append((task.id, created))

    threads = [threading.Thread(target=insert) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({tid for tid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert store.count_tasks() == 1


def test_compare_and_set_update(tmp_path: Path) -> None:
    store = _store(tmp_path)
    task, _ = store.create_task("local", status=TaskStatus.SUBMITTING)
    assert store.update_task(task.id, expect_status=TaskStatus.QUEUED, status="failed") is None
    moved = store.update_task(
        task.id, expect_status=TaskStatus.SUBMITTING, status=TaskStatus.UNKNOWN
    )
    assert moved is not None and moved.status is TaskStatus.UNKNOWN


def test_due_tasks_and_filters(tmp_path: Path) -> None:
    store = _store(tmp_path)
    now = utcnow()
    due, _ = store.create_task("runway", status=TaskStatus.QUEUED, provider_task_id="a")
    store.update_task(due.id, next_poll_at=now - timedelta(seconds=1))
    later, _ = store.create_task("runway", status=TaskStatus.RUNNING, provider_task_id="b")
    store.update_task(later.id, next_poll_at=now + timedelta(minutes=1))
    store.create_task("runway", status=TaskStatus.SUBMITTING)
    done, _ = store.create_task("local", status=TaskStatus.SUCCEEDED, provider_task_id="c")
    lease = now + timedelta(seconds=60)
    assert [t.id for t in store.claim_due(now=now, lease_until=lease, holder="h")] == [due.id]
    # Claimed: leased to "h", so nobody else takes it until the lease runs out.
    assert store.claim_due(now=now, lease_until=lease, holder="other") == []
    assert [t.id for t in store.claim_due(now=lease, lease_until=lease, holder="x")] == [
        due.id,
        later.id,
    ]
    assert store.count_tasks(provider="runway") == 3
    assert store.count_tasks(status=[TaskStatus.SUCCEEDED]) == 1
    assert [t.id for t in store.archives_due(now)] == [done.id]
    assert len(store.active_tasks()) == 3
    newest_first = store.list_tasks(limit=2)
    assert newest_first[0].id == done.id
    assert store.delete_task(done.id)
    assert store.get_task(done.id) is None
