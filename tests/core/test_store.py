"""The store on a real SQLite file and on a real PostgreSQL database (tests/pg.py):
persistence across connections, idempotency, CAS updates, claims under concurrency."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool

from services.config import load_settings
from services.models import TaskInputs, TaskOptions, TaskStatus, utcnow
from services.store import Store
from tests.pg import PgServer


def test_task_survives_a_new_connection(db_url: str) -> None:
    s1 = Store(db_url)
    task, created = s1.create_task(
        "cometapi",
        status=TaskStatus.SUBMITTING,
        inputs=TaskInputs(video="/v.mp4", image="/i.png"),
        options=TaskOptions(seed=7),
    )
    assert created
    s1.update_task(task.id, provider_task_id="p-1", status=TaskStatus.QUEUED)
    s1.close()
    s2 = Store(db_url)
    again = s2.get_task(task.id)
    assert again is not None
    assert again.status is TaskStatus.QUEUED
    assert again.provider_task_id == "p-1"
    assert again.options.seed == 7
    assert again.created_at.tzinfo is not None
    assert [e.status for e in s2.events(task.id)] == [TaskStatus.SUBMITTING, TaskStatus.QUEUED]


def test_idempotency_key_returns_the_first_task_under_concurrency(db_url: str) -> None:
    store = Store(db_url)
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


def test_compare_and_set_update(db_url: str) -> None:
    store = Store(db_url)
    task, _ = store.create_task("local", status=TaskStatus.SUBMITTING)
    assert store.update_task(task.id, expect_status=TaskStatus.QUEUED, status="failed") is None
    moved = store.update_task(
        task.id, expect_status=TaskStatus.SUBMITTING, status=TaskStatus.UNKNOWN
    )
    assert moved is not None and moved.status is TaskStatus.UNKNOWN


def test_due_tasks_and_filters(db_url: str) -> None:
    store = Store(db_url)
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
    assert {t.id for t in store.claim_due(now=lease, lease_until=lease, holder="x")} == {
        due.id,
        later.id,
    }
    assert store.count_tasks(provider="runway") == 3
    assert store.count_tasks(status=[TaskStatus.SUCCEEDED]) == 1
    assert [t.id for t in store.archives_due(now)] == [done.id]
    assert len(store.active_tasks()) == 3
    newest_first = store.list_tasks(limit=2)
    assert newest_first[0].id == done.id
    assert store.delete_task(done.id)
    assert store.get_task(done.id) is None


def _due_tasks(store: Store, n: int) -> list[str]:
    past = utcnow() - timedelta(seconds=5)
    ids = []
    for i in range(n):
        task, _ = store.create_task("runway", status=TaskStatus.QUEUED, provider_task_id=f"p-{i}")
        store.update_task(task.id, next_poll_at=past)
        ids.append(task.id)
    return ids


def test_monitors_claiming_at_once_take_disjoint_shares_of_every_due_task(db_url: str) -> None:
    """Four claimers, each with its own connections (as four replicas would have), race for
    120 due tasks in passes of 25: every task is taken exactly once."""
    setup = Store(db_url)
    ids = _due_tasks(setup, 120)
    setup.close()
    stores = [Store(db_url) for _ in range(4)]
    taken: dict[str, list[str]] = {f"m{i}": [] for i in range(4)}
    barrier = threading.Barrier(4)
    now = utcnow()

    def claim(holder: str, store: Store) -> None:
        barrier.wait()
        while batch := store.claim_due(
            now=now, lease_until=now + timedelta(seconds=60), holder=holder, limit=25
        ):
            taken[holder].extend(t.id for t in batch)

    threads = [
        threading.Thread(target=claim, args=(h, s)) for h, s in zip(taken, stores, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    everything = [tid for got in taken.values() for tid in got]
    assert sorted(everything) == sorted(ids)  # each once: no task claimed twice
    holders = {t.id: t.lease_owner for t in stores[0].get_tasks(ids)}
    assert all(holders[tid] == h for h, got in taken.items() for tid in got)
    for s in stores:
        s.close()


def test_a_claim_skips_tasks_another_monitor_is_claiming_instead_of_waiting(pg_url: str) -> None:
    """PostgreSQL: rows locked by a claim in progress elsewhere are skipped (SKIP LOCKED), so
    a replica never queues behind another one's pass."""
    import psycopg

    store = Store(pg_url)
    ids = _due_tasks(store, 10)
    locked = sorted(ids)[:4]
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as other:  # an open transaction holding four rows
        other.execute("SELECT id FROM tasks WHERE id = ANY(%s) FOR UPDATE", (locked,))
        now = utcnow()
        got = store.claim_due(now=now, lease_until=now + timedelta(seconds=60), holder="a")
        assert sorted(t.id for t in got) == sorted(set(ids) - set(locked))
    # Released: the four are there for the next pass.
    rest = store.claim_due(now=now, lease_until=now + timedelta(seconds=60), holder="b")
    assert sorted(t.id for t in rest) == locked
    store.close()


