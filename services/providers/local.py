"""The offline local engine as a provider: no key, no network, nothing charged.

`create` writes a job folder and starts a detached worker process (`services.engine.worker`);
`poll` reads the state the worker keeps on disk; `cancel` flags the job and signals the
worker. A worker that died without finishing (kill -9, reboot) is noticed by its released run
lock and started once more from the beginning; if that one dies too the task fails with a
sentence — it is never left "running" forever.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import ClassVar

from services.config import PROJECT_ROOT
from services.engine import jobs
from services.engine.jobs import JobSpec, JobState
from services.errors import ErrorKind, ProviderError
from services.links import is_web_link
from services.models import (
    Availability,
    ProviderCapabilities,
    ProviderUpdate,
    TaskStatus,
    known_error_kind,
    utcnow,
)
from services.procs import process_running
from services.providers.base import CreateRequest, Provider

# A worker gets this long to start and take its run lock before silence means it is gone.
START_GRACE_S = 20.0
# A live worker that has not written for this long is stuck (a hung decoder or download):
# it is stopped.
STALE_S = 900.0
# The first run plus one automatic resume after an interruption.
MAX_ATTEMPTS = 2
INTERRUPTED = "The local render was interrupted; retry it."
STUCK = "The local render stopped responding and was stopped; retry it."


class LocalProvider(Provider):
    id = "local"
    name = "Local engine"

    # Workers started by this process, so finished ones are reaped (no zombies).
    _children: ClassVar[dict[int, subprocess.Popen[bytes]]] = {}

    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            id=self.id,
            name=self.name,
            can_track=False,
            can_cancel=True,
            accepts_character_video=False,
            requires_image=True,
            options=frozenset({"expression_intensity", "ratio"}),
            needs_urls=False,
            cost_per_second_usd=0.0,
            poll_interval_s=1.0,
            docs="Runs on this computer's CPU: no account, no upload, no cost.",
        )

    def availability(self) -> Availability:
        return Availability(available=True)

    # -- create -----------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> str:
        if request.character_video:
            raise ProviderError(
                ErrorKind.INVALID_INPUT,
                "The local engine animates a character image, not a character video; "
                "give an image instead.",
                provider=self.id,
            )
        if not request.image:
            raise ProviderError(
                ErrorKind.INVALID_INPUT,
                "The local engine needs a character image to animate.",
                provider=self.id,
            )
        for what, value in (("driving video", request.video), ("character image", request.image)):
            if not is_web_link(value) and not Path(value).is_file():
                raise ProviderError(
                    ErrorKind.INVALID_INPUT,
                    f"The {what} file was not found: {value}",
                    provider=self.id,
                )
        job_id = _job_id(request.idempotency_key)
        if self.settings.render_workers == "external":
            return self._enqueue(request, job_id)
        folder = jobs.job_dir(self.settings, job_id)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            return job_id  # the same submission again: one job, one render
        spec = JobSpec(
            id=job_id,
            video=_absolute(request.video),
            image=_absolute(request.image),
            options=request.options,
            created_at=jobs.now(),
        )
        jobs.write_spec(folder, spec)
        with jobs.admin_lock(folder):
            self._spawn(folder, JobState(attempts=0))
        return job_id

    def _enqueue(self, request: CreateRequest, job_id: str) -> str:
        """External render workers: record the job for `reenact worker` (render_queue)."""
        from services.engine.render_queue import QueuedSpec, RenderQueue

        spec = QueuedSpec(
            id=job_id,
            video=_absolute(request.video),
            image=_absolute(request.image or ""),  # checked by create
            options=request.options,
            created_at=jobs.now(),
        )
        from services.storage import bucket_for

        bucket = bucket_for(self.settings)
        if bucket is not None:  # for workers that do not share this machine's files
            for field in ("video", "image"):
                value = getattr(spec, field)
                if not is_web_link(value):
                    key = bucket.put_input(Path(value), self.settings)
                    setattr(spec, f"{field}_key", key)
        RenderQueue.for_settings(self.settings).enqueue(spec)
        return job_id

    def _queued(self, provider_task_id: str) -> ProviderUpdate | None:
        """The job row's state in external mode; None for a job this machine started."""
        if self.settings.render_workers != "external" or not jobs.valid_job_id(provider_task_id):
            return None
        from services.engine.render_queue import BUCKET_RESULT, WAITING, RenderQueue

        queue = RenderQueue.for_settings(self.settings)
        job = queue.get(provider_task_id)
        if job is None:
            return None
        job = queue.settle(job)
        state = job.state
        if job.waiting(utcnow()):
            state.status, state.note = TaskStatus.QUEUED, WAITING
        if state.status is TaskStatus.SUCCEEDED and (state.result or "").startswith(BUCKET_RESULT):
            from services.storage import bucket_for

            bucket = bucket_for(self.settings)
            if bucket is None:
                raise ProviderError(
                    ErrorKind.UNEXPECTED,
                    "The render worker wrote the result to a bucket, but this app has no "
                    "REENACT_S3_BUCKET set; set the same bucket here.",
                    provider=self.id,
                )
            link = bucket.presign(state.result.removeprefix(BUCKET_RESULT))  # type: ignore[union-attr]
            return ProviderUpdate(
                status=TaskStatus.SUCCEEDED, progress=1.0, result_url=link, raw_status="succeeded"
            )
        return _update(state)

    def _spawn(self, folder: Path, state: JobState) -> None:
        """Start a worker for `folder`; the caller holds the job's admin lock."""
        state.status = TaskStatus.QUEUED
        state.frames_done = 0
        state.attempts += 1
        state.spawned_at = jobs.now()
        state.heartbeat = state.spawned_at
        state.pid = None
        jobs.clear_spawned_pid(folder)
        jobs.write_state(folder, state)
        # The worker needs no provider key: keep them out of its environment.
        env = {k: v for k, v in os.environ.items() if not _is_secret_var(k)}
        env["REENACT_DATA_DIR"] = str(self.settings.data_dir)
        env["REENACT_ALLOW_PRIVATE_URLS"] = "1" if self.settings.allow_private_urls else "0"
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        with (folder / jobs.LOG_FILE).open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.engine.worker", str(folder)],
                cwd=PROJECT_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # outlives the app, and Ctrl-C in a terminal
            )
        self._children[proc.pid] = proc
        # beside state.json, not in it: the worker may already be writing that file
        jobs.write_spawned_pid(folder, proc.pid)

    # -- poll -------------------------------------------------------------------------------
    def poll(self, provider_task_id: str) -> ProviderUpdate:
        queued = self._queued(provider_task_id)
        if queued is not None:
            return queued
        self._reap()
        folder = self._folder(provider_task_id)
        state = jobs.read_state(folder)
        if state is None or state.status.terminal or jobs.worker_holds(folder):
            if state is not None and not state.status.terminal:
                state = self._check_stuck(folder, state)
            return _update(state)
        if _starting(folder, state):
            return _update(state)
        with jobs.admin_lock(folder):
            state = jobs.read_state(folder) or JobState()
            if state.status.terminal or jobs.worker_holds(folder) or _starting(folder, state):
                return _update(state)
            if jobs.cancel_requested(folder):
                _finish_canceled(folder, state)
            elif state.attempts < MAX_ATTEMPTS:
                state.note = "resumed after an interruption"
                self._spawn(folder, state)
            else:
                _finish_failed(folder, state, INTERRUPTED)
            return _update(state)

    def _check_stuck(self, folder: Path, state: JobState) -> JobState:
        if state.heartbeat is None or jobs.now() - state.heartbeat < STALE_S:
            return state
        if state.pid and process_running(state.pid):
            try:
                os.kill(state.pid, signal.SIGKILL)
            except OSError:
                return state
        with jobs.admin_lock(folder):
            _finish_failed(folder, state, STUCK)
        return state

    # -- cancel -----------------------------------------------------------------------------
    def cancel(self, provider_task_id: str) -> None:
        if self._queued(provider_task_id) is not None:
            from services.engine.render_queue import RenderQueue

            RenderQueue.for_settings(self.settings).cancel(provider_task_id)
            return
        folder = self._folder(provider_task_id)
        (folder / jobs.CANCEL_FILE).touch()
        state = jobs.read_state(folder)
        if state is None or state.status.terminal:
            return
        # Signal only a worker that provably lives (holds the run lock): a stale pid could
        # by now belong to some other program.
        if jobs.worker_holds(folder) and state.pid:
            # it stops within a frame, deletes its partial output and reports "canceled"
            try:
                os.kill(state.pid, signal.SIGTERM)
            except OSError:
                pass
            else:
                return
        # Not running (or not yet): settle it here; a worker starting later sees the flag.
        with jobs.admin_lock(folder):
            state = jobs.read_state(folder) or state
            if not state.status.terminal and not jobs.worker_holds(folder):
                _finish_canceled(folder, state)

    # -- helpers ----------------------------------------------------------------------------
    def _folder(self, provider_task_id: str) -> Path:
        if not jobs.valid_job_id(provider_task_id):
            raise ProviderError(
                ErrorKind.NOT_FOUND,
                f"'{provider_task_id}' is not a local engine task id.",
                provider=self.id,
            )
        folder = jobs.job_dir(self.settings, provider_task_id)
        if not (folder / jobs.JOB_FILE).is_file():
            raise ProviderError(
                ErrorKind.NOT_FOUND,
                "The local engine has no record of this task (its work folder is gone). "
                "Submit it again.",
                provider=self.id,
            )
        return folder

    @classmethod
    def _reap(cls) -> None:
        for pid, proc in list(cls._children.items()):
            if proc.poll() is not None:
                del cls._children[pid]


