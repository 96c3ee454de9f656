"""Monitor tests run in-process against the real loopback emulators and a real SQLite file
(or, where a test asks, a real PostgreSQL database: tests/pg.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.config import load_settings
from services.monitor import Monitor
from services.studio import Studio
from tests.cli.fixtures import data_dir, env, image, inputs_dir, video  # noqa: F401
from tests.emulators import Emulator

# Provider intervals are 5-10 s; this makes them 25-50 ms.
SCALE = 0.005

StudioFactory = Callable[..., Studio]


@pytest.fixture
def make_studio(tmp_path: Path) -> Iterator[StudioFactory]:
    """A Studio pointed at the given emulators, on one data dir per test (call it twice for
    a second process's view of the same database)."""
    made: list[Studio] = []

    def factory(*emulators: Emulator, database_url: str | None = None) -> Studio:
        variables = {"REENACT_DATA_DIR": str(tmp_path / "data"), "REENACT_ALLOW_PRIVATE_URLS": "1"}
        if database_url:
            variables["REENACT_DATABASE_URL"] = database_url
        for emu in emulators:
            variables.update(emu.env())
        studio = Studio(load_settings(env=variables, secrets={}))
        made.append(studio)
        return studio

    yield factory
    for studio in made:
        studio.close()


@pytest.fixture
def make_monitor() -> Iterator[Callable[..., Monitor]]:
    made: list[Monitor] = []

    def factory(studio: Studio, **kwargs: object) -> Monitor:
        kwargs.setdefault("interval_scale", SCALE)
        monitor = Monitor(studio, **kwargs)  # type: ignore[arg-type]
        made.append(monitor)
        return monitor

    yield factory
    for monitor in made:
        monitor.stop()
