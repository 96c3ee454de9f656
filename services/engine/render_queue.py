"""External render workers (`REENACT_RENDER_WORKERS=external`): local-engine renders recorded
in the shared database and taken by `reenact worker` processes on any machine that reaches it.

The local engine's `create` inserts a `render_jobs` row instead of starting a process; a
worker claims a row under a lease (`lease_owner`/`lease_until`, the same Holder idiom as the
monitor's task leases: a holder on this host whose process is gone loses it at once, one on
another host when the lease runs out), heartbeats it while rendering (progress, and the cancel
flag read back), and writes the outcome compare-and-set on its own lease. A job whose worker
died is claimed again and rendered once more from the beginning; after `MAX_ATTEMPTS` it fails
with the same sentence as an interrupted local render. On PostgreSQL the claim skips rows
another worker is claiming (FOR UPDATE SKIP LOCKED); everywhere the update is guarded by what
was read, so two workers never take one job.

Inputs are the app's files when the worker shares its filesystem, else fetched from the bucket
(uploaded by `create` when REENACT_S3_BUCKET is set); results are written to the bucket when
one is configured, else handed over as the worker's file (inside the shared data folder).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import traceback
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from services.config import Settings
from services.engine import jobs
from services.engine.config import DEFAULT_CONFIG, EngineConfig
from services.engine.jobs import JobSpec, JobState
from services.engine.worker import Worker
from services.errors import ErrorKind, ReenactError
from services.lifecycle import Holder
from services.models import Task, TaskStatus, utcnow
from services.store import RenderJobRow, Store

log = logging.getLogger("reenact.render_queue")

# A worker that stops heartbeating (killed, cut off) loses its job this long after its last
# heartbeat; it heartbeats three times per lease.
LEASE_S = 30.0
# How often an idle worker looks for work.
IDLE_S = 1.0
# The first render plus one more after the worker doing it died (as for local renders).
MAX_ATTEMPTS = 2
INTERRUPTED = "The local render was interrupted; retry it."
CANCELED = "The task was canceled."
WAITING = "waiting for a render worker"
# Where a job's result lives when it was written to the bucket.
BUCKET_RESULT = "s3:"
_R = RenderJobRow
_OPEN = (TaskStatus.QUEUED.value, TaskStatus.RUNNING.value)


class QueuedSpec(JobSpec):
    """A job as recorded for a worker elsewhere: the app's paths, and their bucket keys when
    a bucket is configured (a worker that cannot see the paths fetches the keys)."""

    video_key: str | None = None
    image_key: str | None = None


@dataclass(frozen=True)
class RenderJob:
    id: str
    spec: QueuedSpec
    state: JobState
    cancel_requested: bool
    lease_owner: str | None
    lease_until: datetime | None

    def abandoned(self, now: datetime) -> bool:
        """Taken by a worker that is gone (its lease ran out, or its process on this host)."""
        if self.state.status.terminal or self.lease_owner is None:
            return False
        if self.lease_until is None or self.lease_until <= now:
            return True
        holder = Holder.parse(self.lease_owner)
        return holder is not None and not holder.alive()

    def waiting(self, now: datetime) -> bool:
        """Open, and no worker holds it (none took it yet, or the one that did is gone)."""
        return not self.state.status.terminal and (self.lease_owner is None or self.abandoned(now))


def _job(row: Row[Any]) -> RenderJob:
    return RenderJob(
        id=row.id,
        spec=QueuedSpec.model_validate(row.spec),
        state=JobState(
            status=TaskStatus(row.status),
            frames_done=row.frames_done,
            frames_total=row.frames_total,
            render_fps=row.render_fps,
            note=row.note,
            error=row.error,
            error_kind=row.error_kind,
            result=row.result,
            attempts=row.attempts,
        ),
        cancel_requested=row.cancel_requested,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
    )


class RenderQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._skip_locked = engine.dialect.name == "postgresql"

    @classmethod
    def for_settings(cls, settings: Settings) -> RenderQueue:
        return _queue(settings.database_url, settings.db_pool_size, settings.db_max_overflow)

    # ---- the app's side ----------------------------------------------------------------------
    def enqueue(self, spec: QueuedSpec) -> bool:
        """Record a job; False if it is there already (the same submission again)."""
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(_R).values(
                        id=spec.id,
                        created_at=now,
                        updated_at=now,
                        spec=spec.model_dump(mode="json"),
                        status=TaskStatus.QUEUED.value,
                        frames_done=0,
                        attempts=0,
                        cancel_requested=False,
                    )
                )
        except IntegrityError:
            if self.get(spec.id) is None:
                raise
            return False
        return True

    def get(self, job_id: str) -> RenderJob | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_R).where(_R.id == job_id)).first()
        return _job(row) if row is not None else None

    def waiting(self, job_ids: Collection[str]) -> set[str]:
        """Which of these jobs no worker holds (`RenderJob.waiting`), in one read."""
        if not job_ids:
            return set()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(_R).where(_R.id.in_(list(job_ids)), _R.status.in_(_OPEN))
            ).all()
        now = utcnow()
        return {job.id for job in map(_job, rows) if job.waiting(now)}

    def settle(self, job: RenderJob) -> RenderJob:
        """A job whose last allowed attempt was abandoned fails now, worker or not."""
        if job.state.attempts >= MAX_ATTEMPTS and job.abandoned(utcnow()):
            self._end(job, TaskStatus.FAILED, INTERRUPTED, ErrorKind.UNEXPECTED)
            return self.get(job.id) or job
        return job

    def cancel(self, job_id: str) -> None:
        """Flag the job (its worker stops within a frame); one nobody holds ends at once."""
        with self.engine.begin() as conn:
            conn.execute(
                update(_R)
                .where(_R.id == job_id, _R.status.in_(_OPEN))
                .values(cancel_requested=True, updated_at=utcnow())
            )
        job = self.get(job_id)
        if job is not None and (job.lease_owner is None or job.abandoned(utcnow())):
            self._end(job, TaskStatus.CANCELED, CANCELED, ErrorKind.CANCELED)

    def _end(self, seen: RenderJob, status: TaskStatus, sentence: str, kind: ErrorKind) -> bool:
        """Finish a job nobody renders, if it is still as `seen` (compare-and-set)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(_R)
                .where(
                    _R.id == seen.id,
                    _R.status == seen.state.status.value,
                    _R.attempts == seen.state.attempts,
                    _same_owner(seen.lease_owner),
                )
                .values(
                    status=status.value,
                    error=sentence,
                    error_kind=kind.value,
                    note=None,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=utcnow(),
                )
            )
        return done.rowcount == 1

    # ---- the worker's side -------------------------------------------------------------------
    def claim(self, holder: Holder, lease_s: float = LEASE_S) -> RenderJob | None:
        """Take the oldest job that is waiting or abandoned; None when there is none."""
        now = utcnow()
        free = or_(_R.lease_owner.is_(None), _R.lease_until <= now)
        dead = self._dead_holders(now)
        if dead:
            free = or_(free, _R.lease_owner.in_(dead))
        pick = (
            select(_R)
            .where(_R.status.in_(_OPEN), free)
            .order_by(_R.created_at)
            .limit(8)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has no row locks
        )
        with self.engine.connect() as conn:
            candidates = [_job(r) for r in conn.execute(pick)]
            for job in candidates:
                if job.cancel_requested or job.state.attempts >= MAX_ATTEMPTS:
                    continue  # settled below, outside this transaction
                taken = conn.execute(
                    update(_R)
                    .where(
                        _R.id == job.id,
                        _R.attempts == job.state.attempts,
                        _R.status.in_(_OPEN),
                        _same_owner(job.lease_owner),
                    )
                    .values(
                        status=TaskStatus.RUNNING.value,
                        attempts=job.state.attempts + 1,
                        frames_done=0,
                        note="resumed after an interruption" if job.state.attempts else None,
                        lease_owner=str(holder),
                        lease_until=now + timedelta(seconds=lease_s),
                        updated_at=now,
                    )
                )
                if taken.rowcount == 1:
                    conn.commit()
                    return self.get(job.id)
            conn.commit()
        for job in candidates:
            if job.cancel_requested:
                self._end(job, TaskStatus.CANCELED, CANCELED, ErrorKind.CANCELED)
            elif job.state.attempts >= MAX_ATTEMPTS:
                self._end(job, TaskStatus.FAILED, INTERRUPTED, ErrorKind.UNEXPECTED)
        return None

    def _dead_holders(self, now: datetime) -> list[str]:
        with self.engine.connect() as conn:
            owners = conn.scalars(
                select(_R.lease_owner).where(_R.status.in_(_OPEN), _R.lease_until > now)
            ).all()
        found = []
        for owner in set(owners):
            holder = Holder.parse(owner)
            if holder is not None and not holder.alive():
                found.append(str(owner))
        return found

    def heartbeat(
        self, job_id: str, holder: Holder, state: JobState, lease_s: float = LEASE_S
    ) -> bool | None:
        """Extend the lease and record progress; whether cancel was asked for, or None when
        the lease is no longer this worker's (it stops without writing anything more)."""
        now = utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(
                update(_R)
                .where(_R.id == job_id, _R.lease_owner == str(holder), _R.status.in_(_OPEN))
                .values(
                    lease_until=now + timedelta(seconds=lease_s),
                    frames_done=state.frames_done,
                    frames_total=state.frames_total,
                    render_fps=state.render_fps,
                    note=state.note,
                    updated_at=now,
                )
                .returning(_R.cancel_requested)
            ).first()
        return None if row is None else bool(row[0])

    def finish(self, job_id: str, holder: Holder, state: JobState) -> bool:
        """Write the outcome, if the job is still this worker's."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(_R)
                .where(_R.id == job_id, _R.lease_owner == str(holder), _R.status.in_(_OPEN))
                .values(
                    status=state.status.value,
                    frames_done=state.frames_done,
                    frames_total=state.frames_total,
                    render_fps=state.render_fps,
                    note=None,
                    error=state.error,
                    error_kind=state.error_kind,
                    result=state.result,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=utcnow(),
                )
            )
        return done.rowcount == 1


def _same_owner(owner: str | None) -> ColumnElement[bool]:
    return _R.lease_owner.is_(None) if owner is None else _R.lease_owner == owner


def waiting_for_worker(tasks: Iterable[Task], settings: Settings) -> set[str]:
    """The ids of the local-engine tasks whose render no worker holds yet, with
    REENACT_RENDER_WORKERS=external: what the task card, the Tasks page and the CLI say
    ("waiting for a render worker") while the provider's poll only reports them queued."""
    if settings.render_workers != "external":
        return set()
    open_ = (TaskStatus.QUEUED, TaskStatus.RUNNING)
    by_job = {
        t.provider_task_id: t.id
        for t in tasks
        if t.provider == "local" and t.provider_task_id and t.status in open_
    }
    if not by_job:
        return set()
    return {by_job[j] for j in RenderQueue.for_settings(settings).waiting(by_job)}