def _absolute(value: str) -> str:
    return value if is_web_link(value) else str(Path(value).expanduser().resolve())


def _job_id(idempotency_key: str | None) -> str:
    if idempotency_key:
        return hashlib.sha256(f"local:{idempotency_key}".encode()).hexdigest()[:32]
    return uuid.uuid4().hex


def _starting(folder: Path, state: JobState) -> bool:
    """Spawned moments ago and its process is still alive: not yet holding its lock."""
    if state.spawned_at is None or jobs.now() - state.spawned_at > START_GRACE_S:
        return False
    pid = jobs.read_spawned_pid(folder)
    return pid is None or process_running(pid)


def _finish_canceled(folder: Path, state: JobState) -> None:
    (folder / jobs.PARTIAL_FILE).unlink(missing_ok=True)
    state.status = TaskStatus.CANCELED
    state.error = "The task was canceled."
    state.error_kind = ErrorKind.CANCELED.value
    jobs.write_state(folder, state)


def _finish_failed(folder: Path, state: JobState, sentence: str) -> None:
    (folder / jobs.PARTIAL_FILE).unlink(missing_ok=True)
    state.status = TaskStatus.FAILED
    state.error = sentence
    state.error_kind = ErrorKind.UNEXPECTED.value
    jobs.write_state(folder, state)


