"""Batch figures (issue 13): prints them; never asserts.

1. Checking a batch of 50 local inputs: a CSV of 50 rows, each its own 720p driving clip
   (10 s at 30 fps, as a phone take) onto one of two characters, at `local;runway` — every
   file probed and checked against both providers, every row priced, nothing sent
   (`services.batch.plan`), then the same through the installed `reenact batch --dry-run`
   (a creator's wall time: process start, imports, the store, the checks, the table).
   Target ≤ 10 s.
2. The batch view with 500 tasks (250 rows × 2 providers: done, running, queued, failed):
   the data path (`services.batch.load`: the batch, its tasks, the ETA's durations) and a
   whole rerun of the view through AppTest (script, components, the table to protos) —
   what each refresh tick of a running batch costs. Target ≤ 150 ms.

    .venv/bin/python bench/bench_batch.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out" / "batch"
N_ROWS = 50
VIEW_ROWS = 250  # × 2 providers = 500 tasks
REPEATS = 15


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"median {statistics.median(samples) * 1000:.1f} ms, "
        f"p90 {ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000:.1f} ms"
    )


def _inputs() -> Path:
    """50 takes and 2 characters (made once, kept in bench/out/batch) and the CSV."""
    from tests.mediagen import make_image, make_video

    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    made = 0
    for i in range(N_ROWS):
        path = OUT / f"take-{i:02d}.mp4"
        if not path.is_file():
            x = 0.4 + 0.2 * (i % 5) / 4
            make_video(path, size=(1280, 720), seconds=10.0, fps=30, face_pos=(x, 0.5))
            made += 1
    for name, size in (("alice.png", (1024, 576)), ("bob.png", (768, 432))):
        if not (OUT / name).is_file():
            make_image(OUT / name, size=size)
    if made:
        print(f"made {made} takes (720p, 10 s, 30 fps) in {time.perf_counter() - t0:.0f} s")
    sheet = OUT / "takes.csv"
    rows = [
        f"take-{i:02d}.mp4,{'alice' if i % 2 else 'bob'}.png,local;runway,intensity=3"
        for i in range(N_ROWS)
    ]
    sheet.write_text("video,image,providers,options\n" + "\n".join(rows) + "\n")
    return sheet


def bench_checks(data_dir: Path) -> None:
    from services import batch
    from services.config import load_settings
    from services.studio import Studio

    sheet = _inputs()
    env = {
        "REENACT_DATA_DIR": str(data_dir),
        # Planning never calls Runway: a key only makes it a provider that could be chosen.
        "REENACT_RUNWAY_API_KEY": "bench-key",
        "REENACT_RUNWAY_BASE_URL": "http://127.0.0.1:9",
    }
    studio = Studio(load_settings(env=env, secrets={}))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        lines = batch.read_csv(sheet)
        planned = batch.plan(studio, lines, name=sheet.name, key=batch.batch_key(lines, "local"))
        times.append(time.perf_counter() - t)
    assert planned.task_count == 2 * N_ROWS, planned.refused
    files = len({line.video for line in lines} | {line.image for line in lines})
    print(
        f"checking a batch of {N_ROWS} rows ({files} files, local;runway), in process: "
        + ", ".join(f"{s:.2f} s" for s in times)
        + f" (per file {min(times) / files * 1000:.0f} ms)"
    )
    studio.close()

    script = Path(sys.executable).parent / "reenact"
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("REENACT_")}
    cli_env.update(env)
    walls = []
    for _ in range(3):
        t = time.perf_counter()
        done = subprocess.run(
            [str(script), "batch", str(sheet), "--dry-run", "--json"],
            env=cli_env,
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - t)
        assert done.returncode == 0, done.stderr[-2000:]
    print(
        f"`reenact batch takes.csv --dry-run` ({N_ROWS} rows), wall: "
        + ", ".join(f"{s:.2f} s" for s in walls)
    )


def _seed_batch(data_dir: Path) -> str:
    """A batch of 250 rows at local and runway: 500 tasks, most done, some moving."""
    from sqlalchemy import insert

    from services.models import BatchLine, TaskInputs, TaskOptions, TaskStatus, utcnow
    from services.store import Store, TaskRow, new_id

    store = Store(f"sqlite:///{data_dir / 'reenact.db'}")
    lines = [
        BatchLine(
            row=n,
            video=f"/takes/take-{n:03d}.mp4",
            image=f"/chars/{'alice' if n % 2 else 'bob'}.png",
            providers=["local", "runway"],
            estimates={"local": 0.0, "runway": 0.5},
        )
        for n in range(1, VIEW_ROWS + 1)
    ]
    batch, _ = store.create_batch("250 takes", lines, idempotency_key="bench", estimate_usd=125)
    now = utcnow()
    states = [TaskStatus.SUCCEEDED] * 6 + [TaskStatus.RUNNING, TaskStatus.QUEUED, TaskStatus.FAILED]
    rows: list[dict[str, Any]] = []
    for line in lines:
        inputs = TaskInputs(video=line.video, image=line.image)
        run, _ = store.create_run(
            inputs,
            TaskOptions(),
            line.providers,
            idempotency_key=f"batch:{batch.id}:{line.row}",
            batch_id=batch.id,
            batch_row=line.row,
        )
        for j, provider in enumerate(line.providers):
            status = states[(line.row * 2 + j) % len(states)]
            made = now - timedelta(seconds=600 - line.row)
            done = status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)
            rows.append(
                {
                    "id": new_id(),
                    "provider": provider,
                    "provider_task_id": f"p-{line.row}-{j}",
                    "status": status.value,
                    "progress": 1.0 if done else 0.4,
                    "error": "The provider refused the input."
                    if status.value == "failed"
                    else None,
                    "created_at": made,
                    "updated_at": made,
                    "started_at": made,
                    "finished_at": made + timedelta(seconds=90) if done else None,
                    "run_id": run.id,
                    "inputs": inputs.model_dump(mode="json"),
                    "options": {},
                    "meta": {},
                    "tracked": 0,
                    "poll_failures": 0,
                    "cost_estimate": 0.5 if provider == "runway" else 0.0,
                    "result_path": f"/results/{line.row}-{j}.mp4"
                    if status is TaskStatus.SUCCEEDED
                    else None,
                    "archive_state": "done" if status is TaskStatus.SUCCEEDED else None,
                }
            )
    with store.engine.begin() as conn:
        conn.execute(insert(TaskRow), rows)
    store.close()
    return batch.id


def bench_view(data_dir: Path) -> None:
    os.environ["REENACT_DATA_DIR"] = str(data_dir)
    batch_id = _seed_batch(data_dir)

    from services import batch
    from services.runtime import process_runtime

    studio = process_runtime().studio
    data = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        view = batch.load(studio, batch_id)
        data.append(time.perf_counter() - t)
    print(
        f"batch view data path ({view.total} tasks: {view.counts}, ETA "
        f"{view.eta_s:.0f} s): {_ms(data)}"
        if view.eta_s is not None
        else f"batch view data path ({view.total} tasks): {_ms(data)}"
    )

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page, args=(batch_id,), default_timeout=60)
    at.run()  # imports, caches
    assert not at.exception, at.exception
    reruns = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - t)
    assert not at.exception, at.exception
    print(f"batch view with {view.total} tasks, whole rerun via AppTest: {_ms(reruns)}")


def _page(batch_id: str) -> None:
    from components.batch_view import batch_view

    batch_view(batch_id)


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # AppTest's "no runtime" chatter
    with tempfile.TemporaryDirectory() as tmp:
        bench_checks(Path(tmp) / "checks")
        bench_view(Path(tmp) / "view")


if __name__ == "__main__":
    main()
