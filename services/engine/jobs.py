"""A local job on disk: its spec, its durable state, its locks. Shared by provider and worker.

Layout, one folder per job under `<work_dir>/local/<job_id>/`:
  job.json     what to render (written once, before the worker starts)
  state.json   status, frames done/total, error sentence, result path, pid, heartbeat
               (always replaced atomically, so a reader never sees half a file)
  run.lock     held (flock) by the live worker for its whole life: the kernel drops it when
               the process dies, even on kill -9, so "is anyone rendering this?" never guesses
  cancel       exists once a cancel was asked for
  result.mp4   the output, renamed into place only when complete

Concurrency across jobs: a worker renders only while it holds one of `slot_count()` slot locks
under `<work_dir>/local/slots/`; the others wait, queued.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from services.models import TaskOptions, TaskStatus

if TYPE_CHECKING:  # the worker never needs the settings module on its way to the first frame
    from services.config import Settings

JOB_FILE = "job.json"
STATE_FILE = "state.json"
RUN_LOCK = "run.lock"
ADMIN_LOCK = "admin.lock"
CANCEL_FILE = "cancel"
RESULT_FILE = "result.mp4"
PARTIAL_FILE = "result.part.mp4"
LOG_FILE = "worker.log"
SPAWNED_FILE = "spawned.pid"

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    video: str
    image: str
    options: TaskOptions = TaskOptions()
    created_at: float


class JobState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: TaskStatus = TaskStatus.QUEUED
    frames_done: int = 0
    frames_total: int | None = None
    error: str | None = None
    error_kind: str | None = None
    result: str | None = None
    pid: int | None = None
    spawned_at: float | None = None
    heartbeat: float | None = None
    attempts: int = 0
    render_fps: float | None = None
    note: str | None = None  # what the worker is doing, for the event history


def jobs_root(settings: Settings) -> Path:
    return settings.work_dir / "local"


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.match(job_id))


def job_dir(settings: Settings, job_id: str) -> Path:
    if not valid_job_id(job_id):
        raise ValueError("not a local job id")
    return jobs_root(settings) / job_id


def slot_count() -> int:
    """Renders at once: one per two cores (a render keeps ~2 cores busy: warp + x264)."""
    return max(1, (os.cpu_count() or 2) // 2)


def read_spec(folder: Path) -> JobSpec:
    return JobSpec.model_validate_json((folder / JOB_FILE).read_text())


def write_spec(folder: Path, spec: JobSpec) -> None:
    _atomic_write(folder / JOB_FILE, spec.model_dump_json(indent=1))


def read_state(folder: Path) -> JobState | None:
    try:
        return JobState.model_validate_json((folder / STATE_FILE).read_text())
    except FileNotFoundError:
        return None


def write_state(folder: Path, state: JobState) -> None:
    _atomic_write(folder / STATE_FILE, state.model_dump_json())


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_spawned_pid(folder: Path, pid: int) -> None:
    _atomic_write(folder / SPAWNED_FILE, str(pid))


def clear_spawned_pid(folder: Path) -> None:
    (folder / SPAWNED_FILE).unlink(missing_ok=True)


def read_spawned_pid(folder: Path) -> int | None:
    try:
        return int((folder / SPAWNED_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def cancel_requested(folder: Path) -> bool:
    return (folder / CANCEL_FILE).exists()


def try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on `path`, or None if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def worker_holds(folder: Path) -> bool:
    """True while a live worker owns this job (its run lock is held)."""
    if not (folder / RUN_LOCK).exists():
        return False
    fd = try_lock(folder / RUN_LOCK)
    if fd is None:
        return True
    release(fd)
    return False


@contextlib.contextmanager
def admin_lock(folder: Path) -> Iterator[None]:
    """Serialises the decisions made outside the worker (respawn, fail, cancel) per job."""
    fd = os.open(folder / ADMIN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        release(fd)


def now() -> float:
    return time.time()
