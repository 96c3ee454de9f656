"""Crash safety with real SIGKILLs: between the create call and its persistence, and in the
middle of a result download. After a restart nothing the provider accepted is missing,
nothing is submitted twice, and every succeeded result ends up archived."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.models import TaskStatus
from tests.cli.support import SlowServer, run, start, wait_for
from tests.emulators import RunwayEmulator
from tests.emulators.media import tiny_mp4


def test_kill_between_create_and_persist_leaves_unknown_never_resubmitted(
    env, video, image, make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    env.update(runway_emulator.env())
    crash = {**env, "REENACT_TEST_CRASH_AFTER_CREATE": "1"}
    r = run(["submit", "--provider", "runway", "--video", video, "--image", image, "--wait"], crash)
    assert r.code == -signal.SIGKILL, r.output
    assert runway_emulator.stats()["creates"] == 1  # the provider accepted it (and charged)

    listed = run(["list", "--json"], env)
    assert listed.code == 0
    [task] = listed.json()
    assert task["status"] == "unknown"
    assert task["provider_task_id"] is None
    assert "not re-sent" in task["error"] and "charged twice" in task["error"]

    # The app restarting (its monitor) and the CLI looking at it never send it again.
    studio = make_studio(runway_emulator)
    monitor = make_monitor(studio)
    for _ in range(3):
        monitor.tick()
    status = run(["status", task["id"], "--json"], env)
    assert status.code == 1 and status.json()["status"] == "unknown"
    assert studio.get(task["id"]).status is TaskStatus.UNKNOWN
    assert runway_emulator.stats()["creates"] == 1
    assert len(runway_emulator.tasks) == 1


class _SlowResultRunway(RunwayEmulator):
    """Runway whose result links point at a server that drips the file out."""

    slow_server: SlowServer

    def result_url(self, task_id: str) -> str:
        return self.slow_server.url(f"{task_id}.mp4")


# A real MP4 head (the archive checks the type) padded past the 1 MiB the downloader buffers
# before its first write, so a killed download reliably leaves a partial file behind.
RESULT = tiny_mp4() + bytes(4 * 1024 * 1024)


@pytest.fixture
def slow_runway() -> Iterator[_SlowResultRunway]:
    slow = SlowServer(RESULT, chunk=64 * 1024, pause=0.1)
    emu = _SlowResultRunway()
    emu.slow_server = slow
    with emu:
        yield emu
    slow.close()


def test_kill_during_result_download_then_restart_archives_it(
    env, data_dir: Path, video, image, slow_runway: _SlowResultRunway
):
    env.update(slow_runway.env())
    slow = slow_runway.slow_server
    proc = start(
        ["submit", "--provider", "runway", "--video", video, "--image", image, "--wait"], env
    )
    try:
        part = wait_for(
            lambda: next(iter((data_dir / "results").glob("*/result.part")), None),
            timeout=60,
            what="the download to start",
        )
        wait_for(lambda: part.stat().st_size > 0, what="some bytes on disk")
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    task_id = part.parent.name
    assert not (part.parent / "result.mp4").exists()  # killed mid-way: nothing final yet

    listed = run(["list", "--json"], env).json()
    assert [(t["id"], t["status"], t["result_path"]) for t in listed] == [
        (task_id, "succeeded", None)
    ]

    slow.slow.clear()  # the file server is quick now; the restarted process takes over
    r = run(["status", task_id, "--json"], env)
    assert r.code == 0, r.output
    doc = r.json()
    archived = Path(doc["result_path"])
    assert archived == data_dir.resolve() / "results" / task_id / "result.mp4"
    assert archived.read_bytes() == RESULT
    assert not list(archived.parent.glob("*.part"))
    assert slow.hits == 2  # one interrupted download, one complete: no more
    assert slow_runway.stats()["creates"] == 1
