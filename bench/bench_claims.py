"""The monitor's database work per pass on PostgreSQL and on SQLite. Prints figures.

    .venv/bin/python bench/bench_claims.py                      # 10,000 in flight, 25 a pass
    .venv/bin/python bench/bench_claims.py --tasks 1000 --batch 25 --passes 200

One pass is what a monitor replica writes for the tasks it polls: `claim_due` of `--batch`
due tasks (PostgreSQL: one UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
RETURNING; SQLite: a pick, then the UPDATE), then one transaction writing 3 state changes
with their events (PostgreSQL: one statement, the UPDATE with RETURNING feeding the events'
INSERT) and all the others as quiet polls (one executemany; PostgreSQL: one UPDATE … FROM
unnest): `apply_changes(changes, quiet)`, two commits a pass.
The database holds `--tasks` in-flight tasks, all due; each pass's tasks are rescheduled a
day ahead, so every pass claims fresh ones among the rest. PostgreSQL is a real server
started from Debian's binaries in a temporary folder on 127.0.0.1 (tests/pg.py), with
fsync on (a deployment's setting); SQLite is a WAL file in a temporary folder.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHANGES = 3


def _fill(store: object, n: int) -> None:
    from services.models import TaskStatus, utcnow
    from services.store import Store, TaskRow

    assert isinstance(store, Store)
    base = utcnow() - timedelta(hours=1)
    with store._session() as s:
        for start in range(0, n, 1000):
            s.add_all(
                TaskRow(
                    id=f"t{i:08d}",
                    provider="runway",
                    provider_task_id=f"p{i}",
                    status=TaskStatus.QUEUED.value,
                    next_poll_at=base + timedelta(milliseconds=i),
                )
                for i in range(start, min(n, start + 1000))
            )
            s.flush()
        s.commit()
    if store.engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of a bulk insert in a deployment: without
        # statistics the planner guesses the claim's index is not worth it.
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE tasks")
            conn.commit()


def _passes(url: str, tasks: int, batch: int, passes: int) -> dict[str, list[float]]:
    from services.lifecycle import Change, QuietPoll
    from services.models import TaskStatus, utcnow
    from services.store import Store

    store = Store(url)
    _fill(store, tasks)
    holder = "bench-host:1:abc"
    times: dict[str, list[float]] = {"claim": [], "write": [], "pass": []}
    for _ in range(passes):
        now = utcnow()
        later = now + timedelta(days=1)
        t0 = time.perf_counter()
        claimed = store.claim_due(
            now=now, lease_until=now + timedelta(seconds=150), holder=holder, limit=batch
        )
        t1 = time.perf_counter()
        assert len(claimed) == batch, f"claimed {len(claimed)} of {batch}"
        quiet = [
            QuietPoll(
                task_id=t.id,
                status=t.status,
                holder=holder,
                progress=0.1,
                next_poll_at=later,
                poll_failures=0,
                error=None,
                error_kind=None,
                updated_at=now,
            )
            for t in claimed[CHANGES:]
        ]
        changes = [
            Change(
                task_id=t.id,
                fields={
                    "status": TaskStatus.RUNNING,
                    "progress": 0.2,
                    "started_at": now,
                    "next_poll_at": later,
                    "lease_owner": None,
                    "lease_until": None,
                },
                expect_status=TaskStatus.QUEUED,
                expect={"lease_owner": holder},
                message="queued → running",
            )
            for t in claimed[:CHANGES]
        ]
        assert all(store.apply_changes(changes, quiet))  # one transaction, as a pass writes
        t2 = time.perf_counter()
        for name, value in (("claim", t1 - t0), ("write", t2 - t1)):
            times[name].append(value * 1000)
        times["pass"].append((t2 - t0) * 1000)
    store.close()
    return times


def _report(name: str, times: dict[str, list[float]]) -> None:
    def p95(values: list[float]) -> float:
        return sorted(values)[int(len(values) * 0.95) - 1]

    parts = ", ".join(
        f"{k} {statistics.median(v):.2f}/{p95(v):.2f}" for k, v in times.items() if k != "pass"
    )
    whole = times["pass"]
    print(
        f"{name:<11} pass median {statistics.median(whole):.2f} ms, p95 {p95(whole):.2f} ms, "
        f"max {max(whole):.2f} ms  ({parts} ms median/p95)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--passes", type=int, default=200)
    args = parser.parse_args()
    if args.batch * args.passes > args.tasks:
        parser.error("--tasks must be at least --batch × --passes (each pass takes fresh ones)")
    from tests import pg

    print(
        f"{platform.machine()} {platform.python_version()}, {args.tasks:,} in flight, "
        f"{args.batch} a pass ({args.batch - CHANGES} quiet + {CHANGES} changes), "
        f"{args.passes} passes"
    )
    root = Path(tempfile.mkdtemp(prefix="bench-claims-pg-"))  # the server's user owns it
    try:
        server = pg.start_server(root, durable=True)
        try:
            url = server.new_database()
            _report("PostgreSQL", _passes(url, args.tasks, args.batch, args.passes))
        finally:
            pg.stop_server(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp:
        _report("SQLite", _passes(f"sqlite:///{tmp}/bench.db", args.tasks, args.batch, args.passes))


if __name__ == "__main__":
    main()
