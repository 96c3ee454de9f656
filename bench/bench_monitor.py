"""Monitor benchmark: 1,000 in-flight tasks against a loopback emulator at a 5 s interval.

Prints
  * requests per task per interval (must be <= 1) and the shortest gap between two polls
    of one task;
  * the monitor process's CPU, as % of one core, over several intervals (must be <= 10 %);
  * the time from the provider's success to the archived file (must be <= one interval plus
    the download), split into "noticed" and "archived";
  * `reenact providers` start-up time, median of 10 runs (must be <= 300 ms).

The emulator runs in its own process so its CPU is not counted; the monitor runs here, in
its background thread, exactly as the app's lifespan starts it.

    .venv/bin/python bench/bench_monitor.py [--tasks 1000] [--interval 5] [--windows 4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.config import load_settings  # noqa: E402
from services.models import TaskStatus  # noqa: E402
from services.monitor import Monitor  # noqa: E402
from services.studio import Studio  # noqa: E402


def start_emulator(finish_s: float) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.emulators",
            "runway",
            "--seconds-to-finish",
            str(finish_s),
            "--queued-seconds",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def providers_startup(runs: int = 10) -> list[float]:
    script = shutil.which("reenact", path=str(Path(sys.executable).parent))
    assert script, "install the package first: .venv/bin/pip install -e ."
    env = {k: v for k, v in os.environ.items() if not k.startswith("REENACT_")}
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([script, "providers"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return times


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--windows", type=int, default=4, help="intervals of CPU measurement")
    args = ap.parse_args()
    n, interval = args.tasks, args.interval
    # Tasks stay in flight through creation, warm-up and the measured window; then the
    # emulator is told to finish them, spread over one interval like their creation.
    emu, info = start_emulator(24 * 3600.0)
    control = f"{info['url']}/_control"
    data_dir = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    settings = load_settings(env={**info["env"], "REENACT_DATA_DIR": str(data_dir)}, secrets={})
    studio = Studio(settings)
    scale = interval / studio.provider("runway").capabilities().poll_interval_s
    monitor = Monitor(studio, interval_scale=scale).start()
    client = httpx.Client(timeout=30)
    try:
        print(f"creating {n} tasks over one {interval:g} s interval ...", flush=True)
        t0 = time.monotonic()
        ids: dict[str, str] = {}  # provider task id -> our task id
        for i in range(n):
            ptid = client.post(control, json={"action": "add_task"}).json()["task_id"]
            ids[ptid] = studio.track("runway", ptid).id
            pause = t0 + (i + 1) * interval / n - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        created_in = time.monotonic() - t0
        time.sleep(interval)  # warm-up: one full interval of polls before measuring

        polls0 = client.get(control).json()["polls"]
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(args.windows * interval)
        cpu1, wall1 = time.process_time(), time.monotonic()
        polls1 = client.get(control).json()["polls"]
        in_flight = studio.store.count_tasks(status=[TaskStatus.QUEUED, TaskStatus.RUNNING])

        per_task = (polls1 - polls0) / (n * args.windows)
        cpu = 100 * (cpu1 - cpu0) / (wall1 - wall0)

        # Finish every task one interval from now (in creation order, over `created_in`).
        finish_s = time.monotonic() - t0 + interval
        client.post(control, json={"action": "configure", "seconds_to_finish": finish_s})
        print("waiting for every task to succeed and be archived ...", flush=True)
        deadline = time.monotonic() + created_in + 20 * interval
        while studio.store.count_tasks(status=TaskStatus.SUCCEEDED) < n or any(
            t.result_path is None for t in studio.store.list_tasks(limit=n)
        ):
            if time.monotonic() > deadline:
                print("gave up waiting for the archive", file=sys.stderr)
                return 1
            time.sleep(0.25)

        # Clocks: the emulator's time.monotonic() is the same system clock as ours.
        wall_minus_mono = time.time() - time.monotonic()
        gaps, noticed, archived, total = [], [], [], []
        for ptid, tid in ids.items():
            state = client.get(f"{control}/tasks/{ptid}").json()
            times = [t for t in state["request_times"] if wall0 <= t <= wall1]
            gaps += [b - a for a, b in itertools.pairwise(times)]
            success_at = state["created"] + finish_s + wall_minus_mono
            events = {
                e.message.split(";")[0].split(" to ")[0]: e.at.timestamp()
                for e in studio.store.events(tid)
            }
            ok_at, done_at = events["Succeeded"], events["Result archived"]
            noticed.append(ok_at - success_at)
            archived.append(done_at - ok_at)
            total.append(done_at - success_at)
    finally:
        monitor.stop()
        studio.close()
        client.close()
        emu.terminate()
        emu.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)

    startup = providers_startup()
    ok = True

    def line(label: str, value: str, good: bool) -> None:
        nonlocal ok
        ok &= good
        print(f"  {label:<52} {value:>22}  {'ok' if good else 'OVER BUDGET'}")

    print(
        f"\nmonitor, {n} in-flight tasks, interval {interval:g} s, runway emulator "
        f"({datetime.now(UTC):%Y-%m-%d})"
    )
    print(f"  {'tasks in flight during the window':<52} {in_flight:>22}")
    print(f"  {'tasks created (and tracked) over':<52} {created_in:>20.1f} s")
    line("requests per task per interval (<= 1)", f"{per_task:.3f}", per_task <= 1.0)
    line(
        "shortest gap between two polls of a task (>= interval)",
        f"{min(gaps):.2f} s",
        min(gaps) >= interval * 0.99,
    )
    line(
        f"monitor CPU over {args.windows} intervals (<= 10 % of a core)",
        f"{cpu:.1f} %",
        cpu <= 10.0,
    )
    print(
        f"  {'success -> noticed (median / p95 / max)':<52} "
        f"{statistics.median(noticed):>6.2f} / {pct(noticed, 0.95):.2f} / {max(noticed):.2f} s"
    )
    print(
        f"  {'noticed -> archived = the download (median / max)':<52} "
        f"{statistics.median(archived):>10.3f} / {max(archived):.3f} s"
    )
    worst = max(t - a for t, a in zip(total, archived, strict=True))
    line(
        "success -> archived, minus its download (<= interval)",
        f"{worst:.2f} s max",
        worst <= interval * 1.05,
    )
    print(
        f"  {'success -> archived (median / p95 / max)':<52} "
        f"{statistics.median(total):>6.2f} / {pct(total, 0.95):.2f} / {max(total):.2f} s"
    )
    med = statistics.median(startup) * 1000
    line(
        "`reenact providers` start-up, median of 10 (<= 300 ms)",
        f"{med:.0f} ms (min {min(startup) * 1000:.0f})",
        med <= 300,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
