"""The store's schema: brought to the newest Alembic revision whenever a Store opens.

Revisions live in services/migrations/versions, one file per revision named after its id
(0001_baseline.py, 0002_lifecycle.py, …), so the newest is known from the folder alone: a
start on an up-to-date database costs one SELECT, and Alembic is imported only when there
is something to do. Any number of processes may open a new or an old database at once: the
first takes the lock and upgrades, the others wait for it and then find nothing left to do.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from services.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant will do, as long as every process migrating one PostgreSQL database uses it.
_PG_LOCK_KEY = 0x7265656E6163


def revisions() -> list[str]:
    """Every revision this code knows, oldest first."""
    return sorted(p.stem for p in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(conn: Connection) -> str | None:
    """The database's revision; None for a new database or one written before Alembic."""
    try:
        return conn.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:  # no alembic_version table yet
        return None


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision (nothing to do: one SELECT)."""
    known = revisions()
    with engine.connect() as conn:
        found = current_revision(conn)
    if found == known[-1]:
        return
    if found is not None and found not in known:
        raise ConfigError(
            f"The data at {engine.url.render_as_string(hide_password=True)} was written by a "
            f"newer version of Reenact Studio (schema {found}; this one knows up to "
            f"{known[-1]}). Update Reenact Studio to open it."
        )
    from alembic import command

    with _migrating(engine) as conn:
        command.upgrade(alembic_config(conn), "head")


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration, built here: no alembic.ini is needed at run time."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """A connection, inside one transaction, that only one process at a time gets. The
    upgrade commits as a whole: a process killed halfway leaves the previous revision."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Released by the commit; a waiter then reads the new revision.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            yield conn
        return
    with _file_lock(engine.url.database), engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        legacy = driver.isolation_level
        # Python's sqlite3 opens a transaction only before INSERT/UPDATE/DELETE, so DDL would
        # commit statement by statement: begin (and commit) ourselves instead.
        driver.isolation_level = None
        # SQLite's own recipe for rebuilding a table (Alembic's batch mode): with foreign
        # keys on, dropping the old `tasks` would cascade into every task's events.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"a migration broke foreign keys: {broken[:5]}")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            driver.isolation_level = legacy


@contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    """An exclusive lock on a file beside the SQLite database, held while one process
    migrates it. Waiters block here for as long as it takes (SQLite's own lock would give
    up after the busy timeout). An in-memory database belongs to one process: no lock."""
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    path = Path(database)
    with open(path.with_name(f"{path.name}.migrate.lock"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
