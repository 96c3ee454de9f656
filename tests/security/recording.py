"""Emulators that keep every request they received (method, raw path, query, headers), so a
test can prove where a request went — or that none was sent at all."""

from __future__ import annotations

from typing import Any

from tests.emulators import MakevidEmulator, RunwayEmulator
from tests.emulators.base import Emulator, Request, Response


class _Recording:
    seen: list[Request]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.seen = []

    def dispatch(self, req: Request) -> Response:
        if not req.path.startswith("/_control"):
            with self.lock:  # type: ignore[attr-defined]
                self.seen.append(req)
        return super().dispatch(req)  # type: ignore[misc]

    def paths(self) -> list[str]:
        with self.lock:  # type: ignore[attr-defined]
            return [r.path for r in self.seen]


class RecordingRunway(_Recording, RunwayEmulator):
    pass


class RecordingMakevid(_Recording, MakevidEmulator):
    pass


RECORDING: dict[str, type[Emulator]] = {"runway": RecordingRunway, "makevid": RecordingMakevid}
