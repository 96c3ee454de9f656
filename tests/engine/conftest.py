"""Fixtures for the local engine: generated media with a real face, and a LocalProvider whose
data dir is a fresh temp folder (its worker processes are stopped at the end of each test)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.config import Settings, load_settings
from services.engine import jobs
from services.models import ProviderUpdate
from services.providers.local import LocalProvider
from tests.mediagen import Character, make_character, make_driving_clip

FPS = 24


@dataclass(frozen=True)
class Clip:
    path: Path
    openings: list[float]
    fps: int

    @property
    def frames(self) -> int:
        return len(self.openings)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-media")


@pytest.fixture(scope="session")
def clip(media_dir: Path) -> Clip:
    """2 s at 24 fps: the mouth opens and closes twice while the head drifts; AAC audio."""
    path = media_dir / "drive.mp4"
    return Clip(path, make_driving_clip(path, seconds=2.0, fps=FPS), FPS)


@pytest.fixture(scope="session")
def long_clip(media_dir: Path) -> Clip:
    """90 s (seconds of rendering even on an idle machine): still rendering when a test
    cancels, kills or queues behind it. Tests stop it early, so its length costs nothing."""
    path = media_dir / "long.mp4"
    return Clip(path, make_driving_clip(path, seconds=90.0, fps=FPS, head_px=0), FPS)


@pytest.fixture(scope="session")
def character(media_dir: Path) -> Character:
    return make_character(media_dir / "character.png")


@pytest.fixture(scope="session")
def faceless_clip(media_dir: Path) -> Path:
    path = media_dir / "no-face.mp4"
    make_driving_clip(path, seconds=1.0, face=False)
    return path


@pytest.fixture(scope="session")
def faceless_image(media_dir: Path) -> Path:
    return make_character(media_dir / "no-face.png", face=False).path


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={"REENACT_DATA_DIR": str(tmp_path / "data")}, secrets={})


@pytest.fixture()
def local(settings: Settings) -> Iterator[LocalProvider]:
    provider = LocalProvider(settings)
    yield provider
    root = jobs.jobs_root(settings)
    for folder in root.glob("*/") if root.is_dir() else []:
        state = jobs.read_state(folder)
        if state and state.pid and jobs.worker_holds(folder):
            with contextlib.suppress(OSError):
                os.kill(state.pid, signal.SIGKILL)


def wait_for(
    provider: LocalProvider,
    task_id: str,
    until: Callable[[ProviderUpdate], bool],
    timeout: float = 60.0,
    seen: list[ProviderUpdate] | None = None,
) -> ProviderUpdate:
    """Poll like the monitor does until `until(update)`; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        update = provider.poll(task_id)
        if seen is not None:
            seen.append(update)
        if until(update):
            return update
        if update.status.terminal or time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting; last update: {update!r}")
        time.sleep(0.02)
