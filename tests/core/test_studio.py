"""Studio verbs against a real loopback emulator and a real SQLite file: nothing paid for is
lost or charged twice when cancel/delete/recovery race a create or a result."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from services.config import load_settings
from services.errors import ConfigError, InputError
from services.models import TaskInputs, TaskStatus
from services.studio import Studio
from tests.emulators import RunwayEmulator


def _studio(tmp_path: Path, env: dict[str, str]) -> Studio:
    settings = load_settings(env={"REENACT_DATA_DIR": str(tmp_path / "data"), **env}, secrets={})
    return Studio(settings)


def _wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _inputs(tmp_path: Path) -> TaskInputs:
    from tests.mediagen import make_image, make_video

    video = make_video(tmp_path / "drive.mp4", size=(160, 90), seconds=3.0, fps=8)
    image = make_image(tmp_path / "face.png", size=(320, 180))
    return TaskInputs(video=str(video), image=str(image))


def test_delete_and_cancel_refuse_a_task_being_submitted(
    tmp_path: Path, runway_emulator: RunwayEmulator
) -> None:
    studio = _studio(tmp_path, runway_emulator.env())
    inputs = _inputs(tmp_path)
    runway_emulator.fault("slow", route="create", delay=2.0)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(studio.submit("runway", inputs)))
    worker.start()
    try:
        _wait_until(lambda: studio.store.list_tasks(status=TaskStatus.SUBMITTING))
        (task,) = studio.store.list_tasks(status=TaskStatus.SUBMITTING)
        with pytest.raises(InputError, match="being submitted"):
            studio.delete(task.id)
        with pytest.raises(InputError, match="being submitted"):
            studio.cancel(task.id)
        # The submitter is alive on this host: recovery must not call it unknown.
        assert studio.recover_interrupted() == []
    finally:
        worker.join(30)
    (done,) = result
    assert done.status is TaskStatus.QUEUED and done.provider_task_id
    assert runway_emulator.create_count == 1


def test_cancel_keeps_a_result_that_landed_meanwhile(
    tmp_path: Path, runway_emulator: RunwayEmulator
) -> None:
    studio = _studio(tmp_path, runway_emulator.env())
    task = studio.submit("runway", _inputs(tmp_path))
    runway_emulator.fault("slow", route="cancel", delay=2.0)
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(studio.cancel(task.id)))
    worker.start()
    _wait_until(lambda: runway_emulator.route_counts.get("cancel"))
    # The monitor wins the race: the task succeeded while the cancel call was in flight.
    studio.store.update_task(task.id, status=TaskStatus.SUCCEEDED, progress=1.0)
    worker.join(30)
    assert outcome and outcome[0].status is TaskStatus.SUCCEEDED
    stored = studio.store.get_task(task.id)
    assert stored is not None and stored.status is TaskStatus.SUCCEEDED


def test_compare_checks_every_provider_before_charging_any(
    tmp_path: Path, runway_emulator: RunwayEmulator
) -> None:
    env = {**runway_emulator.env(), "REENACT_MAKEVID_API_KEY": "k", "REENACT_COMETAPI_API_KEY": "k"}
    studio = _studio(tmp_path, env)
    inputs = _inputs(tmp_path)
    with pytest.raises(ConfigError, match="reenact track"):
        studio.submit_many(["runway", "makevid"], inputs)
    # CometAPI takes links only; local files without REENACT_PUBLIC_URL cannot reach it.
    with pytest.raises(InputError, match="only accepts links"):
        studio.submit_many(["runway", "cometapi"], inputs)
    assert runway_emulator.create_count == 0
    assert studio.store.count_tasks() == 0


def test_a_comparison_one_provider_cannot_take_is_refused_before_anything_is_sent(
    tmp_path: Path, runway_emulator: RunwayEmulator
) -> None:
    """The money rule lives in Studio, not only on the Create page: a character video that
    the local engine cannot take stops the whole comparison before Runway is charged."""
    from tests.mediagen import make_video

    studio = _studio(tmp_path, runway_emulator.env())
    inputs = _inputs(tmp_path)
    character = make_video(tmp_path / "character.mp4", size=(160, 90), seconds=2.0, fps=8)
    with_video = inputs.model_copy(update={"character_video": str(character)})
    with pytest.raises(InputError, match="cannot take a character video"):
        studio.submit_many(["runway", "local"], with_video)
    assert runway_emulator.create_count == 0
    assert studio.store.count_tasks() == 0 and studio.store.list_runs() == []
