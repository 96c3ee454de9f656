"""With REENACT_RENDER_WORKERS=external, a local render no worker holds says so on the Tasks
page and on its card (through Streamlit's AppTest), and stops saying it once a worker takes
the job — read from the shared render queue, as the provider's poll does."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from services.config import load_settings
from services.engine.render_queue import RenderQueue
from services.lifecycle import Holder
from services.models import TaskInputs, TaskStatus
from services.studio import Studio
from tests.e2e.test_components import ROOT, _page, _texts, env  # noqa: F401 - `env` is a fixture


def _progress_texts(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def _task_list() -> AppTest:
    """The Tasks page through the app's navigation (its rows link to a registered page)."""
    at = AppTest.from_file(str(ROOT / "ui.py"), default_timeout=60)
    at.switch_page("pages/tasks.py")
    at.run()
    assert not at.exception
    return at


def test_a_render_nobody_holds_says_it_waits_for_a_render_worker(
    env: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.mediagen import make_image, make_video

    monkeypatch.setenv("REENACT_RENDER_WORKERS", "external")
    video = make_video(tmp_path / "drive.mp4", size=(160, 90), seconds=2.0, fps=8)
    image = make_image(tmp_path / "face.png", size=(320, 180))
    settings = load_settings()
    studio = Studio(settings)
    try:
        task = studio.submit("local", TaskInputs(video=str(video), image=str(image)))
        assert task.status is TaskStatus.QUEUED and task.provider_task_id, task.error

        assert "Waiting for a render worker" in _texts(_task_list())
        card = _page("tasks")
        card.query_params["task"] = task.id
        card.run()
        assert not card.exception
        assert "Queued · waiting for a render worker" in _progress_texts(card)

        # A worker takes the job (the claim `reenact worker` makes): the words go.
        job = RenderQueue.for_settings(settings).claim(Holder.here(), lease_s=60)
        assert job is not None and job.id == task.provider_task_id
        card.run()
        assert "Queued · waiting for the provider to start" in _progress_texts(card)
        assert "Waiting for a render worker" not in _texts(_task_list())
    finally:
        studio.close()
