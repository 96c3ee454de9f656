"""Failures read consistently (issue 11, items 5 and 10): a moderation failure offers other
inputs instead of Retry, the advice names the input the provider blamed, a failed task shows
no stale progress, a task the provider has not started reads as queued, and expected input
errors leave one log line, not a traceback.

Cards through Streamlit's AppTest on tasks seeded in a Store on the app's data dir; the log
through the real app server and Chromium."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from streamlit.testing.v1 import AppTest

from components.format import waiting_to_start
from services.errors import InputError, ReenactError
from services.models import Task, TaskInputs, TaskOptions, TaskStatus, shown_progress
from services.providers.remote import failed_update
from services.runtime import close_process_runtime
from services.store import Store
from tests.e2e.conftest import AppServer
from tests.e2e.helpers import assert_no_traceback, open_create, panel, wait_idle


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import os

    for name in list(os.environ):
        if name.startswith(("REENACT_", "RUNWAYML_")):
            monkeypatch.delenv(name)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("REENACT_DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)  # no stray .streamlit/secrets.toml from the repo's cwd
    _clear_caches()
    yield data
    _clear_caches()


def _clear_caches() -> None:
    from components.providers import provider_infos

    close_process_runtime()
    provider_infos.clear()


def _seed(data_dir: Path, **fields: object) -> Task:
    """A local-engine task (so Retry is possible at all) moved to the given fields."""
    store = Store(f"sqlite:///{data_dir / 'reenact.db'}")
    try:
        task, _ = store.create_task(
            "local",
            status=TaskStatus.QUEUED,
            inputs=TaskInputs(video="/v.mp4", image="/i.png"),
            options=TaskOptions(),
        )
        updated = store.update_task(task.id, **fields)
        assert updated is not None
        return updated
    finally:
        store.close()


def _cards_of(task_id: str) -> None:
    from components.common import get_studio
    from components.task_card import task_cards

    task_cards(get_studio().store.get_tasks([task_id]), key="t")


def _render(task: Task) -> AppTest:
    at = AppTest.from_function(_cards_of, args=(task.id,), default_timeout=30).run()
    assert not at.exception
    return at


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in (at.error, at.warning, at.info):
        parts += [e.value for e in kind]
    parts += [str(getattr(e, "text", "")) for e in at.get("progress")]
    return "\n".join(str(p) for p in parts)


def _buttons(at: AppTest) -> set[str]:
    return {b.label for b in at.button}


def test_a_moderation_failure_offers_other_inputs_not_retry(data_dir: Path) -> None:
    update = failed_update(
        "Runway", "The input image was flagged by content moderation.", code="SAFETY.INPUT.IMAGE"
    )
    task = _seed(
        data_dir,
        status=TaskStatus.FAILED,
        error=update.error,
        error_kind=update.error_kind,
        progress=0.6,
    )
    at = _render(task)
    text = _texts(at)
    assert "content moderation refused this task" in text
    assert "Use other inputs" in text
    assert "Retry" not in _buttons(at), "a retry of refused content is refused again"
    assert "Delete" in _buttons(at)


def test_an_ordinary_failure_still_offers_retry(data_dir: Path) -> None:
    task = _seed(
        data_dir, status=TaskStatus.FAILED, error="The engine found no face.", progress=0.6
    )
    at = _render(task)
    assert "Retry" in _buttons(at)
    assert "Use other inputs" not in _texts(at)


def test_image_blaming_words_get_image_advice(data_dir: Path) -> None:
    update = failed_update("CometAPI", "No face detected in the character image")
    task = _seed(
        data_dir, status=TaskStatus.FAILED, error=update.error, error_kind=update.error_kind
    )
    text = _texts(_render(task))
    assert "character image" in text.split("said:")[-1]
    assert "driving video" not in text, "the provider blamed the image, not the video"

    video = failed_update("CometAPI", "The driving video is too dark to track")
    assert video.error is not None and "driving video" in video.error.split("”")[-1]
    assert "character image" not in video.error.split("”")[-1]


def test_a_failed_task_shows_no_stale_progress(data_dir: Path) -> None:
    task = _seed(data_dir, status=TaskStatus.FAILED, error="It broke.", progress=0.6)
    assert task.progress == 0.6  # what the store kept from the last poll
    assert shown_progress(task) is None
    at = _render(task)
    assert "60%" not in _texts(at) and "60 %" not in _texts(at)
    assert not at.get("progress"), "no bar at all for a failed task"

    canceled = _seed(data_dir, status=TaskStatus.CANCELED, progress=0.6)
    assert shown_progress(canceled) is None
    done = _seed(data_dir, status=TaskStatus.SUCCEEDED, progress=0.6)
    assert shown_progress(done) == 1.0


def test_running_at_zero_percent_reads_as_queued(data_dir: Path) -> None:
    task = _seed(data_dir, status=TaskStatus.RUNNING, progress=0.0)
    assert waiting_to_start(task)
    text = _texts(_render(task))
    assert "Queued" in text
    assert "Rendering" not in text

    moving = _seed(data_dir, status=TaskStatus.RUNNING, progress=0.25)
    assert not waiting_to_start(moving)
    assert "Rendering · 25%" in _texts(_render(moving))


def test_an_expected_error_is_one_log_line_and_a_bug_keeps_its_traceback(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from streamlit import error_util

    import app  # installs the filter on Streamlit's uncaught-exception logger

    assert app.on_script_error is not None
    with caplog.at_level(logging.INFO):
        error_util._log_uncaught_app_exception(InputError("'notes.mp4' is not a video."))
    [record] = [r for r in caplog.records if r.name == "streamlit.error_util"]
    assert record.exc_info is None and record.levelno == logging.WARNING
    assert record.getMessage() == "Refused on a page: 'notes.mp4' is not a video."
    caplog.clear()

    try:
        raise RuntimeError("a real bug")
    except RuntimeError as bug_raised:
        with caplog.at_level(logging.INFO):
            error_util._log_uncaught_app_exception(bug_raised)
    [bug] = [r for r in caplog.records if r.name == "streamlit.error_util"]
    assert bug.exc_info is not None and "Traceback" in caplog.text
    caplog.clear()

    def refuse() -> None:
        from components.common import sentences
        from services.errors import InputError

        with sentences("fetching the link"):
            raise InputError("Add https:// to the link: https://example.com/a.mp4")

    with caplog.at_level(logging.DEBUG, logger="reenact.ui"):
        at = AppTest.from_function(refuse, default_timeout=30).run()
    assert "Add https" in at.error[0].value and "example.com/a.mp4" in at.error[0].value
    mine = [r for r in caplog.records if r.name == "reenact.ui"]
    assert len(mine) <= 1 and all(r.exc_info is None for r in mine)
    assert all(r.levelno <= logging.WARNING for r in mine)
    assert isinstance(InputError("x"), ReenactError)


def test_bad_links_and_files_leave_no_traceback_in_the_server_log(
    page: Page, app_server: AppServer, tmp_path: Path
) -> None:
    before = len(app_server.log_text())
    open_create(page)
    box = panel(page, "driving_video")
    # A draft kept for this owner may show an earlier test's video: bring the inputs back.
    link_tab = box.get_by_role("tab", name="Paste a link")
    replace = box.get_by_role("button", name="Replace")
    expect(link_tab.or_(replace).first).to_be_visible(timeout=30_000)
    if replace.count():
        replace.click()
    link_tab.click()
    box.get_by_role("textbox").fill("example.com/clip.mp4")
    box.get_by_role("button", name="Fetch").click()
    expect(box.get_by_text("Add https:// to the link: https://example.com/clip.mp4")).to_be_visible(
        timeout=30_000
    )

    notes = tmp_path / "notes.mp4"
    notes.write_text("Just some notes, not a video.\n" * 200)
    box.get_by_role("tab", name="Upload").click()
    wait_idle(page)
    box.locator("input[type=file]").set_input_files(str(notes))
    expect(page.get_by_text("'notes.mp4' is not a video or image").first).to_be_visible(
        timeout=30_000
    )
    assert_no_traceback(page)
    log = app_server.log_text()[before:]
    assert "Traceback" not in log, log
    assert log.count("example.com/clip.mp4") <= 1, log
