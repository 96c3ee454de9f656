"""A file the checks cannot use is refused on the Create page with a sentence and deleted at
once from the uploads folder (it is never kept, or published, for anyone)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from services.publish import sha256_of
from tests.e2e.conftest import AppServer, Media
from tests.e2e.helpers import assert_no_traceback, clear_input, open_create, panel, wait_idle
from tests.mediagen import make_image


def test_refused_uploads_get_a_sentence_and_are_deleted(
    page: Page, app_server: AppServer, media: Media, tmp_path: Path
) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("Just some notes, not a video.\n" * 200)
    # A picture of its own (the session's character image is used by other tests' tasks,
    # and a file a task uses is rightly kept).
    picture = make_image(tmp_path / "face-renamed.png", size=(320, 180)).rename(
        tmp_path / "face-renamed.mp4"
    )
    open_create(page)
    clear_input(page, "driving_video")  # the owner's draft may hold an earlier test's video
    box = panel(page, "driving_video")
    for upload, sentence in (
        (text, "'notes.mp4' is not a video or image this app can read (its content is text)"),
        (picture, "'face-renamed.mp4' is named like a video (.mp4) but is a PNG image."),
    ):
        wait_idle(page)
        box.locator("input[type=file]").set_input_files(str(upload))
        expect(page.get_by_text(sentence).first).to_be_visible(timeout=30_000)
        expect(box.locator("input[type=file]")).to_have_count(1)  # the picker is back
        digest = sha256_of(upload)
        assert not (app_server.data_dir / "uploads" / digest).exists(), "the refused file stayed"
    assert_no_traceback(page)


def test_a_stored_upload_leaves_the_servers_memory(
    page: Page, app_server: AppServer, media: Media
) -> None:
    """Streamlit keeps uploaded bytes for the session unless told otherwise; once the file
    is on disk the app drops them (Streamlit's own metrics list what it still holds)."""
    import httpx

    from tests.e2e.helpers import upload

    open_create(page)
    upload(page, "driving_video", media.long)
    metrics = httpx.get(f"{app_server.url}/_stcore/metrics", timeout=10).text
    held = [line for line in metrics.splitlines() if "UploadedFileManager" in line]
    assert held == [], held