def test_a_limited_claim_takes_the_most_overdue(db_url: str) -> None:
    store = Store(db_url)
    now = utcnow()
    order = []
    for age in (5, 50, None, 20):
        task, _ = store.create_task("runway", status=TaskStatus.QUEUED, provider_task_id=f"{age}")
        if age is not None:
            store.update_task(task.id, next_poll_at=now - timedelta(seconds=age))
        order.append((age, task.id))
    got = store.claim_due(now=now, lease_until=now + timedelta(seconds=60), holder="h", limit=3)
    by_age = {tid: age for age, tid in order}
    # Never polled (no schedule) first, then the longest overdue; the freshest waits.
    assert sorted(by_age[t.id] or 0 for t in got) == [0, 20, 50]
    store.close()


def test_one_of_many_processes_racing_for_a_results_analysis_gets_it(db_url: str) -> None:
    stores = [Store(db_url) for _ in range(6)]
    task, _ = stores[0].create_task("local", status=TaskStatus.SUCCEEDED)
    barrier = threading.Barrier(6)
    won: list[bool] = []

    def claim(store: Store) -> None:
        barrier.wait()
        won.append(store.claim_analysis(task.id, "/r/1.mp4", lease_s=60))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(won) == [False] * 5 + [True]
    # Another file for the same task is a new analysis, but not while the lease is live.
    assert not stores[1].claim_analysis(task.id, "/r/2.mp4", lease_s=60)
    for s in stores:
        s.close()


