"""External render workers on real parts: `reenact worker` processes on one SQLite file, the
local engine in REENACT_RENDER_WORKERS=external mode recording jobs for them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.archive import fetch_result
from services.config import PROJECT_ROOT, Settings, load_settings
from services.engine.render_queue import INTERRUPTED, WAITING, RenderQueue
from services.models import ProviderUpdate, TaskStatus
from services.providers.base import CreateRequest
from services.providers.local import LocalProvider
from tests.engine.conftest import Clip, wait_for
from tests.mediagen import Character, make_driving_clip

LEASE = "3"  # seconds: a killed worker's job is free this soon even on another host


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """Long enough to still be rendering when a test kills or cancels."""
    path = tmp_path_factory.mktemp("rw") / "slow.mp4"
    return Clip(path, make_driving_clip(path, seconds=60.0, fps=24, head_px=0), 24)


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {"REENACT_DATA_DIR": str(tmp_path / "data"), "REENACT_RENDER_WORKERS": "external"}


@pytest.fixture()
def ext(env: dict[str, str]) -> LocalProvider:
    settings = load_settings(env=env, secrets={})
    settings.ensure_dirs()
    return LocalProvider(settings)


@pytest.fixture()
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("REENACT_")} | env
        full["PYTHONPATH"] = str(PROJECT_ROOT)
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker", "--lease", LEASE],
            cwd=PROJECT_ROOT,
            env=full,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def submit(provider: LocalProvider, clip: Path, face: Path, key: str) -> str:
    return provider.create(
        CreateRequest(video=str(clip), image=str(face), idempotency_key=key)  # type: ignore[call-arg]
    )


def running(update: ProviderUpdate) -> bool:
    return update.status is TaskStatus.RUNNING and update.progress > 0


def test_without_a_worker_a_job_waits_and_can_be_canceled(
    ext: LocalProvider, clip: Clip, character: Character
) -> None:
    job = submit(ext, clip.path, character.path, "wait")
    assert submit(ext, clip.path, character.path, "wait") == job  # one job
    update = ext.poll(job)
    assert update.status is TaskStatus.QUEUED
    assert WAITING in (update.raw_status or "")
    # nothing was started on this machine: no job folder
    assert not (ext.settings.work_dir / "local" / job).exists()
    ext.cancel(job)
    assert ext.poll(job).status is TaskStatus.CANCELED


def test_two_workers_render_six_jobs_once_each_and_they_archive(
    ext: LocalProvider,
    workers: Callable[[], subprocess.Popen[bytes]],
    clip: Clip,
    character: Character,
) -> None:
    ids = [submit(ext, clip.path, character.path, f"six-{i}") for i in range(6)]
    a, b = workers(), workers()
    done = {job: wait_for(ext, job, lambda u: u.status.terminal, timeout=180) for job in ids}
    assert {u.status for u in done.values()} == {TaskStatus.SUCCEEDED}
    queue = RenderQueue.for_settings(ext.settings)
    owners = set()
    for job, update in done.items():
        row = queue.get(job)
        assert row is not None
        assert row.state.attempts == 1  # claimed once: never rendered twice
        assert row.lease_owner is None
        archived = fetch_result(update.result_url or "", f"task-{job}", ext.settings)
        assert archived.stat().st_size > 1000
    for proc in (a, b):
        assert proc.poll() is None  # both still serving
        owners.add(proc.pid)
    assert len(owners) == 2


def test_a_killed_workers_job_is_finished_by_another(
    ext: LocalProvider,
    workers: Callable[[], subprocess.Popen[bytes]],
    slow_clip: Clip,
    character: Character,
) -> None:
    job = submit(ext, slow_clip.path, character.path, "kill")
    first = workers()
    wait_for(ext, job, running, timeout=120)
    first.send_signal(signal.SIGKILL)
    first.wait()
    workers()
    queue = RenderQueue.for_settings(ext.settings)

    def resumed(update: ProviderUpdate) -> bool:
        row = queue.get(job)
        return row is not None and row.state.attempts == 2 and running(update)

    wait_for(ext, job, resumed, timeout=120)  # the other worker renders it from the start
    ext.cancel(job)  # no need to render a minute of video to the end
    assert wait_for(ext, job, lambda u: u.status.terminal).status is TaskStatus.CANCELED


def test_a_second_crash_fails_with_todays_sentence(
    ext: LocalProvider,
    workers: Callable[[], subprocess.Popen[bytes]],
    slow_clip: Clip,
    character: Character,
) -> None:
    job = submit(ext, slow_clip.path, character.path, "crash-twice")
    for _ in range(2):
        proc = workers()
        queue = RenderQueue.for_settings(ext.settings)
        wait_for(ext, job, running, timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    update = wait_for(ext, job, lambda u: u.status.terminal, timeout=30)
    assert update.status is TaskStatus.FAILED
    assert update.error == INTERRUPTED
    row = queue.get(job)
    assert row is not None and row.state.attempts == 2


def test_cancel_reaches_a_rendering_worker(
    ext: LocalProvider,
    workers: Callable[[], subprocess.Popen[bytes]],
    slow_clip: Clip,
    character: Character,
    clip: Clip,
) -> None:
    job = submit(ext, slow_clip.path, character.path, "cancel")
    proc = workers()
    wait_for(ext, job, running, timeout=120)
    started = time.monotonic()
    ext.cancel(job)
    update = wait_for(ext, job, lambda u: u.status.terminal, timeout=30)
    assert update.status is TaskStatus.CANCELED
    assert time.monotonic() - started < 10
    # the worker lives on and takes the next job
    assert proc.poll() is None
    nxt = submit(ext, clip.path, character.path, "after-cancel")
    assert wait_for(ext, nxt, lambda u: u.status.terminal, timeout=120).status is (
        TaskStatus.SUCCEEDED
    )


def test_default_mode_is_unchanged(tmp_path: Path) -> None:
    settings: Settings = load_settings(env={"REENACT_DATA_DIR": str(tmp_path)}, secrets={})
    assert settings.render_workers == "local"
    bad = load_settings(
        env={"REENACT_DATA_DIR": str(tmp_path), "REENACT_RENDER_WORKERS": "cloud"}, secrets={}
    )
    assert bad.render_workers == "local"
