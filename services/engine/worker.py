"""`python -m services.engine.worker <job_dir>`: render one local job in its own process.

A process of its own keeps renders off the app's threads, lets them outlive the CLI or page
that started them, and means a crash in native code cannot take the server down. Everything
the worker knows goes into state.json; the provider only ever reads that (and the locks).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType

from services.engine import jobs
from services.engine.config import DEFAULT_CONFIG, EngineConfig
from services.engine.jobs import JobSpec, JobState
from services.errors import ErrorKind, ReenactError
from services.links import is_web_link
from services.models import TaskStatus


class _Stop(Exception):
    """Cancel was asked for (flag file or SIGTERM)."""


class Worker:
    def __init__(self, folder: Path, config: EngineConfig = DEFAULT_CONFIG) -> None:
        self.folder = folder
        self.config = config
        self.state = JobState()
        self._signaled = False
        self._last_write = 0.0

    # -- state ------------------------------------------------------------------------------
    def save(self, **changes: object) -> None:
        for k, v in changes.items():
            setattr(self.state, k, v)
        self.state.heartbeat = jobs.now()
        jobs.write_state(self.folder, self.state)
        self._last_write = time.monotonic()

    def stopping(self) -> bool:
        return self._signaled or jobs.cancel_requested(self.folder)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signaled = True

    # -- stages -----------------------------------------------------------------------------
    def wait_for_slot(self) -> int:
        slots = self.folder.parent / "slots"
        slots.mkdir(parents=True, exist_ok=True)
        noted = False
        while True:
            for i in range(jobs.slot_count()):
                fd = jobs.try_lock(slots / f"slot-{i}.lock")
                if fd is not None:
                    return fd
            if self.stopping():
                raise _Stop
            timing = self.config.worker
            if not noted or time.monotonic() - self._last_write > timing.heartbeat_every_s:
                self.save(note="waiting for another local render to finish")
                noted = True
            time.sleep(timing.slot_poll_s)

    def render(self, spec: JobSpec) -> Path:
        from services.engine.render import Canceled, render

        video, image = self.resolve(spec.video), self.resolve(spec.image)
        partial = self.folder / jobs.PARTIAL_FILE
        started = time.monotonic()
        every_s = self.config.worker.progress_every_s

        def progress(done: int, total: int | None) -> None:
            if done == 1 or time.monotonic() - self._last_write >= every_s:
                elapsed = time.monotonic() - started
                self.save(
                    frames_done=done,
                    frames_total=max(total or 0, done) or None,
                    render_fps=round(done / elapsed, 2) if elapsed > 0 else None,
                    note=None,
                )

        try:
            result = render(
                video,
                image,
                partial,
                spec.options,
                progress=progress,
                canceled=self.stopping,
                config=self.config,
            )
        except Canceled:
            raise _Stop from None
        final = self.folder / jobs.RESULT_FILE
        partial.replace(final)
        self.state.frames_total = result.frames
        self.state.frames_done = result.frames
        self.state.render_fps = round(result.frames / max(result.seconds, 1e-6), 2)
        return final

    def resolve(self, value: str) -> str:
        """Local paths pass through; links are fetched (checked, deduplicated) first."""
        if not is_web_link(value):
            return value
        from services.config import load_settings
        from services.fetch import ingest_url

        self.save(note="fetching the inputs")
        return str(ingest_url(value, load_settings()))

    # -- the whole life -----------------------------------------------------------------------
    def run(self) -> int:
        run_fd = jobs.try_lock(self.folder / jobs.RUN_LOCK)
        if run_fd is None:
            return 0  # another worker already owns this job
        previous = jobs.read_state(self.folder)
        if previous is not None:
            if previous.status.terminal:
                return 0
            self.state = previous
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.save(status=TaskStatus.QUEUED, pid=os.getpid(), frames_done=0, note=None)
        slot: int | None = None
        try:
            spec = jobs.read_spec(self.folder)
            if self.stopping():
                raise _Stop
            slot = self.wait_for_slot()
            self.save(status=TaskStatus.RUNNING, note=None)
            result = self.render(spec)
            self.save(status=TaskStatus.SUCCEEDED, result=str(result), note=None)
        except _Stop:
            (self.folder / jobs.PARTIAL_FILE).unlink(missing_ok=True)
            self.save(
                status=TaskStatus.CANCELED,
                error="The task was canceled.",
                error_kind=ErrorKind.CANCELED.value,
                note=None,
            )
        except ReenactError as err:
            # bad inputs (no face, unreadable file, refused link) are the usual case here
            kind = getattr(err, "kind", None) or ErrorKind.INVALID_INPUT
            (self.folder / jobs.PARTIAL_FILE).unlink(missing_ok=True)
            self.save(status=TaskStatus.FAILED, error=str(err), error_kind=kind.value, note=None)
        except Exception as err:
            traceback.print_exc()  # to worker.log, for whoever debugs; never shown to a user
            (self.folder / jobs.PARTIAL_FILE).unlink(missing_ok=True)
            self.save(
                status=TaskStatus.FAILED,
                error_kind=ErrorKind.UNEXPECTED.value,
                note=None,
                error="The local engine failed unexpectedly "
                f"({type(err).__name__}). Retry it; if it fails again, try another clip.",
            )
        finally:
            if slot is not None:
                jobs.release(slot)
            jobs.release(run_fd)
        return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m services.engine.worker JOB_DIR", file=sys.stderr)
        return 2
    return Worker(Path(argv[1]).resolve(), EngineConfig()).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
