"""The monitor measures every archived result in the background (specs probed from the file,
motion fidelity against the run's driving clip), once per file, and picks up what a restart
left unmeasured."""

from __future__ import annotations

from pathlib import Path

import av

from services.compare.analysis import analyze
from services.models import TaskStatus
from tests.cli.support import wait_for
from tests.emulators import RunwayEmulator


def _facts(path: Path) -> tuple[int, int, bool]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height, bool(container.streams.audio)


def _state(studio, task_id: str) -> str | None:  # type: ignore[no-untyped-def]
    found = studio.store.analyses([task_id]).get(task_id)
    return found.state if found else None


def test_archived_result_is_measured_in_the_background(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, video, image
):
    runway_emulator.configure(queued_polls=1, polls_to_finish=2)
    studio = make_studio(runway_emulator)
    monitor = make_monitor(studio).start()
    inputs = studio.prepare_inputs(video, image)
    _, (task,) = studio.submit_many(["runway"], inputs)
    wait_for(lambda: _state(studio, task.id) == "done", timeout=60)
    done = studio.get(task.id)
    assert done.status is TaskStatus.SUCCEEDED and done.result_path
    analysis = studio.store.analyses([task.id])[task.id]
    assert analysis.result_path == done.result_path
    assert analysis.output is not None
    width, height, audio = _facts(Path(done.result_path))
    assert (analysis.output.width, analysis.output.height) == (width, height)
    assert analysis.output.has_audio is audio
    # The emulator's result shows no face: a reason, never a made-up number.
    assert analysis.fidelity is not None and analysis.fidelity["score"] is None
    assert analysis.fidelity["reason"]
    # Measured once: nothing left for another analyser.
    assert analyze(studio.store, studio.settings, done) is None
    monitor.stop()


def test_a_restarted_monitor_measures_what_was_left(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, video, image
):
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator)
    task = studio.submit("runway", studio.prepare_inputs(video, image))
    # A CLI-side monitor archives it but measures nothing (it is not the server's).
    done = make_monitor(studio).wait(task.id, timeout=30)
    assert done.result_path and studio.store.analyses([task.id]) == {}
    assert [t.id for t in studio.store.unanalysed()] == [task.id]
    make_monitor(studio).start()
    wait_for(lambda: _state(studio, task.id) == "done", timeout=60)
    assert studio.store.unanalysed() == []
