"""pytest fixtures: one started emulator per test (function scope, so faults never leak).

Registered for the whole suite by `pytest_plugins` in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators import (
    CometApiEmulator,
    LiangXinEmulator,
    MakevidEmulator,
    RunwayEmulator,
)


@pytest.fixture
def cometapi_emulator() -> Iterator[CometApiEmulator]:
    with CometApiEmulator() as emu:
        yield emu


@pytest.fixture
def liangxin_emulator() -> Iterator[LiangXinEmulator]:
    with LiangXinEmulator() as emu:
        yield emu


@pytest.fixture
def runway_emulator() -> Iterator[RunwayEmulator]:
    with RunwayEmulator() as emu:
        yield emu


@pytest.fixture
def makevid_emulator() -> Iterator[MakevidEmulator]:
    with MakevidEmulator() as emu:
        yield emu
