"""Locks held across processes and replicas through the database that they share.

On PostgreSQL a session advisory lock (`pg_advisory_lock`, or `_shared`), keyed by a name and
an optional key; on a SQLite file an flock on a file next to it (one per name: a SQLite
deployment is one machine, so the key is not needed to keep replicas apart); on an in-memory
database a thread lock. Used for the spending cap check (services/spending.py) and the
deletion of bucket inputs (services/storage.py).
"""

from __future__ import annotations

import fcntl
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

# In-memory databases live in one process: a thread lock per name is enough there.
_MEMORY_LOCKS: dict[str, threading.Lock] = {}
_MEMORY_GUARD = threading.Lock()


def _pg_key(name: str, key: str) -> int:
    """One signed 64-bit advisory key per (name, key): the same in every process."""
    high = zlib.crc32(name.encode())
    low = zlib.crc32(key.encode())
    value = (high << 32) | low
    return value - (1 << 64) if value >= 1 << 63 else value


@contextmanager
def db_lock(engine: Engine, name: str, key: str = "", *, shared: bool = False) -> Iterator[None]:
    """Hold the lock `name` (`key` within it) while the block runs. `shared` holders do not
    exclude each other, only the exclusive one. Never nest two locks of one name on SQLite:
    the second would wait for the first."""
    if engine.dialect.name == "postgresql":
        mode = "_shared" if shared else ""
        k = _pg_key(name, key)
        with engine.connect() as conn:
            conn.execute(text(f"SELECT pg_advisory_lock{mode}(:k)"), {"k": k})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text(f"SELECT pg_advisory_unlock{mode}(:k)"), {"k": k})
                conn.commit()
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        with _MEMORY_GUARD:
            lock = _MEMORY_LOCKS.setdefault(name, threading.Lock())
        with lock:
            yield
        return
    path = Path(database)
    # Each holder opens its own handle: flock then also keeps two threads of one process
    # apart, not only two processes.
    with open(path.with_name(f"{path.name}.{name}.lock"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
