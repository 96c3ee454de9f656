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
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.config import load_settings  # noqa: E402
from services.http import HttpOptions  # noqa: E402
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


def poll_cost(provider: Any, ptids: list[str]) -> float:
    """CPU seconds per poll call, the provider's connection warmed up first."""
    provider.poll(ptids[0])
    c0 = time.process_time()
    for ptid in ptids:
        provider.poll(ptid)
    return (time.process_time() - c0) / len(ptids)


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
    load_start = os.getloadavg()[0]
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
        # Created evenly over one interval, each tracked a random moment (up to one interval)
        # after its creation, so when a task succeeds and when it is polled are unrelated.
        rng = random.Random(7)
        t0 = time.monotonic()
        plan = sorted(
            [(i * interval / n, "create", i) for i in range(n)]
            + [(i * interval / n + rng.uniform(0, interval), "track", i) for i in range(n)]
        )
        made: dict[int, str] = {}
        ids: dict[str, str] = {}  # provider task id -> our task id
        for at, what, i in plan:
            pause = t0 + at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if what == "create":
                made[i] = client.post(control, json={"action": "add_task"}).json()["task_id"]
            else:
                ids[made[i]] = studio.track("runway", made[i]).id
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
        # Context for the CPU figure, measured right after it: the provider's own poll call
        # (HTTP client and parsing) alone, with the monitor paused.
        monitor.stop()
        poll_cpu = poll_cost(studio.provider("runway"), list(ids)[:300])
        # Baseline: the same provider over httpx's own transport (httpcore + h11).
        baseline = type(studio.provider("runway"))(
            settings, http=HttpOptions(transport=httpx.HTTPTransport())
        )
        poll_cpu_httpx = poll_cost(baseline, list(ids)[:300])
        baseline.close()
        monitor = Monitor(studio, interval_scale=scale).start()

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

        # Context for the download figure: one result download alone.
        sample = list(ids)[:20]
        from services.archive import fetch_result

        one = []
        for ptid in sample:
            t = time.perf_counter()
            fetch_result(f"{info['url']}/files/{ptid}.mp4", f"solo-{ptid}", settings)
            one.append(time.perf_counter() - t)
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
        f"({datetime.now(UTC):%Y-%m-%d}; load average {load_start:.1f} -> "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(f"  {'tasks in flight during the window':<52} {in_flight:>22}")
    print(f"  {'tasks created and tracked over':<52} {created_in:>20.1f} s")
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
    rate = n / interval
    print(
        f"  {'  of which the provider poll call alone (HTTP+parse)':<52} "
        f"{poll_cpu * 1000:>10.2f} ms/poll = {100 * poll_cpu * rate:.1f} %"
    )
    print(
        f"  {'  the same call over httpx own transport (baseline)':<52} "
        f"{poll_cpu_httpx * 1000:>10.2f} ms/poll = {poll_cpu_httpx / poll_cpu:.2f}x"
    )
    own = cpu / 100 / rate - poll_cpu
    print(
        f"  {'  and the monitor itself (claims, writes, threads)':<52} "
        f"{own * 1000:>10.2f} ms/poll = {100 * own * rate:.1f} %"
    )
    line(
        "success -> noticed (<= interval; median / p95 / max)",
        f"{statistics.median(noticed):.2f} / {pct(noticed, 0.95):.2f} / {max(noticed):.2f} s",
        max(noticed) <= interval * 1.05,
    )
    print(
        f"  {'noticed -> archived: queue + download (median / max)':<52} "
        f"{statistics.median(archived):>10.3f} / {max(archived):.3f} s"
    )
    solo = statistics.median(one) * 1000
    print(f"  {'one result download alone (median of 20)':<52} {solo:>19.0f} ms")
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