def _update(state: JobState | None) -> ProviderUpdate:
    if state is None:  # the folder exists, the worker is being started
        return ProviderUpdate(status=TaskStatus.QUEUED, progress=0.0, raw_status="starting")
    raw = state.status.value + (f": {state.note}" if state.note else "")
    if state.status is TaskStatus.SUCCEEDED:
        return ProviderUpdate(
            status=TaskStatus.SUCCEEDED,
            progress=1.0,
            result_url=Path(state.result or "").resolve().as_uri() if state.result else None,
            raw_status=raw,
        )
    if state.status.terminal:
        return ProviderUpdate(
            status=state.status,
            error=state.error,
            error_kind=known_error_kind(state.error_kind),
            raw_status=raw,
        )
    progress = 0.0
    eta = None
    if state.frames_total:
        done = min(state.frames_done, state.frames_total)
        progress = min(0.99, done / state.frames_total)
        if state.render_fps:
            eta = round((state.frames_total - done) / state.render_fps, 1)
    return ProviderUpdate(status=state.status, progress=progress, eta_seconds=eta, raw_status=raw)


def _is_secret_var(name: str) -> bool:
    return name == "RUNWAYML_API_SECRET" or (
        name.startswith("REENACT_") and name.endswith("_API_KEY")
    )
