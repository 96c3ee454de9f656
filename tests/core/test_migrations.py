"""Schema migrations (services/schema.py, services/migrations): new and old data files come
up at the newest revision with every row intact, however many processes open them at once.

tests/core/data holds two data files written by the code before Alembic, as `sqlite3`
dumps: pre_alembic.sql (with owners) and pre_owners.sql (the same rows before the owner
columns existed). Their tasks: one in every state the old code could leave."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, event, insert, select, text

from services import schema
from services.errors import ConfigError
from services.models import LOCAL_OWNER, ArchiveState, TaskStatus
from services.store import Base, Store

DATA = Path(__file__).with_name("data")
DUMPS = ("pre_alembic.sql", "pre_owners.sql")
HEAD = schema.revisions()[-1]

# provider task id -> (status, archive_state, meta) after the upgrade
EXPECTED: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "rw-queued-1": ("queued", None, {}),
    "local-run-2": ("running", None, {}),
    "cm-done-3": ("succeeded", "done", {}),
    "mv-gaveup-4": ("succeeded", "gave_up", {"attempts": 6}),
    "lx-pending-5": ("succeeded", "pending", {"note": "kept"}),
    "rw-disk-6": ("succeeded", "blocked", {}),
    "rw-failed-7": ("failed", None, {}),
    "local-unarch-8": ("succeeded", "pending", {}),
}
# What an upgrade must not touch.
KEPT = (
    "id, provider, provider_task_id, status, result_path, result_url, error, error_kind, "
    "run_id, created_at, finished_at, inputs, idempotency_key"
)


def _load(dump: str, path: Path) -> str:
    with sqlite3.connect(path) as conn:
        conn.executescript((DATA / dump).read_text())
    return f"sqlite:///{path}"


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def _tasks(path: Path, columns: str) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT {columns} FROM tasks").fetchall()
    return {row["id"]: row for row in rows}


def _counts(path: Path) -> dict[str, int]:
    tables = ("runs", "task_events", "task_analyses", "votes", "preferences", "uploads")
    return {t: _rows(path, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def _schema(path: Path) -> set[tuple[Any, ...]]:
    return set(
        _rows(
            path,
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND name != 'alembic_version'",
        )
    )


def _orm_differences(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))
    finally:
        engine.dispose()


@pytest.mark.parametrize("dump", DUMPS)
def test_an_old_data_file_is_upgraded_with_every_task_intact(tmp_path: Path, dump: str) -> None:
    path = tmp_path / "reenact.db"
    url = _load(dump, path)
    had_owners = "owner" in {r[1] for r in _rows(path, "PRAGMA table_info(tasks)")}
    before = _tasks(path, KEPT + (", owner" if had_owners else "") + ", next_poll_at")
    counts = _counts(path)
    assert _rows(path, "SELECT count(*) FROM sqlite_master WHERE name = 'alembic_version'") == [
        (0,)
    ]

    store = Store(url)
    after = _tasks(path, KEPT + ", owner, next_poll_at, archive_state, meta")
    assert set(after) == set(before) and len(after) == len(EXPECTED)
    for task_id, old in before.items():
        new = after[task_id]
        assert {k: new[k] for k in KEPT.split(", ")} == {k: old[k] for k in KEPT.split(", ")}
        assert new["owner"] == (old["owner"] if had_owners else LOCAL_OWNER)
        status, state, meta = EXPECTED[new["provider_task_id"]]
        assert (new["status"], new["archive_state"]) == (status, state)
        task = store.get_task(task_id)
        assert task is not None and task.meta == meta  # "archiver", "archive_gave_up" gone
        assert task.provider_task_id == old["provider_task_id"]
        assert task.status is TaskStatus(status)
        # A pending archive is due now (its old lease lived in next_poll_at); polls keep theirs.
        assert new["next_poll_at"] == (None if state == "pending" else old["next_poll_at"])
    if had_owners:
        assert {t.provider_task_id for t in store.list_tasks(owner="ana@example.com")} == {
            "rw-queued-1",
            "local-run-2",
        }
    else:
        assert len(store.list_tasks(owner=LOCAL_OWNER)) == len(EXPECTED)
    assert _counts(path) == counts
    store.close()

    assert _rows(path, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    indexes = {r[0] for r in _rows(path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"ix_tasks_owner_created", "ix_runs_owner", "ix_tasks_archive"} <= indexes
    assert _orm_differences(url) == []


def test_the_baseline_is_the_schema_the_code_before_alembic_wrote(tmp_path: Path) -> None:
    """Revision 0001 on an empty file writes, statement for statement, what `create_all`
    wrote before (tables, constraints and indexes), so new and old files are the same."""
    old = tmp_path / "old.db"
    _load("pre_alembic.sql", old)
    new = tmp_path / "new.db"
    engine = create_engine(f"sqlite:///{new}")
    with engine.begin() as conn:
        command.upgrade(schema.alembic_config(conn), "0001_baseline")
    engine.dispose()
    assert _schema(new) == _schema(old)
    assert len(_schema(new)) == 15  # 7 tables, 8 indexes


def test_the_orm_models_and_the_migrations_agree(tmp_path: Path) -> None:
    """Catches a column, index or table added to the models without a migration."""
    url = f"sqlite:///{tmp_path / 'reenact.db'}"
    Store(url).close()
    assert _orm_differences(url) == []
    # The check sees a column the migrations never made.
    with sqlite3.connect(tmp_path / "reenact.db") as conn:
        conn.execute("DROP INDEX ix_tasks_archive")
        conn.execute("ALTER TABLE tasks DROP COLUMN archive_state")
    differences = _orm_differences(url)
    assert ("add_column", None, "tasks") in {d[:3] for d in differences if isinstance(d, tuple)}


def test_revision_files_are_named_after_their_ids_in_one_line(tmp_path: Path) -> None:
    """The fast path finds the newest revision from the file names alone."""
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        script = ScriptDirectory.from_config(schema.alembic_config(conn))
    names = schema.revisions()
    assert names[:2] == ["0001_baseline", "0002_lifecycle"]
    assert script.get_heads() == [names[-1]]
    for older, newer in zip([None, *names], names, strict=False):
        revision = script.get_revision(newer)
        assert revision is not None and revision.down_revision == older
        assert Path(revision.path).stem == newer


def test_opening_an_up_to_date_database_costs_one_select(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reenact.db'}"
    Store(url).close()
    engine = create_engine(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    schema.upgrade(engine)
    engine.dispose()
    assert statements == ["SELECT version_num FROM alembic_version"]


def test_a_database_from_a_newer_version_is_refused_with_a_sentence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reenact.db'}"
    Store(url).close()
    with sqlite3.connect(tmp_path / "reenact.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(ConfigError, match=r"newer version of Reenact Studio \(schema 9999_future"):
        Store(url)


def test_downgrade_to_the_baseline_and_back_keeps_the_tasks(tmp_path: Path) -> None:
    path = tmp_path / "reenact.db"
    url = _load("pre_alembic.sql", path)
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        command.downgrade(schema.alembic_config(conn), "0001_baseline")
    engine.dispose()
    assert "archive_state" not in {r[1] for r in _rows(path, "PRAGMA table_info(tasks)")}
    store = Store(url)
    assert len(store.list_tasks()) == len(EXPECTED)
    store.close()
    assert _rows(path, "SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_an_old_data_file_opens_while_another_process_holds_its_write_lock(
    tmp_path: Path,
) -> None:
    """Switching a rollback-journal file to WAL needs an exclusive lock, and SQLite says
    "locked" at once (no busy wait) while another process is writing it — as when another
    process migrates it. Seen in CI: one of eight processes failed to open an old file."""
    path = tmp_path / "reenact.db"
    url = _load("pre_alembic.sql", path)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE tasks SET error = error")
    opened: list[Store] = []
    failed: list[BaseException] = []

    def open_store() -> None:
        try:
            opened.append(Store(url))
        except BaseException as exc:  # reported by the assertion below
            failed.append(exc)

    thread = threading.Thread(target=open_store)
    thread.start()
    thread.join(timeout=0.5)  # still waiting: the lock is held
    assert thread.is_alive() and not failed
    writer.execute("COMMIT")
    writer.close()
    thread.join(timeout=30)
    assert not failed, failed
    assert opened and _rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert len(opened[0].list_tasks()) == len(EXPECTED)


def test_an_in_memory_database_works() -> None:
    store = Store("sqlite://")
    task, _ = store.create_task("local", status=TaskStatus.QUEUED, provider_task_id="m-1")
    found = store.get_task(task.id)
    assert found is not None and found.provider_task_id == "m-1"
    store.close()


# A process that opens the store the moment the test says go (after its imports, which
# would otherwise spread the starts out) and creates one task.
_OPEN_AND_CREATE = """
import sys
from services.store import Store
print("ready", flush=True)
sys.stdin.read()
store = Store(sys.argv[1])
task, _ = store.create_task("local", provider_task_id=sys.argv[2])
print(task.id, flush=True)
"""


def _open_at_once(url: str, n: int) -> list[str]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AND_CREATE, url, f"p-{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        for proc in procs:  # go
            assert proc.stdin is not None
            proc.stdin.close()
        outcomes = [(proc.wait(timeout=120), proc.stdout, proc.stderr) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    ids = []
    for code, out, err in outcomes:
        assert out is not None and err is not None
        errors = err.read()
        assert code == 0, errors
        ids.append(out.read().strip())
    return ids


@pytest.mark.slow
@pytest.mark.parametrize("dump", [None, "pre_alembic.sql"])  # the CLI test below: pre_owners
def test_eight_processes_open_a_new_or_old_data_file_at_once(
    tmp_path: Path, dump: str | None
) -> None:
    path = tmp_path / "reenact.db"
    url = _load(dump, path) if dump else f"sqlite:///{path}"
    old = set(_tasks(path, "id")) if dump else set()

    created = _open_at_once(url, 8)

    assert len(set(created)) == 8
    assert set(_tasks(path, "id")) == old | set(created)
    assert _rows(path, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert _orm_differences(url) == []


@pytest.mark.slow
def test_eight_cli_processes_on_an_old_data_dir_all_list_its_tasks(tmp_path: Path) -> None:
    from tests.cli.support import base_env, reenact_script

    _load("pre_owners.sql", tmp_path / "reenact.db")
    env = base_env(tmp_path)
    procs = [
        subprocess.Popen(
            [reenact_script(), "list", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        code = p.returncode
        assert code == 0, err
        assert out.count('"provider_task_id"') == len(EXPECTED)
    assert _rows(tmp_path / "reenact.db", "SELECT version_num FROM alembic_version") == [(HEAD,)]


# ---- PostgreSQL (a real server: tests/pg.py) ------------------------------------------------
def _pg_at_baseline_with_old_rows(tmp_path: Path, pg_url: str) -> None:
    """A PostgreSQL database at the first revision holding the old data file's rows: what a
    deployment that started on an older version has when it is upgraded."""
    old = create_engine(_load("pre_alembic.sql", tmp_path / "old.db"))
    pg = create_engine(pg_url)
    with pg.begin() as conn:
        command.upgrade(schema.alembic_config(conn), "0001_baseline")
    source, target = MetaData(), MetaData()
    source.reflect(old)
    target.reflect(pg)
    with old.connect() as src, pg.begin() as dst:
        for table in target.sorted_tables:
            if table.name in source.tables:
                rows = [dict(r) for r in src.execute(select(source.tables[table.name])).mappings()]
                if rows:
                    dst.execute(insert(table), rows)
            # Rows copied with their ids leave the serial behind them, as a dump restore does.
            serial = [c for c in table.primary_key.columns if c.autoincrement is True]
            for column in serial:
                dst.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                        f"coalesce(max({column.name}), 0) + 1, false) FROM {table.name}"
                    )
                )
    old.dispose()
    pg.dispose()


def _pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("old", [False, True])
def test_eight_processes_open_a_new_or_old_postgresql_database_at_once(
    tmp_path: Path, pg_url: str, old: bool
) -> None:
    if old:
        _pg_at_baseline_with_old_rows(tmp_path, pg_url)
        assert _pg_rows(pg_url, "SELECT version_num FROM alembic_version") == [("0001_baseline",)]

    created = _open_at_once(pg_url, 8)

    assert len(set(created)) == 8
    assert _pg_rows(pg_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert _orm_differences(pg_url) == []
    store = Store(pg_url)
    tasks = {t.id: t for t in store.list_tasks(limit=100)}
    assert set(created) <= set(tasks)
    assert len(tasks) == 8 + (len(EXPECTED) if old else 0)
    for task in tasks.values():
        if task.id in created:
            continue
        status, state, meta = EXPECTED[task.provider_task_id or ""]
        assert (task.status, task.archive_state) == (
            TaskStatus(status),
            None if state is None else ArchiveState(state),
        )
        assert task.meta == meta
    store.close()


def test_postgresql_downgrade_and_upgrade_agree_with_the_models(pg_url: str) -> None:
    Store(pg_url).close()
    assert _orm_differences(pg_url) == []
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        command.downgrade(schema.alembic_config(conn), "0001_baseline")
    engine.dispose()
    assert ("add_column", None, "tasks") in {
        d[:3] for d in _orm_differences(pg_url) if isinstance(d, tuple)
    }
    store = Store(pg_url)
    task, _ = store.create_task("local", status=TaskStatus.QUEUED, provider_task_id="pg-1")
    assert store.get_task(task.id) is not None
    store.close()
    assert _orm_differences(pg_url) == []
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(ConfigError, match=r"newer version of Reenact Studio \(schema 9999_future"):
        Store(pg_url)
