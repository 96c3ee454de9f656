"""The deployment of issue 14 at scale, on real parts only: one PostgreSQL (tests/pg.py) and one
S3 bucket (moto's server, tests/s3.py) on 127.0.0.1; three app-monitor processes (a Runtime
with its monitor started, as the app server's lifespan does), two `reenact batch --wait`
processes sending 300 tasks across the Runway and CometAPI emulators and the local engine,
and two `reenact worker` processes rendering the local ones. One replica and one worker are
SIGKILLed mid-run (the worker while it holds a job). Nothing may be lost or done twice: every
task succeeds and is archived once, in the bucket; the emulators see one create per task
sent and no poll of a task sooner than its interval after the one before; every local job is
rendered to the end, the killed worker's by the other one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import select

from services.config import load_settings
from services.models import TaskStatus, utcnow
from services.storage import bucket_for
from services.store import RenderJobRow, Store
from tests.cli.support import reenact_script, wait_for
from tests.emulators import CometApiEmulator, RunwayEmulator
from tests.mediagen import make_image, make_video
from tests.s3 import S3Server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Runway's 6 s interval → 0.3 s, CometAPI's 5 s → 0.25 s, the local engine's 1 s → 0.05 s;
# a dead replica's poll leases run out after the floor of 5 s.
SCALE = 0.05
BATCHES = 2
# Per batch: rows sent to Runway and CometAPI together (a comparison each), and rows for the
# local engine, interleaved so the workers render while the emulators' tasks run.
EMULATOR_ROWS = 60
LOCAL_ROWS = 30
TOTAL = BATCHES * (2 * EMULATOR_ROWS + LOCAL_ROWS)  # 300
WORKER_LEASE = "3"  # seconds; a dead worker on this host loses its job at once anyway

REPLICA = """
import threading
from services.runtime import Runtime
Runtime().monitor.start()
print("ready", flush=True)
threading.Event().wait()
"""


class Procs:
    """The processes a test starts, each logging to its own file; all stopped at the end."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.started: list[subprocess.Popen[str]] = []
        self.logs: dict[int, Path] = {}

    def start(self, name: str, argv: list[str], **extra: str) -> subprocess.Popen[str]:
        data = self.folder / name
        log = self.folder / f"{name}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**self.env, "REENACT_DATA_DIR": str(data), **extra},
                stdout=subprocess.PIPE if name.startswith("replica") else out,
                stderr=out,
                text=True,
            )
        self.started.append(proc)
        self.logs[proc.pid] = log
        return proc

    def log(self, proc: subprocess.Popen[str]) -> str:
        return self.logs[proc.pid].read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            stream: IO[str] | None = proc.stdout
            if stream is not None:
                stream.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    made = Procs(tmp_path, {})
    yield made
    made.stop()


def _batch_csvs(folder: Path) -> list[Path]:
    """One CSV per batch, each in its own folder (so the two batches' keys differ) with its
    own copies of the same three files (so the bucket holds each input once)."""
    media = folder / "media"
    # Runway wants at least 3 s of performance; the local engine's clip is 160×90, 1 s.
    make_video(media / "drive.mp4", size=(160, 90), seconds=3.0, fps=8, audio=True)
    make_video(media / "local.mp4", size=(160, 90), seconds=1.0, fps=8, audio=True)
    make_image(media / "char.png", size=(160, 90), face_scale=1.0)
    out = []
    for b in range(BATCHES):
        here = folder / f"batch-{b}"
        here.mkdir()
        for f in media.iterdir():
            (here / f.name).write_bytes(f.read_bytes())
        rows = ["video,image,providers"]
        emulator, local = EMULATOR_ROWS, LOCAL_ROWS
        while emulator or local:
            if local and (not emulator or len(rows) % 3 == 0):
                rows.append("local.mp4,char.png,local")
                local -= 1
            else:
                rows.append("drive.mp4,char.png,runway;cometapi")
                emulator -= 1
        csv = here / "rows.csv"
        csv.write_text("\n".join(rows) + "\n")
        out.append(csv)
    return out


def _jobs(store: Store) -> list[RenderJobRow]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(RenderJobRow)).all())  # type: ignore[arg-type]


def _jobs_held(store: Store, pid: int) -> list[str]:
    """Render jobs being rendered under a lease that names this process."""
    return [
        j.id
        for j in _jobs(store)
        if j.status == TaskStatus.RUNNING.value and f"/{pid}/" in (j.lease_owner or "")
    ]


def _polls_held(store: Store, pid: int) -> list[str]:
    """Tasks this process has claimed to poll and not written back yet."""
    now = utcnow()
    return [
        t.id
        for t in store.active_tasks()
        if t.status.pollable
        and f"/{pid}/" in (t.lease_owner or "")
        and t.lease_until is not None
        and t.lease_until > now
    ]


def _kill_holding(
    proc: subprocess.Popen[str], held: Callable[[int], list[str]], what: str
) -> list[str]:
    """SIGKILL `proc` while it holds what `held` lists: it is stopped (SIGSTOP) first, so what
    it holds cannot change between the look and the kill; let go again if it held nothing."""
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, f"{what} never held anything to take over"
        wait_for(lambda: held(proc.pid), timeout=60, what=what)
        proc.send_signal(signal.SIGSTOP)
        found = held(proc.pid)
        if found:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            return found
        proc.send_signal(signal.SIGCONT)


