"""Compare page figures (issue 9): prints them; never asserts.

Opening a run with 6 results: the data path (the run, its tasks, analyses and vote, the
numbers table) and a whole run of pages/compare.py?run=ID through AppTest (script,
components, the player's data, rendering to protos) — with 2,000 other tasks and 300 other
comparison runs in the store, and a leaderboard of 300 votes.

    .venv/bin/python bench/bench_compare.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from services.models import (  # noqa: E402
    OutputFacts,
    TaskAnalysis,
    TaskInputs,
    TaskOptions,
    TaskStatus,
    Vote,
    utcnow,
)
from services.store import Store, TaskRow, new_id  # noqa: E402

PROVIDERS = ["local", "runway", "cometapi", "liangxin", "local", "runway"]
REPEATS = 15


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"median {statistics.median(samples) * 1000:.1f} ms, "
        f"p90 {ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


def _seed(store: Store, drive: Path) -> str:
    now = utcnow()
    rows = []
    for i in range(2000):
        created = now - timedelta(seconds=5000 - i)
        rows.append(
            {
                "id": new_id(),
                "provider": PROVIDERS[i % 4],
                "provider_task_id": f"p-{i}",
                "status": TaskStatus.SUCCEEDED.value,
                "progress": 1.0,
                "created_at": created,
                "updated_at": created,
                "finished_at": created,
                "inputs": {"video": str(drive)},
                "options": {},
                "meta": {},
                "tracked": 0,
                "poll_failures": 0,
            }
        )
    with store.engine.begin() as conn:
        conn.execute(insert(TaskRow), rows)
    inputs = TaskInputs(video=str(drive), image=None)
    for i in range(300):
        run, _ = store.create_run(inputs, TaskOptions(), ["local", "runway", "cometapi"])
        store.save_vote(
            Vote(
                run_id=run.id,
                winner=("local", "runway", "cometapi")[i % 3],
                contenders=["local", "runway", "cometapi"],
            )
        )
    # The run opened: six results (two providers twice: retries stand in for their task,
    # so six distinct providers are simulated by six tasks of four ids plus retries).
    run, _ = store.create_run(inputs, TaskOptions(), list(dict.fromkeys(PROVIDERS)))
    for pid in PROVIDERS:
        task, _ = store.create_task(pid, status=TaskStatus.SUCCEEDED, inputs=inputs, run_id=run.id)
        store.update_task(task.id, result_path=str(drive), finished_at=utcnow(), progress=1.0)
        store.save_analysis(
            TaskAnalysis(
                task_id=task.id,
                state="done",
                result_path=str(drive),
                output=OutputFacts(width=1280, height=720, fps=24, duration_s=10, has_audio=True),
                fidelity={"score": 80.0, "signals": [{"name": "mouth", "r": 0.9}] * 5},
            )
        )
    return run.id


def main() -> None:
    from tests.mediagen import make_video

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        os.environ["REENACT_DATA_DIR"] = str(data)
        drive = make_video(Path(tmp) / "drive.mp4", size=(320, 180), seconds=2.0, fps=10)
        store = Store(f"sqlite:///{data / 'reenact.db'}")
        run_id = _seed(store, drive)
        store.close()

        from services.compare.leaderboard import leaderboard
        from services.compare.runs import load_run, numbers
        from services.studio import Studio

        studio = Studio()
        load_run(studio, run_id)
        data_path: list[float] = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            numbers(studio, load_run(studio, run_id))
            data_path.append(time.perf_counter() - t)
        print(f"open a run with 6 results, data path (run, tasks, numbers): {_ms(data_path)}")
        board: list[float] = []
        votes = studio.store.votes()
        for _ in range(5):
            t = time.perf_counter()
            leaderboard(votes)
            board.append(time.perf_counter() - t)
        print(f"leaderboard of {len(votes)} votes (fit + 300 bootstrap fits): {_ms(board)}")

        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=60)
        at.query_params["run"] = run_id
        t = time.perf_counter()
        at.run()
        first = time.perf_counter() - t
        assert not at.exception, at.exception
        reruns: list[float] = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            at.run()
            reruns.append(time.perf_counter() - t)
        print(
            f"compare page ?run=ID (6 results), first run in a fresh process: {first * 1000:.0f} ms"
        )
        print(f"compare page ?run=ID (6 results), each later run via AppTest: {_ms(reruns)}")
        at = AppTest.from_file(str(ROOT / "pages" / "compare.py"), default_timeout=60)
        at.run()
        lists: list[float] = []
        for _ in range(REPEATS):
            t = time.perf_counter()
            at.run()
            lists.append(time.perf_counter() - t)
        print(f"compare page list (301 runs, page 1 of 31, leaderboard): {_ms(lists)}")
        studio.close()


if __name__ == "__main__":
    main()