def test_postgresql_urls_use_psycopg_and_the_pool_follows_the_settings(
    pg_server: PgServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = pg_server.new_database()
    plain = url.replace("postgresql+psycopg://", "postgres://")
    env = {
        "REENACT_DATA_DIR": str(tmp_path),
        "REENACT_DATABASE_URL": plain,
        "REENACT_DB_POOL_SIZE": "3",
        "REENACT_DB_MAX_OVERFLOW": "lots",
    }
    settings = load_settings(env, secrets={})
    assert settings.database_url == url
    assert (settings.db_pool_size, settings.db_max_overflow) == (3, 5)
    assert "REENACT_DB_MAX_OVERFLOW='lots' is not a whole number" in caplog.text
    store = Store.open(settings)
    pool = store.engine.pool
    assert isinstance(pool, QueuePool) and pool.size() == 3
    held = [store.engine.connect() for _ in range(8)]  # 3 + the default overflow of 5
    assert pool.overflow() == 5
    for conn in held:
        conn.close()
    store.close()
    pg_server.drop_database(url)


def test_quiet_polls_are_written_only_while_their_holder_holds_the_lease(db_url: str) -> None:
    from services.errors import ErrorKind
    from services.lifecycle import QuietPoll

    store = Store(db_url)
    ids = _due_tasks(store, 3)
    now = utcnow()
    mine = store.claim_due(now=now, lease_until=now + timedelta(seconds=60), holder="a")
    assert len(mine) == 3
    # The third was taken over (its lease ran out and another monitor claimed it).
    store.update_task(ids[2], lease_owner="b")
    later = now + timedelta(seconds=30)
    store.record_polls(
        [
            QuietPoll(
                task_id=tid,
                status=TaskStatus.QUEUED,
                holder="a",
                progress=0.5,
                next_poll_at=later,
                poll_failures=i,
                error="Slow down." if i else None,
                error_kind=ErrorKind.RATE_LIMITED if i else None,
                updated_at=now,
            )
            for i, tid in enumerate(ids)
        ]
    )
    first, second, taken = (store.get_task(tid) for tid in ids)
    assert first is not None and second is not None and taken is not None
    assert (first.progress, first.next_poll_at, first.lease_owner) == (0.5, later, None)
    assert (second.poll_failures, second.error, second.error_kind) == (
        1,
        "Slow down.",
        ErrorKind.RATE_LIMITED,
    )
    assert (taken.progress, taken.lease_owner, taken.poll_failures) == (0.0, "b", 0)
    store.close()


def test_a_batch_of_changes_applies_each_only_where_its_expectations_hold(db_url: str) -> None:
    """One pass's state changes (one statement on PostgreSQL): each applies compare-and-set
    on its own, events only for those that applied, and a second change to a task in the
    same batch sees the first one's write."""
    from services.errors import ErrorKind
    from services.lifecycle import Change
    from services.models import ArchiveState

    store = Store(db_url)
    ids = _due_tasks(store, 5)
    now = utcnow()
    assert len(store.claim_due(now=now, lease_until=now + timedelta(seconds=60), holder="a")) == 5
    store.update_task(ids[2], lease_owner="b")  # taken over meanwhile
    store.update_task(ids[3], status=TaskStatus.RUNNING)  # moved on meanwhile
    store.update_task(ids[4], result_path="/r.mp4")
    later = now + timedelta(seconds=30)
    mine = {"lease_owner": "a"}
    released = {"lease_owner": None, "lease_until": None}
    batch = [
        Change(  # applies
            ids[0],
            {"status": TaskStatus.RUNNING, "progress": 0.25, "next_poll_at": later, **released},
            expect_status=TaskStatus.QUEUED,
            expect=mine,
            message="queued → running",
        ),
        Change(  # lease held by someone else: not applied
            ids[2],
            {"status": TaskStatus.FAILED, "error": "x", "finished_at": now, **released},
            expect_status=TaskStatus.QUEUED,
            expect=mine,
            message="must not be written",
        ),
        Change(  # status moved on: not applied
            ids[3],
            {"status": TaskStatus.SUCCEEDED, **released},
            expect_status=(TaskStatus.QUEUED, TaskStatus.SUBMITTING),
            expect=mine,
            message="must not be written either",
        ),
        Change(  # expects a NULL that is not: not applied
            ids[4],
            {"archive_state": ArchiveState.PENDING},
            expect_status=TaskStatus.QUEUED,
            expect={"result_path": None},
        ),
        Change(  # no such task
            "no-such-task", {"progress": 0.5}, expect_status=TaskStatus.QUEUED, message="no"
        ),
        Change(  # the same task again: sees the first change (running, lease released)
            ids[0],
            {
                "status": TaskStatus.SUCCEEDED,
                "progress": 1.0,
                "error_kind": ErrorKind.UNEXPECTED,
                "meta": {"sound": "kept"},
            },
            expect_status=TaskStatus.RUNNING,
            expect={"lease_owner": None, "next_poll_at": later},
            message="Succeeded.",
        ),
        Change(  # no status expectation, no message: applies without an event
            ids[1], {"poll_failures": 2, **released}, expect=mine
        ),
    ]
    assert store.apply_changes(batch) == [True, False, False, False, False, True, True]
    done, quiet, taken, moved, kept = (store.get_task(tid) for tid in ids)
    assert done is not None and quiet is not None and taken is not None
    assert moved is not None and kept is not None
    assert (done.status, done.progress, done.next_poll_at, done.lease_owner) == (
        TaskStatus.SUCCEEDED,
        1.0,
        later,
        None,
    )
    assert (done.error_kind, done.meta) == (ErrorKind.UNEXPECTED, {"sound": "kept"})
    assert done.updated_at >= now
    assert (quiet.status, quiet.poll_failures, quiet.lease_owner) == (TaskStatus.QUEUED, 2, None)
    assert (taken.status, taken.error, taken.lease_owner) == (TaskStatus.QUEUED, None, "b")
    assert (moved.status, moved.lease_owner) == (TaskStatus.RUNNING, "a")
    assert kept.archive_state is None
    assert [(e.status, e.progress, e.message) for e in store.events(ids[0])][-2:] == [
        (TaskStatus.RUNNING, 0.25, "queued → running"),
        (TaskStatus.SUCCEEDED, 1.0, "Succeeded."),
    ]
    for tid in ids[1:]:
        assert not [e for e in store.events(tid) if "must not" in e.message]
    assert len(store.events(ids[1])) == len(store.events(ids[4])) == 1  # the created events
    store.close()
