"""A creator with only a CometAPI key and an S3 bucket (no public address): the upload reaches
CometAPI as a presigned link from the bucket (its emulator fetches it), the result comes back,
plays and downloads, and is streamed from the bucket once the local copy is gone. Settings
says which route each provider's files take."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import AppServer, Media, shot, start_app, stop_app
from tests.e2e.helpers import (
    assert_no_traceback,
    card,
    choose_only,
    open_create,
    run_id_after_submit,
    submit_button,
    upload,
    wait_video_plays,
)
from tests.emulators import CometApiEmulator
from tests.s3 import S3Server

PICKABLE = ["local", "cometapi"]


def _result_row(app: AppServer, run_id: str) -> tuple[str, str]:
    [(task_id, result_path)] = app.query(
        "SELECT id, result_path FROM tasks WHERE run_id = ?", (run_id,)
    )
    return str(task_id), str(result_path)


def test_only_a_cometapi_key_and_a_bucket_upload_to_result(
    browser: Browser,
    tmp_path: Path,
    media: Media,
    cometapi: CometApiEmulator,
    s3_server: S3Server,
) -> None:
    cometapi.configure(fetch_inputs=True)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app = start_app(data_dir, {**cometapi.env(), **s3_server.env()}, public_url=False)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=app.url)
    context.set_default_timeout(30_000)
    try:
        page = context.new_page()
        open_create(page)
        choose_only(page, ["cometapi"], PICKABLE)
        upload(page, "driving_video", media.wide)
        upload(page, "character_image", media.face)
        submit = submit_button(page)
        expect(submit).to_be_enabled(timeout=60_000)
        submit.click()
        run_id = run_id_after_submit(page)

        # CometAPI fetched both inputs from the bucket: presigned links, real types.
        fetched = sorted((f.content_type, f.status) for f in cometapi.fetched)
        assert fetched == [("image/png", 200), ("video/mp4", 200)]
        assert all("X-Amz-Signature=" in f.url for f in cometapi.fetched)
        assert media.wide.read_bytes() in [f.body for f in cometapi.fetched]

        page.wait_for_function(
            "() => document.querySelector('[class*=st-key-card_] video') !== null",
            timeout=90_000,
        )
        task_id, result_path = _result_row(app, run_id)
        the_card = card(page, task_id)
        facts = wait_video_plays(page, the_card)
        assert f"/files/{task_id}/" in facts["src"]
        shot(page, "bucket-result")
        archived = Path(result_path)
        key = f"studio/results/{task_id}/result.mp4"
        assert s3_server.body(key) == archived.read_bytes()
        # The task ended: its inputs left the bucket (the app's monitor deleted them).
        _wait_no_inputs(s3_server)

        # The local copy is a cache: without it, /files streams the bucket's copy, seekable.
        archived.unlink()
        whole = httpx.get(f"{app.url}/files/{task_id}/result.mp4?download=1", timeout=30)
        assert whole.status_code == 200
        assert whole.content == s3_server.body(key)
        assert whole.headers["content-disposition"].startswith("attachment")
        part = httpx.get(
            f"{app.url}/files/{task_id}/result.mp4", headers={"Range": "bytes=0-99"}, timeout=30
        )
        assert part.status_code == 206 and part.content == whole.content[:100]
        assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"

        # Settings says which way each provider gets the files.
        page.goto(f"{app.url}/settings")
        # CometAPI and LiangXin take links only: both go through the bucket.
        expect(page.get_by_text("presigned link from the bucket", exact=True)).to_have_count(2)
        expect(page.get_by_text("the file itself", exact=True).first).to_be_attached()
        expect(page.get_by_text("Bucket:", exact=False)).to_be_visible()
        assert_no_traceback(page)
    finally:
        context.close()
        stop_app(app)


def _wait_no_inputs(s3: S3Server, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while s3.keys("studio/inputs/"):
        assert time.monotonic() < deadline, f"inputs left in the bucket: {s3.keys()}"
        time.sleep(0.1)
