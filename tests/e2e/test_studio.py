"""The issue's browser scenarios, in Debian's Chromium against `streamlit run app.py`."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import AppServer, Media, shot, start_app, stop_app
from tests.e2e.helpers import (
    assert_no_traceback,
    card,
    choose_only,
    clear_input,
    drawn,
    open_create,
    panel,
    progress_value,
    run_id_after_submit,
    submit_button,
    upload,
    wait_video_plays,
)
from tests.emulators import CometApiEmulator, RunwayEmulator

PICKABLE = ["local", "runway", "cometapi"]


def _run_tasks(app: AppServer, run_id: str) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1]))
        for r in app.query("SELECT id, provider FROM tasks WHERE run_id = ?", (run_id,))
    ]


def _task_row(app: AppServer, task_id: str) -> dict[str, object]:
    cols = ("status", "progress", "result_path", "error")
    row = app.query(f"SELECT {', '.join(cols)} FROM tasks WHERE id = ?", (task_id,))[0]
    return dict(zip(cols, row, strict=True))


def _prepare(page: Page, media: Media, providers: list[str], video: Path | None = None) -> None:
    open_create(page)
    choose_only(page, providers, PICKABLE)
    upload(page, "driving_video", video or media.wide)
    upload(page, "character_image", media.face)


def test_upload_submit_watch_play_download(page: Page, app_server: AppServer, media: Media) -> None:
    """The happy path on the offline local engine: a real render, no keys, no network."""
    _prepare(page, media, ["local"], video=media.long)
    for role in ("driving_video", "character_image"):
        box = panel(page, role)
        expect(box.get_by_text("checks passed")).to_be_visible()
    # The clip plays in the page (tests/e2e/test_previews.py); the image shows its face box.
    expect(panel(page, "driving_video").locator("video")).to_have_count(1)
    expect(panel(page, "character_image").locator("img").first).to_be_visible()
    expect(page.get_by_text("Local engine: free")).to_be_visible()
    # The limit set in .streamlit/config.toml (maxUploadSize = 1024 MB) is stated.
    expect(page.get_by_text("Uploads up to 1 GB per file.", exact=False)).to_be_visible()
    shot(page, "create-checked")

    submit = submit_button(page)
    expect(submit).to_be_enabled()
    submit.click()
    run_id = run_id_after_submit(page)
    [(task_id, provider)] = _run_tasks(app_server, run_id)
    assert provider == "local"

    the_card = card(page, task_id)
    expect(the_card).to_be_visible()
    # The bar moves: a value strictly between 0 and 100 shows before it reaches 100.
    bar = f"[class*='st-key-card_'][class*='_{task_id}'] [role=progressbar]"
    try:
        page.wait_for_function(
            """sel => { const b = document.querySelector(sel);
                        const v = b ? Number(b.getAttribute('aria-valuenow')) : 0;
                        return v > 0 && v < 100; }""",
            arg=bar,
            polling=50,
            timeout=90_000,
        )
    except Exception as exc:
        events = app_server.query(
            "SELECT at, status, progress, message FROM task_events WHERE task_id = ?", (task_id,)
        )
        raise AssertionError(
            f"no partial progress shown; task {_task_row(app_server, task_id)}; "
            f"events {events}; bar now {progress_value(the_card)}"
        ) from exc
    expect(the_card.get_by_role("progressbar")).to_have_attribute(
        "aria-valuenow", "100", timeout=60_000
    )
    expect(the_card).to_contain_text("Done")

    facts = wait_video_plays(page, the_card)
    assert facts["duration"] > 0 and facts["width"] > 0
    assert f"/files/{task_id}/" in facts["src"]
    shot(page, "create-done")

    row = _task_row(app_server, task_id)
    archived = Path(str(row["result_path"]))
    assert archived.is_file() and app_server.data_dir in archived.parents
    href = the_card.get_by_role("link", name="Download").get_attribute("href")
    assert href and "download=1" in href
    response = page.request.get(href)
    assert response.ok
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.body() == archived.read_bytes()
    assert_no_traceback(page)


def test_reload_mid_task_keeps_following_it(
    page: Page, app_server: AppServer, media: Media, runway: RunwayEmulator
) -> None:
    runway.configure(seconds_to_finish=6.0)
    try:
        _prepare(page, media, ["runway"])
        submit_button(page).click()
        run_id = run_id_after_submit(page)
        [(task_id, _)] = _run_tasks(app_server, run_id)
        the_card = card(page, task_id)
        expect(the_card).to_contain_text("Rendering", timeout=30_000)
        before = progress_value(the_card) or 0.0
        assert before < 100

        page.reload()
        the_card = card(page, task_id)
        expect(the_card).to_be_visible()
        assert page.url.endswith(f"run={run_id}")
        expect(the_card).to_contain_text("Done", timeout=60_000)
        assert progress_value(the_card) == 100
        wait_video_plays(page, the_card)
        assert _task_row(app_server, task_id)["status"] == "succeeded"
    finally:
        runway.configure(seconds_to_finish=4.0)


def test_server_restart_loses_nothing(
    browser: Browser, tmp_path: Path, media: Media, runway: RunwayEmulator
) -> None:
    runway.configure(seconds_to_finish=8.0)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    servers = [start_app(data_dir, runway.env())]
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=servers[0].url)
    try:
        page = context.new_page()
        _prepare(page, media, ["runway"])
        submit_button(page).click()
        run_id = run_id_after_submit(page)
        [(task_id, _)] = _run_tasks(servers[0], run_id)
        expect(card(page, task_id)).to_contain_text("Rendering", timeout=30_000)

        stop_app(servers[0])
        assert _task_row(servers[0], task_id)["status"] in ("queued", "running")
        servers.append(start_app(data_dir, runway.env()))
        page.goto(f"{servers[1].url}/?run={run_id}")
        the_card = card(page, task_id)
        expect(the_card).to_contain_text("Done", timeout=60_000)
        wait_video_plays(page, the_card)
        page.goto(f"{servers[1].url}/tasks")
        expect(page.get_by_text("1 task", exact=False)).to_be_visible()
        assert _task_row(servers[1], task_id)["status"] == "succeeded"
    finally:
        context.close()
        for server in servers:
            if server.process.poll() is None:
                stop_app(server)
        runway.configure(seconds_to_finish=4.0)


def test_tall_clip_is_blocked_for_cometapi_and_crop_unblocks_it(
    page: Page, app_server: AppServer, media: Media, cometapi: CometApiEmulator
) -> None:
    _prepare(page, media, ["cometapi"], video=media.tall)
    video_box = panel(page, "driving_video")
    expect(video_box).to_contain_text("CometAPI accepts 16:9")
    expect(video_box.get_by_text("Blocks").first).to_be_visible()
    expect(submit_button(page)).to_be_disabled()
    shot(page, "create-blocked")

    video_box.get_by_role("button", name="Crop to 16:9").first.click()
    expect(video_box.get_by_text("After · Crop to 16:9")).to_be_visible(timeout=60_000)
    expect(video_box.get_by_text("Before", exact=True)).to_be_visible()
    expect(video_box.get_by_text("Blocks")).to_have_count(0)
    expect(submit_button(page)).to_be_enabled()
    shot(page, "create-fixed")
    assert_no_traceback(page)


def test_provider_failure_shows_its_sentence(
    page: Page, app_server: AppServer, media: Media, runway: RunwayEmulator
) -> None:
    reason = "The performer's face left the frame for too long"
    runway.configure(fail_reason=reason)
    _prepare(page, media, ["runway"])
    submit_button(page).click()
    run_id = run_id_after_submit(page)
    [(task_id, _)] = _run_tasks(app_server, run_id)
    the_card = card(page, task_id)
    expect(the_card).to_contain_text("Failed", timeout=60_000)
    expect(the_card).to_contain_text(reason)
    assert _task_row(app_server, task_id)["status"] == "failed"
    assert_no_traceback(page)
    shot(page, "create-failed")

    # Retry makes a NEW task (clearly labelled), the failed one stays as it was.
    runway.configure(fail_reason=None)
    drawn(the_card).get_by_role("button", name="Retry", exact=True).click()
    expect(page.get_by_text(f"retry of {task_id}")).to_be_visible(timeout=30_000)
    rows = app_server.query(
        "SELECT id, retry_of, status FROM tasks WHERE run_id = ? ORDER BY created_at", (run_id,)
    )
    assert len(rows) == 2 and rows[0][0] == task_id and rows[1][1] == task_id
    expect(card(page, str(rows[1][0]))).to_contain_text("Done", timeout=60_000)
    assert _task_row(app_server, task_id)["status"] == "failed"


def test_cancel_then_delete_after_confirming(
    page: Page, app_server: AppServer, media: Media, runway: RunwayEmulator
) -> None:
    runway.configure(seconds_to_finish=60.0)
    try:
        _prepare(page, media, ["runway"])
        submit_button(page).click()
        run_id = run_id_after_submit(page)
        [(task_id, _)] = _run_tasks(app_server, run_id)
        the_card = card(page, task_id)
        expect(the_card).to_contain_text("Rendering", timeout=30_000)
        drawn(the_card).get_by_role("button", name="Cancel", exact=True).click()
        expect(the_card).to_contain_text("Canceled", timeout=30_000)
        assert _task_row(app_server, task_id)["status"] == "canceled"
        ptid = app_server.query("SELECT provider_task_id FROM tasks WHERE id = ?", (task_id,))
        assert runway.task(str(ptid[0][0])).canceled

        drawn(the_card).get_by_role("button", name="Delete", exact=True).click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("This cannot be undone")
        dialog.get_by_role("button", name="Keep it").click()
        expect(dialog).to_have_count(0)
        assert app_server.query("SELECT COUNT(*) FROM tasks WHERE id = ?", (task_id,))[0][0] == 1

        drawn(card(page, task_id)).get_by_role("button", name="Delete", exact=True).click()
        page.get_by_role("dialog").get_by_role("button", name="Delete").click()
        expect(card(page, task_id)).to_have_count(0, timeout=30_000)
        assert app_server.query("SELECT COUNT(*) FROM tasks WHERE id = ?", (task_id,))[0][0] == 0
        assert_no_traceback(page)
    finally:
        runway.configure(seconds_to_finish=4.0)


def test_track_a_task_made_elsewhere(
    page: Page, app_server: AppServer, runway: RunwayEmulator
) -> None:
    ptid = runway.add_task()
    page.goto("/tasks")
    page.get_by_role("button", name="Track a task made elsewhere").click()
    page.get_by_role("textbox", name="The provider's task id").fill(ptid)
    page.get_by_role("button", name="Track this task").click()
    expect(page).to_have_url(re.compile(r"[?&]task=[0-9a-f]+"), timeout=30_000)
    task_id = page.url.rsplit("task=", 1)[1]
    the_card = card(page, task_id)
    expect(the_card).to_contain_text("tracked from Runway")
    expect(the_card).to_contain_text("Done", timeout=60_000)
    wait_video_plays(page, the_card)
    row = app_server.query(
        "SELECT provider, provider_task_id, tracked FROM tasks WHERE id = ?", (task_id,)
    )
    assert row == [("runway", ptid, 1)]


def test_double_click_submit_creates_one_task(
    page: Page, app_server: AppServer, media: Media, runway: RunwayEmulator
) -> None:
    _prepare(page, media, ["runway"])
    expect(page.get_by_text("Runway: ≈ $0.18")).to_be_visible()  # $0.05/s × 3.5 s
    tasks_before = app_server.query("SELECT COUNT(*) FROM tasks")[0][0]
    creates_before = runway.stats()["creates"]
    submit_button(page).dblclick()
    run_id = run_id_after_submit(page)
    expect(page.get_by_role("button", name="Submitted")).to_be_visible()
    [(task_id, _)] = _run_tasks(app_server, run_id)
    expect(card(page, task_id)).to_be_visible()
    # A third click on what is now the disabled "Submitted" button changes nothing either.
    page.get_by_role("button", name="Submitted").click(force=True)
    expect(card(page, task_id)).to_contain_text("Done", timeout=60_000)
    assert app_server.query("SELECT COUNT(*) FROM tasks")[0][0] == tasks_before + 1
    assert app_server.query("SELECT COUNT(*) FROM runs WHERE id = ?", (run_id,))[0][0] == 1
    assert runway.stats()["creates"] == creates_before + 1


def test_two_providers_one_click_then_tasks_compare_and_settings(
    page: Page,
    app_server: AppServer,
    media: Media,
    runway: RunwayEmulator,
    cometapi: CometApiEmulator,
) -> None:
    _prepare(page, media, ["runway", "cometapi"])
    submit = page.get_by_role("button", name="Submit to 2 providers")
    expect(submit).to_be_enabled()
    submit.click()
    run_id = run_id_after_submit(page)
    tasks = dict((p, t) for t, p in _run_tasks(app_server, run_id))
    assert set(tasks) == {"runway", "cometapi"}
    for task_id in tasks.values():
        expect(card(page, task_id)).to_contain_text("Done", timeout=60_000)

    # CometAPI takes links only: it was handed this app's published copy of the upload.
    [sent] = [t.body for t in cometapi.tasks.values() if t.body and "video" in t.body][-1:]
    assert sent["video"].startswith(f"{app_server.url}/media/")
    # Published only while a task needs it: both are done, so the link no longer answers
    # (tests/e2e/test_routes.py serves it during a live task).
    assert httpx.get(sent["video"], timeout=10).status_code == 404

    # The run is a comparison: its workspace lists the driving clip and both results.
    page.goto(f"/compare?run={run_id}")
    for task_id in tasks.values():
        expect(page.locator(f".sp-tile[data-id='{task_id}'] video")).to_have_count(1)
    expect(page.locator(".sp-tile[data-id='reference'] video")).to_have_count(1)

    page.goto("/tasks")
    expect(page.get_by_text("Page 1 of")).to_be_visible()
    for task_id in tasks.values():
        expect(page.locator(f".st-key-tl_row_{task_id}")).to_be_visible()
    expect(page.get_by_role("button", name="Older")).to_be_visible()
    shot(page, "tasks")
    # A row's labelled Open link opens its task.
    row = drawn(page.locator(f".st-key-tl_row_{tasks['cometapi']}"))
    row.get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(rf"[?&]task={tasks['cometapi']}"))
    page.get_by_role("button", name="All tasks").click()
    expect(page.get_by_text("Page 1 of")).to_be_visible()

    page.goto(f"/tasks?task={tasks['runway']}")
    expect(page.get_by_text("Provider's task id")).to_be_visible()
    wait_video_plays(page, card(page, tasks["runway"]))
    shot(page, "task-detail")

    page.goto("/settings")
    row = page.locator(".st-key-settings_runway")
    row.get_by_role("button", name="Test connection").click()
    expect(row.get_by_text("Connected")).to_be_visible(timeout=30_000)
    body = page.locator("body").inner_text()
    for emu in (runway, cometapi):
        assert emu.key not in body, "a key reached the page"
    shot(page, "settings")
    assert_no_traceback(page)


def test_paste_a_link_and_a_bad_link(
    page: Page, app_server: AppServer, media: Media, runway: RunwayEmulator
) -> None:
    good = runway.add_file("take-from-the-web.mp4", media.wide.read_bytes(), "video/mp4")
    bad = runway.add_file(
        "not-a-video.mp4", b"<!DOCTYPE html><html><body>Sign in</body></html>", "text/html"
    )
    open_create(page)
    clear_input(page, "driving_video")  # the owner's draft may hold an earlier test's video
    box = panel(page, "driving_video")
    box.get_by_role("tab", name="Paste a link").click()
    box.get_by_role("textbox").fill(bad)
    box.get_by_role("button", name="Fetch").click()
    expect(box.get_by_text("The link leads to a web page, not to a video")).to_be_visible(
        timeout=30_000
    )
    assert_no_traceback(page)

    box.get_by_role("textbox").fill(good)
    box.get_by_role("button", name="Fetch").click()
    expect(box.get_by_text("checks passed")).to_be_visible(timeout=60_000)
    expect(box).to_contain_text("take-from-the-web.mp4")
    expect(box).to_contain_text("from a link")
