"""Monitor replicas on one PostgreSQL: in-flight tasks shared by several monitor processes
against the loopback Runway emulator at a 5 s interval.

Prints
  * requests per task per interval over all replicas (must be <= 1) and the shortest gap
    between two polls of one task, whichever replica made them (must be >= the interval);
  * each replica's CPU, as % of one core, over several intervals (must be <= 5 %), and the
    PostgreSQL server's (all its processes) for context;
  * the time from the provider's success to a replica noticing it (<= one interval) and to
    the archived file; the CPU of the replicas, PostgreSQL and the emulator from the finish
    to the last archive, per archived result;
  * with --profile, where the archive's time goes inside the replicas (wall and own-thread
    CPU per call of each phase: download, sound check, writes, analysis, monitor passes).

PostgreSQL is a real server from Debian's binaries in a temporary folder on 127.0.0.1
(tests/pg.py), fsync on as a deployment runs it. The emulator and each replica run in their
own processes; a replica is exactly what an app replica's lifespan starts (Studio + Monitor
on `REENACT_DATABASE_URL`), all sharing one data folder. Tasks are created and tracked from
this process, which runs no monitor.

    .venv/bin/python bench/bench_replicas.py [--tasks 1000] [--replicas 3] [--interval 5]
        [--profile]
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
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

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
if sys.argv[2] == "profile":
    from bench.bench_replicas import profile_phases
    profile_phases()
monitor = Monitor(Studio(load_settings()), interval_scale=float(sys.argv[1])).start()
print("ready", flush=True)
threading.Event().wait()
"""
# What --profile times inside each replica: (module, attribute) -> phase name. Each is
# wrapped to add its wall and its own thread's CPU time; os.fsync counts the archive's
# flushes wherever they happen.
PHASES = {
    ("services.monitor", "Monitor._archive"): "archive, whole (one by one, before)",
    ("services.monitor", "Monitor._archive_outcome"): "archive one result, write aside",
    ("services.monitor", "Monitor._archive_batch"): "a batch of archives, its write",
    ("services.archive", "fetch_result"): "download (HTTP, .part, fsync, rename)",
    ("services.archive", "add_sound"): "sound check (remux decision)",
    ("services.monitor", "Monitor._keep_in_bucket"): "bucket upload",
    ("services.compare.analysis", "analyze"): "analysis (probe + 2 writes)",
    ("services.monitor", "Monitor.tick"): "monitor pass (claim, polls, writes)",
    ("services.store", "Store.apply"): "one change written (Store.apply)",
    ("services.store", "Store.apply_changes"): "changes written in a batch",
    ("services.store", "Store.get_pref"): "a preference read",
    ("os", "fsync"): "fsync",
}
TICK = os.sysconf("SC_CLK_TCK")


def profile_phases() -> None:
    """Wrap PHASES (in a replica) and print their totals as one JSON line on SIGTERM."""
    import functools
    import importlib
    import json
    import signal
    import threading

    totals: dict[str, list[float]] = {name: [0, 0.0, 0.0] for name in PHASES.values()}
    lock = threading.Lock()

    def timed(fn: Any, name: str) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                row = totals[name]
                with lock:
                    row[0] += 1
                    row[1] += time.perf_counter() - wall
                    row[2] += time.thread_time() - cpu

        return wrapper

    for (module, attr), name in PHASES.items():
        owner: Any = importlib.import_module(module)
        *path, last = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, last):  # (the code before and after a change has different parts)
            setattr(owner, last, timed(getattr(owner, last), name))

    def on_term(*_: Any) -> None:
        print(json.dumps({"profile": totals}), flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)


