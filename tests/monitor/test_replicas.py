"""Three app-monitor processes on one PostgreSQL database, one SIGKILLed mid-run: every
task is followed to its end and archived, none polled sooner than its interval, nothing
lost (the killed replica's claims run out and the others take them over)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

from services.models import TaskStatus
from tests.cli.support import wait_for
from tests.emulators import CometApiEmulator, RunwayEmulator

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.05  # Runway's 6 s interval → 0.3 s, CometAPI's 5 s → 0.25 s
TASKS_PER_PROVIDER = 60

REPLICA = """
import sys, threading
from services.config import load_settings
from services.monitor import Monitor
from services.studio import Studio
monitor = Monitor(Studio(load_settings()), interval_scale=float(sys.argv[1])).start()
print("ready", flush=True)
threading.Event().wait()
"""


def test_three_replicas_one_killed_lose_nothing(
    make_studio,
    pg_url: str,
    tmp_path: Path,
    runway_emulator: RunwayEmulator,
    cometapi_emulator: CometApiEmulator,
) -> None:
    for emu in (runway_emulator, cometapi_emulator):
        emu.configure(queued_polls=2, polls_to_finish=8)
    studio = make_studio(runway_emulator, cometapi_emulator, database_url=pg_url)
    tracked: dict[str, tuple[RunwayEmulator | CometApiEmulator, str]] = {}
    for pid, emu in (("runway", runway_emulator), ("cometapi", cometapi_emulator)):
        for _ in range(TASKS_PER_PROVIDER):
            ptid = emu.add_task()
            tracked[studio.track(pid, ptid).id] = (emu, ptid)
    env = {
        **os.environ,
        "REENACT_DATA_DIR": str(tmp_path / "data"),
        "REENACT_DATABASE_URL": pg_url,
        "REENACT_ALLOW_PRIVATE_URLS": "1",
        **runway_emulator.env(),
        **cometapi_emulator.env(),
    }
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, str(SCALE)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for proc in replicas:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        # Mid-run: some tasks polled at least twice, none finished yet.
        wait_for(
            lambda: sum(c >= 2 for c in runway_emulator.poll_counts().values()) >= 10,
            timeout=30,
            what="polling under way",
        )
        replicas[0].send_signal(signal.SIGKILL)
        replicas[0].wait(10)
        wait_for(
            lambda: all(t.result_path for t in studio.store.get_tasks(list(tracked))),
            timeout=45,
            what="every task archived by the two replicas left",
        )
    finally:
        for proc in replicas:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert runway_emulator.stats()["creates"] == cometapi_emulator.stats()["creates"] == 0
    interval = {"runway": 6.0 * SCALE, "cometapi": 5.0 * SCALE}
    for task in studio.store.get_tasks(list(tracked)):
        emu, ptid = tracked[task.id]
        assert task.status is TaskStatus.SUCCEEDED and task.result_path, task
        times = emu.poll_times(ptid)
        # Each step once: as many polls as the emulator needs, none sooner than the interval.
        assert len(times) == 8, (task.id, len(times))
        assert min(b - a for a, b in pairwise(times)) >= interval[task.provider] * 0.999
        messages = [e.message for e in studio.store.events(task.id)]
        assert sum(m.startswith("Result archived") for m in messages) == 1, messages
