"""A harness per test: a started emulator, a provider pointed at it with small timeouts, and
the waits the HTTP base asked for (recorded instead of slept, so retries cost no time)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.config import load_settings
from services.http import HttpOptions
from services.providers.base import CreateRequest
from services.providers.registry import provider_class
from services.providers.remote import HttpProvider
from tests.emulators import EMULATORS, Emulator
from tests.emulators.media import tiny_mp4, tiny_png


@dataclass
class Harness:
    emu: Emulator
    provider: HttpProvider
    sleeps: list[float] = field(default_factory=list)
    tmp: Path = Path(".")

    def request(self, **kw: Any) -> CreateRequest:
        """Inputs as links served by the emulator (every provider accepts links)."""
        kw.setdefault("video", self.emu.add_file("drive.mp4", tiny_mp4(), "video/mp4"))
        kw.setdefault("image", self.emu.add_file("face.png", tiny_png(), "image/png"))
        return CreateRequest(**kw)

    def start_task(self, **kw: Any) -> str:
        if self.emu.provider_id == "makevid":
            return self.emu.add_task()
        return self.provider.create(self.request(**kw))

    def poll_until_done(self, task_id: str, limit: int = 20) -> list[Any]:
        seen = []
        for _ in range(limit):
            update = self.provider.poll(task_id)
            seen.append(update)
            if update.status.terminal:
                return seen
        raise AssertionError(f"not terminal after {limit} polls: {seen[-1]}")


def fast_options(sleeps: list[float], **changes: Any) -> HttpOptions:
    base = HttpOptions(
        connect_timeout=1.0,
        read_timeout=2.0,
        write_timeout=2.0,
        pool_timeout=1.0,
        deadline=10.0,
        max_retries=2,
        backoff_initial=0.05,
        backoff_max=0.2,
        sleep=sleeps.append,
    )
    return base.with_(**changes)


def build_provider(
    provider_id: str, tmp: Path, env: dict[str, str], sleeps: list[float], **http: Any
) -> HttpProvider:
    settings = load_settings(env={"REENACT_DATA_DIR": str(tmp / "data"), **env}, secrets={})
    cls = provider_class(provider_id)
    provider = cls(settings, http=fast_options(sleeps, **http))  # type: ignore[call-arg]
    assert isinstance(provider, HttpProvider)
    return provider


MakeHarness = Callable[..., Harness]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[MakeHarness]:
    """harness("runway", key=..., public_url=..., polls_to_finish=..., read_timeout=...)"""
    made: list[Harness] = []

    def make(
        provider_id: str,
        *,
        key: str | None = None,
        public_url: str | None = None,
        http: dict[str, Any] | None = None,
        **config: Any,
    ) -> Harness:
        emu = EMULATORS[provider_id](**config).start()
        env = emu.env()
        if key is not None:
            env[f"REENACT_{provider_id.upper()}_API_KEY"] = key
        if public_url is not None:
            env["REENACT_PUBLIC_URL"] = public_url
        sleeps: list[float] = []
        h = Harness(
            emu,
            build_provider(provider_id, tmp_path, env, sleeps, **(http or {})),
            sleeps,
            tmp_path,
        )
        made.append(h)
        return h

    yield make
    for h in made:
        h.provider.close()
        h.emu.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused: provably never sent)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
