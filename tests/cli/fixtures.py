"""Fixtures shared by the CLI and monitor tests: generated inputs (as files and as loopback
URLs) and a clean environment per test pointing the installed `reenact` at a fresh data dir.

Imported by tests/cli/conftest.py and tests/monitor/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import mediagen
from tests.cli.support import FileServer, base_env


@pytest.fixture(scope="session")
def inputs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-inputs")
    # 16:9, a face, 4 s: inside every provider's limits (Runway wants 3-30 s references).
    mediagen.make_video(folder / "drive.mp4", size=(320, 180), seconds=4.0, fps=8)
    mediagen.make_image(folder / "char.png", size=(640, 360))
    return folder


@pytest.fixture(scope="session")
def file_server(inputs_dir: Path) -> Iterator[FileServer]:
    server = FileServer(inputs_dir)
    yield server
    server.close()


@pytest.fixture
def video(inputs_dir: Path) -> str:
    return str(inputs_dir / "drive.mp4")


@pytest.fixture
def image(inputs_dir: Path) -> str:
    return str(inputs_dir / "char.png")


@pytest.fixture
def video_url(file_server: FileServer) -> str:
    return file_server.url("drive.mp4")


@pytest.fixture
def image_url(file_server: FileServer) -> str:
    return file_server.url("char.png")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    return base_env(data_dir)
