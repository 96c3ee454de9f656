"""Create's previews in Chromium: the uploaded driving clip and a fix's result play in the
page, streamed from disk by GET /uploads/<digest>/<name> (Range requests, never through the
session), and that address answers only the person who stored the file."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import AppServer, Media, shot, start_app, stop_app
from tests.e2e.helpers import (
    assert_no_traceback,
    choose_only,
    open_create,
    panel,
    upload,
    wait_idle,
    wait_video_plays,
)
from tests.e2e.test_sign_in import ALICE, BOB, SignedInApp, _sign_in, oidc  # noqa: F401
from tests.mediagen import make_video

PICKABLE = ["local", "runway", "cometapi"]
UPLOAD_URL = re.compile(r"/uploads/([0-9a-f]{64})/([^/?#]+)$")


def _plays(page: Page, box: Locator, index: int = 0) -> str:
    """The index-th player in `box` plays (its clock advances, a frame is decoded) from the
    uploads route; returns its address."""
    player = box.locator("video").nth(index)
    state = wait_video_plays(page, player.locator(".."))
    handle = player.element_handle()
    assert handle is not None
    page.wait_for_function("v => v.readyState >= 2", arg=handle, timeout=30_000)
    src = str(state["src"])
    assert UPLOAD_URL.search(src), src  # our route, not Streamlit's in-memory media
    return src


def test_the_driving_clip_and_a_fixs_result_play_in_the_page(
    page: Page, app_server: AppServer, media: Media
) -> None:
    open_create(page)
    choose_only(page, ["cometapi"], PICKABLE)
    upload(page, "driving_video", media.tall)
    box = panel(page, "driving_video")
    src = _plays(page, box)
    shot(page, "create-preview")
    assert src.startswith(app_server.url) and src.endswith("/phone-clip.mp4")
    digest = UPLOAD_URL.search(src).group(1)  # type: ignore[union-attr]
    stored = app_server.data_dir / "uploads" / digest / "phone-clip.mp4"
    assert stored.read_bytes() == media.tall.read_bytes()

    # Streamed from disk with Range support, like a result.
    part = httpx.get(src, headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206 and part.content == stored.read_bytes()[:100]
    assert part.headers["content-type"] == "video/mp4"
    assert part.headers["x-content-type-options"] == "nosniff"

    box.get_by_role("button", name="Crop to 16:9").first.click()
    expect(box.get_by_text("After · Crop to 16:9")).to_be_visible(timeout=60_000)
    expect(box.get_by_text("Before", exact=True)).to_be_visible()
    expect(box.locator("video")).to_have_count(2)
    assert _plays(page, box, 0) == src  # before: the upload itself
    after = _plays(page, box, 1)
    assert after.endswith("/phone-clip-cropped.mp4") and after != src
    fixed = httpx.get(after, timeout=10)
    assert fixed.status_code == 200 and fixed.content[4:8] == b"ftyp"
    shot(page, "create-preview-fixed")

    # The owner's record of the fix result is what lets the route answer for it.
    made = app_server.query(
        "SELECT owner FROM uploads WHERE path LIKE ?", ("%/phone-clip-cropped.mp4",)
    )
    assert made and made[0][0]
    assert_no_traceback(page)


def test_a_clip_browsers_cannot_play_shows_its_thumbnail_until_converted(
    page: Page, app_server: AppServer, tmp_path: Path
) -> None:
    clip = make_video(
        tmp_path / "camcorder.avi",
        size=(320, 180),
        seconds=3.5,
        fps=10,
        codec="mpeg4",
        container_format="avi",
    )
    open_create(page)
    choose_only(page, ["local"], PICKABLE)
    upload(page, "driving_video", clip)
    box = panel(page, "driving_video")
    expect(box.locator("img").first).to_be_visible()
    expect(box.locator("video")).to_have_count(0)
    box.get_by_role("button", name="Convert to H.264").first.click()
    expect(box.get_by_text("After · Convert to H.264")).to_be_visible(timeout=60_000)
    wait_idle(page)
    expect(box.locator("video")).to_have_count(1)  # the converted file plays; the AVI cannot
    assert _plays(page, box).endswith("/camcorder-h264.mp4")
    assert_no_traceback(page)


def test_unknown_or_outside_names_are_not_served(app_server: AppServer) -> None:
    for path in (
        "/uploads/" + "0" * 64 + "/x.mp4",
        "/uploads/not-a-digest/x.mp4",
        "/uploads/" + "0" * 64 + "/..%2F..%2Freenact.db",
    ):
        r = httpx.get(app_server.url + path, timeout=10)
        assert r.status_code in (400, 404), path
        assert b"SQLite" not in r.content


# ---------------------------------------------------------------------------- with sign-in


@pytest.fixture(scope="module")
def signed_in(tmp_path_factory: pytest.TempPathFactory, oidc: str) -> Iterator[SignedInApp]:  # noqa: F811
    data_dir = tmp_path_factory.mktemp("previews-signed-in") / "data"
    data_dir.mkdir()
    server = start_app(
        data_dir, {}, sign_in_metadata_url=f"{oidc}/.well-known/openid-configuration"
    )
    try:
        yield SignedInApp(url=server.url, data_dir=data_dir, tasks={}, runs={})
    finally:
        stop_app(server)


def test_only_the_uploader_can_stream_their_upload(
    browser: Browser, signed_in: SignedInApp, media: Media
) -> None:
    context, page = _sign_in(browser, signed_in, ALICE)
    try:
        expect(page.locator(".st-key-media_driving_video")).to_be_visible()
        upload(page, "driving_video", media.wide)
        src = _plays(page, panel(page, "driving_video"))
        mine = context.request.get(src)
        assert mine.status == 200 and mine.body() == media.wide.read_bytes()
    finally:
        context.close()

    assert httpx.get(src, timeout=10).status_code == 404  # no cookie: nobody
    context, _page = _sign_in(browser, signed_in, BOB)
    try:
        theirs = context.request.get(src)
        assert theirs.status == 404 and theirs.body() != media.wide.read_bytes()
    finally:
        context.close()

    # A draft's file that nobody is recorded for (a fix result stored before fixes were
    # counted as their creator's) is claimed by the creator whose draft brings it back.
    db = signed_in.data_dir / "reenact.db"
    _wait_for(lambda: _sql(db, "SELECT 1 FROM preferences WHERE key = ?", (f"draft:{ALICE}",)))
    _sql(db, "DELETE FROM uploads WHERE owner = ?", (ALICE,))
    context, page = _sign_in(browser, signed_in, ALICE)
    try:
        assert _plays(page, panel(page, "driving_video")) == src
        assert context.request.get(src).status == 200
    finally:
        context.close()


def _sql(db: Path, statement: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return list(conn.execute(statement, params))


def _wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)  # polling a condition with a deadline
