"""Provider layer costs, as figures (never asserted): what one poll costs the caller's CPU,
and how many polls a loopback emulator answers per second with 1,000 tasks in flight.

The emulator runs in its own process (as in the CLI and browser tests), so the CPU figure is
the provider client's alone — the number the monitor's CPU budget is made of.

    .venv/bin/python bench/bench_providers.py [--tasks 1000] [--threads 1 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.config import load_settings  # noqa: E402
from services.http import HttpOptions  # noqa: E402
from services.providers.registry import provider_class  # noqa: E402


def bench(pid: str, tasks: int, threads: int) -> dict[str, float | str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators", pid, "--polls-to-finish", "1000000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        with httpx.Client(base_url=info["url"]) as control:
            ids = [
                control.post("/_control", json={"action": "add_task"}).json()["task_id"]
                for _ in range(tasks)
            ]
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(env={**info["env"], "REENACT_DATA_DIR": tmp}, secrets={})
            provider = provider_class(pid)(settings, http=HttpOptions())  # type: ignore[call-arg]
            provider.poll(ids[0])  # connect, TLS context, imports: not part of the steady state
            cpu0, wall0 = time.process_time(), time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                statuses = list(pool.map(lambda t: provider.poll(t).status, ids))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            provider.close()
        assert len(statuses) == tasks
        return {
            "provider": pid,
            "polls": tasks,
            "threads": threads,
            "wall_s": round(wall, 3),
            "polls_per_s": round(tasks / wall),
            "client_cpu_ms_per_poll": round(cpu / tasks * 1000, 3),
            # At one poll per task per 5 s, 1,000 tasks make 200 polls/s:
            "client_cpu_pct_of_core_at_200_polls_per_s": round(cpu / tasks * 200 * 100, 1),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    for threads in args.threads:
        for pid in ("cometapi", "liangxin", "runway", "makevid"):
            print(json.dumps(bench(pid, args.tasks, threads)), flush=True)


if __name__ == "__main__":
    main()
