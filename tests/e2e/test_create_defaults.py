"""Create page, issue 11: no paid provider chosen for the creator, the form (inputs, providers,
options) kept across reload and server restart, the run brought into view after Submit, and a
wrong file answered with a sentence and never kept."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from streamlit.testing.v1 import AppTest

from services.models import LOCAL_OWNER
from services.publish import sha256_of
from services.runtime import close_process_runtime
from services.store import Store
from tests.e2e.conftest import ARTIFACTS, AppServer, Media, shot, start_app, stop_app
from tests.e2e.helpers import (
    assert_no_traceback,
    card,
    choose_only,
    clear_input,
    open_create,
    panel,
    run_id_after_submit,
    submit_button,
    upload,
    wait_idle,
)
from tests.emulators import CometApiEmulator, RunwayEmulator
from tests.mediagen import make_image, make_video

ROOT = Path(__file__).resolve().parents[2]
PICKABLE = ["local", "runway", "cometapi"]
LAPTOP = {"width": 1280, "height": 800}


def _box(page: Page, provider_id: str) -> Locator:
    return page.locator(f".st-key-provider_row_{provider_id} input[type=checkbox]")


def _expect_ticked(page: Page, ticked: set[str]) -> None:
    for pid in PICKABLE:
        expect(_box(page, pid)).to_be_checked(checked=pid in ticked)


def _draft(app: AppServer) -> dict[str, object] | None:
    rows = app.query("SELECT value FROM preferences WHERE key = ?", (f"draft:{LOCAL_OWNER}",))
    return json.loads(str(rows[0][0])) if rows else None


def _wait_draft(app: AppServer, providers: list[str], seed: int) -> None:
    """The form is stored (the run after a change writes it) before the test reloads."""
    deadline = time.monotonic() + 30
    while True:
        draft = _draft(app) or {}
        options = draft.get("options") or {}
        assert isinstance(options, dict)
        if draft.get("providers") == providers and options.get("seed") == seed:
            return
        assert time.monotonic() < deadline, f"the stored draft is {draft}"
        time.sleep(0.1)  # polling a condition with a deadline


def _expect_form(page: Page, media: Media, seed: str) -> None:
    """Runway alone, both inputs back from their stored files, the seed as typed."""
    _expect_ticked(page, {"runway"})
    for role, path in (("driving_video", media.wide), ("character_image", media.face)):
        box = panel(page, role)
        expect(box.get_by_role("button", name="Replace")).to_be_visible()
        expect(box).to_contain_text(path.name)
        expect(box.locator("input[type=file]")).to_have_count(0)
    expect(page.get_by_label("Seed", exact=True)).to_have_value(seed)
    expect(submit_button(page)).to_have_accessible_name(re.compile(r"^Submit · ≈ \$\d+\.\d\d$"))
    expect(submit_button(page)).to_be_enabled()


def test_fresh_browser_gets_the_local_engine_and_the_form_survives_reload_and_restart(
    browser: Browser,
    tmp_path: Path,
    media: Media,
    runway: RunwayEmulator,
    cometapi: CometApiEmulator,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**runway.env(), **cometapi.env()}
    servers = [start_app(data_dir, env)]
    context = browser.new_context(viewport=LAPTOP, base_url=servers[0].url)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        open_create(page)
        # Both paid providers have keys; neither is chosen for the creator.
        expect(page.locator(".st-key-provider_row_runway")).to_be_visible()
        expect(page.locator(".st-key-provider_row_cometapi")).to_be_visible()
        _expect_ticked(page, {"local"})

        choose_only(page, ["runway"], PICKABLE)
        upload(page, "driving_video", media.wide)
        upload(page, "character_image", media.face)
        seed = page.get_by_label("Seed", exact=True)
        seed.fill("7")
        seed.press("Enter")
        wait_idle(page)
        _expect_form(page, media, "7")
        _wait_draft(servers[0], ["runway"], seed=7)

        page.reload()
        _expect_form(page, media, "7")

        # Ticking Local engine as well, then unticking Runway: exactly that choice comes back,
        # never more.
        choose_only(page, ["local"], PICKABLE)
        _wait_draft(servers[0], ["local"], seed=7)
        page.reload()
        _expect_ticked(page, {"local"})
        choose_only(page, ["runway"], PICKABLE)
        _wait_draft(servers[0], ["runway"], seed=7)

        stop_app(servers[0])
        servers.append(start_app(data_dir, env))
        page.goto(f"{servers[1].url}/")
        _expect_form(page, media, "7")
        assert_no_traceback(page)
    finally:
        context.close()
        for server in servers:
            if server.process.poll() is None:
                stop_app(server)


def test_after_submit_the_run_is_in_view_at_laptop_size(
    browser: Browser, app_server: AppServer, media: Media
) -> None:
    context = browser.new_context(viewport=LAPTOP, base_url=app_server.url)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        open_create(page)
        choose_only(page, ["runway"], PICKABLE)
        upload(page, "driving_video", media.wide)
        upload(page, "character_image", media.face)
        button = submit_button(page)
        # A paid submit says what it costs where it is clicked.
        expect(button).to_have_accessible_name(re.compile(r"^Submit · ≈ \$\d+\.\d\d$"))
        button.click()
        run_id = run_id_after_submit(page)
        [(task_id,)] = app_server.query("SELECT id FROM tasks WHERE run_id = ?", (run_id,))
        first = card(page, str(task_id))
        expect(first).to_be_attached()
        # In view: its top edge inside the window (waiting out the smooth scroll).
        page.wait_for_function(
            """sel => { const el = document.querySelector(sel);
                        if (!el) return false;
                        const r = el.getBoundingClientRect();
                        return r.height > 0 && r.top >= 0 && r.top < window.innerHeight; }""",
            arg=f"[class*='st-key-card_'][class*='_{task_id}']",
            timeout=30_000,
        )
        box = first.bounding_box()
        assert box is not None and 0 <= box["y"] < LAPTOP["height"], box
        # It took a scroll: the page did not simply happen to be short enough.
        scrolled = page.evaluate(
            "() => document.querySelector('[data-testid=\"stMain\"]').scrollTop"
        )
        assert scrolled > 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "create-submitted-1280x800.png"))  # what one sees
        assert_no_traceback(page)
    finally:
        context.close()


def test_a_wrong_kind_of_file_gets_a_sentence_and_is_not_kept(
    page: Page, app_server: AppServer, tmp_path: Path
) -> None:
    # Content of their own, so no earlier test (or task) holds the same stored file.
    picture = make_image(tmp_path / "portrait.png", size=(500, 300))
    clip = make_video(tmp_path / "dance.mp4", size=(200, 112), seconds=1.5, fps=10)
    open_create(page)
    for role, dropped, sentence in (
        (
            "driving_video",
            picture,
            "This is an image (portrait.png) — drop it on Character image.",
        ),
        ("character_image", clip, "This is a video (dance.mp4) — drop it on Driving video."),
    ):
        clear_input(page, role)
        box = panel(page, role)
        picker = box.locator("input[type=file]")
        # Any file is accepted by the browser (no type filter, so no red chip).
        assert not picker.get_attribute("accept")
        wait_idle(page)
        picker.set_input_files(str(dropped))
        expect(box.get_by_text(sentence)).to_be_visible(timeout=30_000)
        shot(page, f"create-wrong-file-{role}")
        expect(box.locator("input[type=file]")).to_have_count(1)  # a fresh uploader
        wait_idle(page)
        assert not (app_server.data_dir / "uploads" / sha256_of(dropped)).exists()
    assert_no_traceback(page)


# ---------------------------------------------------------------- a draft read back (AppTest)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import os

    from components.providers import provider_infos

    for name in list(os.environ):
        if name.startswith(("REENACT_", "RUNWAYML_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REENACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REENACT_RUNWAY_API_KEY", "sk-test")
    monkeypatch.chdir(tmp_path)
    close_process_runtime()
    provider_infos.clear()
    yield tmp_path / "data"
    close_process_runtime()
    provider_infos.clear()


def test_a_stored_draft_is_validated_when_read_back(data: Path, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", size=(320, 180), seconds=1.5, fps=10)
    stored = data / "uploads" / sha256_of(video) / "clip.mp4"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(video.read_bytes())
    store = Store(f"sqlite:///{data / 'reenact.db'}")
    store.set_pref(
        f"draft:{LOCAL_OWNER}",
        {
            "inputs": {
                "driving_video": {
                    "path": str(stored),
                    "name": "clip.mp4",
                    "url": "javascript:alert(1)",
                },
                "character_image": {"path": str(data / "uploads" / "gone.png"), "name": "me.png"},
                "character_video": {"path": "/etc/passwd", "name": "passwd"},
                "nonsense_role": {"path": str(stored), "name": "x"},
            },
            "providers": ["runway", "made-up-provider"],
            "options": {"seed": 42, "expression_intensity": 99},
        },
    )
    store.close()

    at = AppTest.from_file(str(ROOT / "pages" / "create.py"), default_timeout=60).run()
    assert not at.exception
    assert {c.label: c.value for c in at.checkbox} == {"Local engine": False, "Runway": True}
    captions = "\n".join(c.value for c in at.caption)
    assert "The character image from last time (me.png) is no longer stored" in captions
    assert "clip.mp4" in captions  # the driving video is back, by its stored file
    assert next(n for n in at.number_input if n.key == "opt_seed").value == 42
    # The out-of-range intensity was dropped, not trusted: the slider is at its default.
    assert next(s for s in at.slider if s.key == "opt_intensity").value == 3
    assert at.session_state["input_driving_video"]["url"] is None  # not a web link
    # A path outside the uploads folder is never taken as an input.
    assert at.session_state["input_character_video"] is None
    assert at.session_state["input_character_image"] is None