def cpu_seconds(pid: int, *, ended_children: bool = False) -> float:
    """User + system CPU of a process, all its threads (and its children that ended)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if ended_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


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
    """The server's CPU so far: its processes, and the backends that ended (the postmaster
    collects theirs)."""
    total = 0.0
    for i, pid in enumerate(server_pids(root)):
        try:
            total += cpu_seconds(pid, ended_children=i == 0)
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
            [sys.executable, "-c", REPLICA, str(scale), "profile" if args.profile else "-"],
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
        # The provider's tasks are created evenly over one interval (a few threads keep the
        # pace on a busy machine), then tracked here in random order, so success (a fixed time
        # after each creation) and the poll schedule (from each tracking) are unrelated, and
        # the successes come as one burst an interval wide however slowly tracking goes.
        t0 = time.monotonic()

        def create(i: int) -> str:
            pause = t0 + i * interval / n - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            return str(client.post(control, json={"action": "add_task"}).json()["task_id"])

        with ThreadPoolExecutor(8) as pool:
            made = list(pool.map(create, range(n)))
        burst_s = time.monotonic() - t0
        random.Random(7).shuffle(made)
        ids = {ptid: studio.track("runway", ptid).id for ptid in made}  # provider id -> ours
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
        burst_cpu0 = [cpu_seconds(p.pid) for p in [*replicas, emu]]
        burst_db0, burst_wall0 = server_cpu(root), time.monotonic()
        deadline = time.monotonic() + created_in + 20 * interval
        # One count a second: loading every row to look (what this did before) took a core
        # of its own from the replicas it measures.
        archived_sql = text("SELECT count(*) FROM tasks WHERE result_path IS NOT NULL")
        bench_cpu0 = time.process_time()
        while True:
            with studio.store.engine.connect() as conn:
                if conn.scalar(archived_sql) == n:
                    break
            if time.monotonic() > deadline:
                print("gave up waiting for the archive", file=sys.stderr)
                return 1
            time.sleep(0.5)
        bench_cpu = time.process_time() - bench_cpu0

        *burst_cpu, emu_cpu = [
            cpu_seconds(p.pid) - c for p, c in zip([*replicas, emu], burst_cpu0, strict=True)
        ]
        burst_db, burst_wall = server_cpu(root) - burst_db0, time.monotonic() - burst_wall0
        analyses = studio.store.analyses(list(ids.values())).values()
        measured = sum(a.state != "running" for a in analyses)  # while the burst was archived
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
        profiles = []
        for proc in replicas:
            out, _ = proc.communicate(timeout=10)
            profiles += [json.loads(x)["profile"] for x in out.splitlines() if '"profile"' in x]
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
    line("provider tasks created (so successes come) over", f"{burst_s:.1f} s")
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
    print(
        f"  from the finish to the last archive ({burst_wall:.1f} s): replica CPU "
        + " / ".join(f"{100 * c / burst_wall:.0f}" for c in burst_cpu)
        + f" % of a core, PostgreSQL {100 * burst_db / burst_wall:.0f} %, emulator "
        f"{100 * emu_cpu / burst_wall:.0f} %; per archived result: replicas "
        f"{1000 * sum(burst_cpu) / n:.2f} ms, PostgreSQL {1000 * burst_db / n:.2f} ms, "
        f"emulator {1000 * emu_cpu / n:.2f} ms CPU (polling included); this bench "
        f"{100 * bench_cpu / burst_wall:.0f} %; results measured "
        f"(analysis) by then: {measured}"
    )
    if profiles:
        print(f"\n  where the time goes, {len(profiles)} replicas summed (calls, per call):")
        for name in PHASES.values():
            calls = sum(p[name][0] for p in profiles if name in p)
            if calls:
                wall = sum(p[name][1] for p in profiles) / calls
                cpu = sum(p[name][2] for p in profiles) / calls
                print(
                    f"    {name:<40} {calls:>7} calls  wall {1000 * wall:7.2f} ms"
                    f"  CPU {1000 * cpu:6.2f} ms  (total CPU {cpu * calls:6.1f} s)"
                )
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--windows", type=int, default=4, help="intervals of CPU measurement")
    ap.add_argument(
        "--profile", action="store_true", help="time the archive's phases inside each replica"
    )
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
