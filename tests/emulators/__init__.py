"""Loopback emulators of the providers' HTTP APIs (real servers on 127.0.0.1).

    with RunwayEmulator(polls_to_finish=2) as emu:
        os.environ.update(emu.env())
        emu.fault("rate_limit", route="poll", retry_after="1")

Standalone: `python -m tests.emulators runway --port 8765` prints its URL and key.
"""

from __future__ import annotations

from tests.emulators.base import Emulator, Fault, Lifecycle
from tests.emulators.cometapi import CometApiEmulator
from tests.emulators.liangxin import LiangXinEmulator
from tests.emulators.makevid import MakevidEmulator
from tests.emulators.runway import RunwayEmulator

EMULATORS: dict[str, type[Emulator]] = {
    "cometapi": CometApiEmulator,
    "liangxin": LiangXinEmulator,
    "runway": RunwayEmulator,
    "makevid": MakevidEmulator,
}

__all__ = [
    "EMULATORS",
    "CometApiEmulator",
    "Emulator",
    "Fault",
    "LiangXinEmulator",
    "Lifecycle",
    "MakevidEmulator",
    "RunwayEmulator",
]
