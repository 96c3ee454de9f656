"""Monitor replicas on one PostgreSQL: in-flight tasks shared by several monitor processes
against the loopback Runway emulator at a 5 s interval.

Prints
  * requests per task per interval over all replicas (must be <= 1) and the shortest gap
    between two polls of one task, whichever replica made them (must be >= the interval);
  * each replica's CPU, as % of one core, over several intervals (must be <= 5 %), and the
    PostgreSQL server's (all its processes) for context;
  * the time from the provider's success to a replica noticing it (<= one interval) and to
    the archived file.

PostgreSQL is a real server from Debian's binaries in a temporary folder on 127.0.0.1
(tests/pg.py), fsync on as a deployment runs it. The emulator and each replica run in their
own processes; a replica is exactly what an app replica's lifespan starts (Studio + Monitor
on `REENACT_DATABASE_URL`), all sharing one data folder. Tasks are created and tracked from
this process, which runs no monitor.

    .venv/bin/python bench/bench_replicas.py [--tasks 1000] [--replicas 3] [--interval 5]
"""

from __future__ import annotations

import argparse
import itertools
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

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_monitor import pct, start_emulator  # noqa: E402
from services.config import load_settings  # noqa: E402
from services.models import TaskStatus  # noqa: E402
from services.studio import Studio  # noqa: E402
from tests import pg  # noqa: E402

REPLICA = """
import sys, threading
from services.config import load_settings
from services.monitor import Monitor
from services.studio import Studio
monitor = Monitor(Studio(load_settings()), interval_scale=float(sys.argv[1])).start()
print("ready", flush=True)
threading.Event().wait()
"""
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def server_pids(root: Path) -> list[int]:
    """The PostgreSQL postmaster and its children (backends, writer, WAL writer…)."""
    postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == postmaster:
            pids.append(int(stat.parent.name))
    return pids


def server_cpu(root: Path) -> float:
    total = 0.0
    for pid in server_pids(root):
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue  # a backend that ended meanwhile
    return total


def run(args: argparse.Namespace, root: Path, data_dir: Path) -> int:
    n, interval, windows = args.tasks, args.interval, args.windows
    load_start = os.getloadavg()[0]
    server = pg.start_server(root, durable=True)
    url = server.new_database()
    emu, info = start_emulator(24 * 3600.0)
    control = f"{info['url']}/_control"
    own_env = {k: v for k, v in os.environ.items() if not k.startswith("REENACT_")}
    env = {
        **info["env"],
        "REENACT_DATA_DIR": str(data_dir),
        "REENACT_DATABASE_URL": url,
    }
    studio = Studio(load_settings(env=env, secrets={}))  # migrates the new database
    scale = interval / studio.provider("runway").capabilities().poll_interval_s
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, str(scale)],
            cwd=ROOT,
            env={**own_env, **env},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(args.replicas)
    ]
    client = httpx.Client(timeout=30)
    try:
        for proc in replicas:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                print("a replica did not start", file=sys.stderr)
                return 1
        print(
            f"{args.replicas} replicas up; creating {n} tasks over {interval:g} s ...", flush=True
        )
        # As bench_monitor.py: created evenly over one interval, each tracked a random moment
        # (up to one interval) later, so success and polls are unrelated.
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
        cpu0 = [cpu_seconds(p.pid) for p in replicas]
        db0, wall0 = server_cpu(root), time.monotonic()
        time.sleep(windows * interval)
        cpu1 = [cpu_seconds(p.pid) for p in replicas]
        db1, wall1 = server_cpu(root), time.monotonic()
        polls1 = client.get(control).json()["polls"]
        in_flight = studio.store.count_tasks(status=[TaskStatus.QUEUED, TaskStatus.RUNNING])
        span = wall1 - wall0
        per_task = (polls1 - polls0) / (n * windows)
        cpus = [100 * (b - a) / span for a, b in zip(cpu0, cpu1, strict=True)]
        db_cpu = 100 * (db1 - db0) / span

        finish_s = time.monotonic() - t0 + interval
        client.post(control, json={"action": "configure", "seconds_to_finish": finish_s})
        print("waiting for every task to succeed and be archived ...", flush=True)
        deadline = time.monotonic() + created_in + 20 * interval
        while studio.store.count_tasks(status=TaskStatus.SUCCEEDED) < n or any(
            t.result_path is None for t in studio.store.get_tasks(list(ids.values()))
        ):
            if time.monotonic() > deadline:
                print("gave up waiting for the archive", file=sys.stderr)
                return 1
            time.sleep(0.5)

        wall_minus_mono = time.time() - time.monotonic()  # the emulator's clock is ours
        gaps, all_gaps, noticed, total = [], [], [], []
        archived_once = 0
        for ptid, tid in ids.items():
            state = client.get(f"{control}/tasks/{ptid}").json()
            times = state["request_times"]
            all_gaps += [b - a for a, b in itertools.pairwise(times)]
            gaps += [b - a for a, b in itertools.pairwise(t for t in times if wall0 <= t <= wall1)]
            success_at = state["created"] + finish_s + wall_minus_mono
            events = studio.store.events(tid)
            ok_at = next(e.at for e in events if e.message.startswith("Succeeded"))
            done = [e.at for e in events if e.message.startswith("Result archived")]
            archived_once += len(done) == 1
            noticed.append(ok_at.timestamp() - success_at)
            total.append(done[0].timestamp() - success_at)
    finally:
        client.close()
        for proc in replicas:
            proc.terminate()
        for proc in replicas:
            proc.wait(10)
        studio.close()
        emu.terminate()
        emu.wait(10)
        pg.stop_server(root)

    ok = True

    def line(label: str, value: str, good: bool | None = None) -> None:
        nonlocal ok
        ok &= good is not False
        verdict = "" if good is None else "ok" if good else "OVER BUDGET"
        print(f"  {label:<56} {value:>24}  {verdict}")

    print(
        f"\n{args.replicas} monitor replicas on one PostgreSQL, {n} in-flight tasks, interval "
        f"{interval:g} s, runway emulator ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load "
        f"average {load_start:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    line("tasks in flight during the window", f"{in_flight}")
    line("tasks created and tracked over", f"{created_in:.1f} s")
    line("requests per task per interval, all replicas (<= 1)", f"{per_task:.3f}", per_task <= 1)
    line(
        "shortest gap between two polls of a task (>= interval)",
        f"{min(gaps, default=interval):.2f} s (whole run {min(all_gaps):.2f})",
        min(all_gaps) >= interval * 0.99,
    )
    for i, cpu in enumerate(cpus):
        line(
            f"replica {i + 1} CPU over {windows} intervals (<= 5 % of a core)",
            f"{cpu:.1f} %",
            cpu <= 5,
        )
    line("PostgreSQL server CPU, all its processes", f"{db_cpu:.1f} %")
    line(
        "success -> noticed (<= interval; median / p95 / max)",
        f"{statistics.median(noticed):.2f} / {pct(noticed, 0.95):.2f} / {max(noticed):.2f} s",
        max(noticed) <= interval * 1.05,
    )
    line(
        "success -> archived (median / p95 / max)",
        f"{statistics.median(total):.2f} / {pct(total, 0.95):.2f} / {max(total):.2f} s",
    )
    line("tasks archived exactly once", f"{archived_once} of {n}", archived_once == n)
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--windows", type=int, default=4, help="intervals of CPU measurement")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-replicas-pg-"))  # the server's user owns it
    data_dir = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    try:
        return run(args, root, data_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