def test_three_replicas_two_workers_300_tasks_one_of_each_killed_lose_nothing(
    procs: Procs,
    tmp_path: Path,
    pg_url: str,
    s3_server: S3Server,
    runway_emulator: RunwayEmulator,
    cometapi_emulator: CometApiEmulator,
) -> None:
    started = time.monotonic()
    runway_emulator.configure(queued_polls=1, polls_to_finish=4)
    # CometAPI fetches both presigned links at every create (HEAD, then GET), as a real
    # URL-only provider does.
    cometapi_emulator.configure(queued_polls=1, polls_to_finish=4, fetch_inputs=True)
    csvs = _batch_csvs(tmp_path)
    procs.env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("REENACT_", "RUNWAYML_"))},
        "REENACT_DATABASE_URL": pg_url,
        "REENACT_RENDER_WORKERS": "external",
        "REENACT_POLL_SCALE": str(SCALE),
        "REENACT_ALLOW_PRIVATE_URLS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
        **s3_server.env(),
        **runway_emulator.env(),
        **cometapi_emulator.env(),
    }
    settings = load_settings(env={**procs.env, "REENACT_DATA_DIR": str(tmp_path / "t")}, secrets={})
    store = Store.open(settings)  # also brings the new database to the newest schema
    bucket = bucket_for(settings)
    assert bucket is not None

    replicas = [procs.start(f"replica-{i}", [sys.executable, "-c", REPLICA]) for i in range(3)]
    for proc in replicas:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", procs.log(
            proc
        )
    workers = [
        procs.start(
            f"worker-{i}",
            [sys.executable, "-m", "services.cli", "worker", "--lease", WORKER_LEASE],
        )
        for i in range(2)
    ]
    batches = [
        procs.start(f"batch-{b}", [reenact_script(), "batch", str(csv), "--yes", "--wait"])
        for b, csv in enumerate(csvs)
    ]

    # Mid-run: tasks polled twice or more at Runway, most not created yet or not finished.
    wait_for(
        lambda: sum(c >= 2 for c in runway_emulator.poll_counts().values()) >= 20,
        timeout=60,
        what="polling under way",
    )
    # One replica is killed holding poll leases, which the others take once they run out.
    polls_held = _kill_holding(replicas[0], lambda pid: _polls_held(store, pid), "replica-0")
    killed_at = runway_emulator.stats()
    # One worker is killed mid-render; the other renders that job again from the start.
    victim, survivor = workers
    held = _kill_holding(victim, lambda pid: _jobs_held(store, pid), "worker-0")

    for proc in batches:
        proc.wait(150)
    elapsed = time.monotonic() - started
    for proc in batches:
        assert proc.returncode == 0, procs.log(proc)

    # 0 lost: every task succeeded and its result is archived, in the bucket too.
    tasks = store.list_tasks(limit=10 * TOTAL)
    assert len(tasks) == TOTAL
    sent = Counter(t.provider for t in tasks)
    per_emulator = BATCHES * EMULATOR_ROWS
    assert sent == {"runway": per_emulator, "cometapi": per_emulator, "local": BATCHES * LOCAL_ROWS}
    keys = set(s3_server.keys("studio/results/"))
    for task in tasks:
        assert task.status is TaskStatus.SUCCEEDED, (task.id, task.provider, task.error)
        assert task.result_path, task
        assert bucket.result_key(task.id, "result.mp4") in keys, task.id
        messages = [e.message for e in store.events(task.id)]
        assert sum(m.startswith("Result archived") for m in messages) == 1, messages

    # CometAPI's inputs leave the bucket once its last task has ended (the one-second clip
    # and the image stay: local jobs put their inputs there for workers on other machines).
    wait_for(
        lambda: not [k for k in s3_server.keys("studio/inputs/") if k.endswith("/drive.mp4")],
        timeout=15,
        what="the driving clip deleted from the bucket",
    )

    # 0 duplicate creates: each emulator was asked to create exactly the tasks sent to it.
    assert runway_emulator.stats()["creates"] == sent["runway"]
    assert cometapi_emulator.stats()["creates"] == sent["cometapi"]
    assert len({(t.provider, t.provider_task_id) for t in tasks}) == TOTAL

    # 0 polls closer than the interval, across every process that polled.
    emulators = {"runway": runway_emulator, "cometapi": cometapi_emulator}
    interval = {"runway": 6.0 * SCALE, "cometapi": 5.0 * SCALE}
    closest: dict[str, float] = {}
    for task in tasks:
        emu = emulators.get(task.provider)
        if emu is None:
            continue
        assert task.provider_task_id is not None
        times = emu.poll_times(task.provider_task_id)
        assert len(times) >= 4, (task.id, len(times))  # as many as the lifecycle needs
        gap = min(b - a for a, b in pairwise(times))
        closest[task.provider] = min(closest.get(task.provider, gap), gap)
        assert gap >= interval[task.provider] * 0.999, (task.id, gap)

    # Every local job rendered to the end; the one the killed worker held, by the other.
    jobs = {j.id: j for j in _jobs(store)}
    assert len(jobs) == sent["local"]
    assert {j.status for j in jobs.values()} == {TaskStatus.SUCCEEDED.value}
    for job_id in held:
        assert jobs[job_id].attempts == 2, jobs[job_id]
    assert all(j.attempts == 1 for j in jobs.values() if j.id not in held)
    assert survivor.poll() is None and replicas[1].poll() is None and replicas[2].poll() is None
    print(
        f"\n{TOTAL} tasks in {elapsed:.1f} s; replica killed holding {len(polls_held)} polls at "
        f"{killed_at}; worker killed "
        f"holding {held}; polls: runway {runway_emulator.stats()['polls']}, cometapi "
        f"{cometapi_emulator.stats()['polls']}; closest gaps {closest}"
    )