@lru_cache(maxsize=4)
def _queue(url: str, pool_size: int, max_overflow: int) -> RenderQueue:
    # Store opens (and migrates) the database; the queue needs only its engine.
    return RenderQueue(Store(url, pool_size=pool_size, max_overflow=max_overflow).engine)


# ---- the worker ----------------------------------------------------------------------------
class _QueuedRender(Worker):
    """The local worker's render, with its state kept in memory: the heartbeat thread carries
    it to the job row, and cancel comes from the row (through `stop`)."""

    def __init__(self, folder: Path, config: EngineConfig, stop: threading.Event) -> None:
        super().__init__(folder, config)
        self._stop = stop

    def save(self, **changes: object) -> None:
        for k, v in changes.items():
            setattr(self.state, k, v)
        self._last_write = time.monotonic()

    def stopping(self) -> bool:
        return self._stop.is_set()


class RenderWorker:
    """One `reenact worker` process: claims jobs one at a time and renders them."""

    def __init__(
        self,
        settings: Settings,
        *,
        lease_s: float = LEASE_S,
        idle_s: float = IDLE_S,
        config: EngineConfig = DEFAULT_CONFIG,
    ) -> None:
        self.settings = settings
        self.queue = RenderQueue.for_settings(settings)
        self.holder = Holder.here()
        self.lease_s = lease_s
        self.idle_s = idle_s
        self.config = config
        self.stopping = threading.Event()  # set by SIGTERM/SIGINT: finish this job, take no more

    def serve(self, *, once: bool = False) -> int:
        """Render until asked to stop (or, with `once`, until no job is waiting); the number
        of jobs rendered."""
        rendered = 0
        while not self.stopping.is_set():
            job = self.queue.claim(self.holder, self.lease_s)
            if job is None:
                if once:
                    break
                self.stopping.wait(self.idle_s)
                continue
            log.info("rendering %s (attempt %d)", job.id, job.state.attempts)
            self.render(job)
            rendered += 1
        return rendered

    def render(self, job: RenderJob) -> None:
        folder = jobs.job_dir(self.settings, job.id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / jobs.PARTIAL_FILE).unlink(missing_ok=True)
        cancel = threading.Event()
        lost = threading.Event()
        worker = _QueuedRender(folder, self.config, cancel)
        worker.state = job.state.model_copy()
        beating = threading.Event()

        def beat() -> None:
            while not beating.wait(self.lease_s / 3):
                try:
                    asked = self.queue.heartbeat(job.id, self.holder, worker.state, self.lease_s)
                except Exception:  # a database hiccup: the next beat tries again
                    log.warning("heartbeat for %s failed", job.id, exc_info=True)
                    continue
                if asked is None:
                    lost.set()
                if asked is None or asked:
                    cancel.set()

        thread = threading.Thread(target=beat, name=f"heartbeat-{job.id[:8]}", daemon=True)
        thread.start()
        state = worker.state
        try:
            spec = job.spec.model_copy(
                update={
                    "video": self._input(job.spec.video, job.spec.video_key, folder),
                    "image": self._input(job.spec.image, job.spec.image_key, folder),
                }
            )
            result = worker.render(spec)
            state.status, state.result = TaskStatus.SUCCEEDED, self._hand_over(job.id, result)
        except Exception as err:
            (folder / jobs.PARTIAL_FILE).unlink(missing_ok=True)
            from services.engine.render import Canceled

            if isinstance(err, Canceled) or cancel.is_set():
                state.status, state.error, state.error_kind = (
                    TaskStatus.CANCELED,
                    CANCELED,
                    ErrorKind.CANCELED.value,
                )
            elif isinstance(err, ReenactError):
                kind = getattr(err, "kind", None) or ErrorKind.INVALID_INPUT
                state.status, state.error, state.error_kind = (
                    TaskStatus.FAILED,
                    str(err),
                    kind.value,
                )
            else:
                traceback.print_exc()  # the worker's log; never shown to a user
                state.status, state.error_kind = TaskStatus.FAILED, ErrorKind.UNEXPECTED.value
                state.error = (
                    f"The local engine failed unexpectedly ({type(err).__name__}). Retry it; "
                    "if it fails again, try another clip."
                )
        finally:
            beating.set()
            thread.join()
        if lost.is_set() or not self.queue.finish(job.id, self.holder, state):
            log.warning("lost the lease on %s; its outcome was not recorded", job.id)

    def _input(self, path: str, key: str | None, folder: Path) -> str:
        """The app's file when this machine sees it, else its copy from the bucket; links are
        fetched by the render itself (Worker.resolve)."""
        if Path(path).is_file() or key is None:
            return path
        from services.storage import bucket_for

        bucket = bucket_for(self.settings)
        if bucket is None:
            raise ReenactError(
                "The render worker cannot see the input files and has no bucket to fetch "
                "them from: give it the app's data folder or the same REENACT_S3_BUCKET."
            )
        found = bucket.open(key)
        if found is None:
            raise ReenactError("An input file is no longer in the bucket; submit the task again.")
        local = folder / "inputs" / Path(key).name
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_suffix(local.suffix + ".part")
        with part.open("wb") as out:
            for chunk in found.chunks():
                out.write(chunk)
        part.replace(local)
        return str(local)

    def _hand_over(self, job_id: str, result: Path) -> str:
        """The bucket key (prefixed) when a bucket is configured, else the file's path."""
        from services.storage import bucket_for

        bucket = bucket_for(self.settings)
        if bucket is None:
            return str(result)
        key = bucket.result_key(f"render-{job_id}", result.name)
        bucket.put_file(result, key, "video/mp4")
        shutil.rmtree(result.parent / "inputs", ignore_errors=True)
        return BUCKET_RESULT + key
