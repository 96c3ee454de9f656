"""Spending and caps (services/spending.py) on a real SQLite file. Prints figures.

    .venv/bin/python bench/bench_spending.py               # 10,000 tasks this month
    .venv/bin/python bench/bench_spending.py --tasks 50000

The data file gets `--tasks` tasks spread over this UTC month (and as many the month before,
which no figure should read), across Runway, CometAPI and the local engine, in every state,
a third with a reported cost. Timed, warm, median of `--runs`:
- `ensure_within_cap` with a day and a month cap on Runway and one on everything (what every
  submit pays when a cap is set; none set: what it pays without);
- `within_cap` around an empty block (the lock and the check: a submit's added cost);
- `month_report` (Settings → Spending and `reenact spend`).
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times)


def _fill(store: object, n: int) -> None:
    from sqlalchemy import insert

    from services.models import TaskStatus, utcnow
    from services.spending import month_start
    from services.store import Store, TaskRow, new_id

    assert isinstance(store, Store)
    rng = random.Random(13)
    now = utcnow()
    start = month_start(now)
    seconds = max(1.0, (now - start).total_seconds())
    statuses = list(TaskStatus)
    rows = []
    for month_back in (0, 1):
        base = start - timedelta(days=31) if month_back else start
        for _ in range(n):
            provider = rng.choice(("runway", "runway", "cometapi", "local"))
            created = base + timedelta(seconds=rng.random() * seconds)
            reported = provider == "runway" and rng.random() < 0.33
            rows.append(
                {
                    "id": new_id(),
                    "provider": provider,
                    "status": rng.choice(statuses).value,
                    "progress": 0.0,
                    "created_at": created,
                    "updated_at": created,
                    "poll_failures": 0,
                    "options": {},
                    "tracked": 0,
                    "cost_estimate": 0.0 if provider == "local" else round(rng.random(), 2),
                    "cost_usd": round(rng.random(), 2) if reported else None,
                    "meta": {},
                    "owner": "local",
                }
            )
    with store.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(insert(TaskRow), rows[i : i + 5000])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()

    from services import spending
    from services.config import load_settings
    from services.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={"REENACT_DATA_DIR": tmp}, secrets={})
        store = Store.open(settings)
        _fill(store, args.tasks)
        planned = {"runway": 0.5}

        none_ms, _ = _timed(lambda: spending.ensure_within_cap(store, settings, planned), args.runs)
        spending.set_cap(store, "day", "runway", 1e6)
        spending.set_cap(store, "month", "runway", 1e6)
        spending.set_cap(store, "month", "total", 1e6)
        check_ms, check_max = _timed(
            lambda: spending.ensure_within_cap(store, settings, planned), args.runs
        )

        def held() -> None:
            with spending.within_cap(store, settings, planned):
                pass

        held_ms, held_max = _timed(held, args.runs)
        report_ms, report_max = _timed(lambda: spending.month_report(store, settings), args.runs)
        report = spending.month_report(store, settings)
        store.close()

    print(f"machine: {platform.machine()}, {platform.python_version()}")
    print(f"tasks: {args.tasks} this month (+{args.tasks} last month), runs: {args.runs}")
    print(f"counted this month: {report.total.tasks} tasks, {report.total.shown()}")
    print(f"ensure_within_cap, no cap set:     median {none_ms:7.2f} ms")
    print(f"ensure_within_cap, 3 caps:         median {check_ms:7.2f} ms (max {check_max:.2f})")
    print(f"within_cap (lock + check):         median {held_ms:7.2f} ms (max {held_max:.2f})")
    print(f"month_report:                      median {report_ms:7.2f} ms (max {report_max:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
