"""Sound on every result, in Chromium against the running app: the server's own monitor
archives a provider's silent result with the driving clip's sound, the task page says so and
its player and Download serve that version; the Settings switch is stored per creator."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from playwright.sync_api import Page, expect

from services.archive import ORIGINAL_NAME, sound_pref_key
from services.config import load_settings
from services.models import LOCAL_OWNER
from services.studio import Studio
from tests import mediagen
from tests.cli.support import wait_for
from tests.e2e.conftest import AppServer, Media, shot
from tests.e2e.helpers import assert_no_traceback, card, wait_idle
from tests.emulators import RunwayEmulator


@pytest.fixture
def studio(app_server: AppServer, runway: RunwayEmulator) -> Iterator[Studio]:
    """A second process's view of the app's data (as `reenact` would have): it submits, the
    app's monitor does the rest."""
    env = {
        "REENACT_DATA_DIR": str(app_server.data_dir),
        "REENACT_ALLOW_PRIVATE_URLS": "1",
        **runway.env(),
    }
    s = Studio(load_settings(env=env, secrets={}))
    yield s
    s.close()


def _audio_streams(data: bytes) -> list[str]:
    with av.open(io.BytesIO(data)) as c:
        return [s.codec_context.name for s in c.streams.audio]


def test_the_task_page_plays_and_downloads_the_result_with_sound(
    page: Page, app_server: AppServer, studio: Studio, media: Media, tmp_path: Path
) -> None:
    take = mediagen.make_beep_clip(tmp_path / "take.mp4", seconds=3.5, beeps_s=(0.5,))
    task = studio.submit("runway", studio.prepare_inputs(str(take), str(media.face)))
    assert task.provider_task_id, task.error
    # The emulator's result is its own silent clip; the app's monitor archives it.
    done = wait_for(
        lambda: (t := studio.get(task.id)).result_path and t,
        timeout=90,
        what="the app's monitor to archive the result",
    )
    archived = Path(done.result_path)
    assert archived.with_name(ORIGINAL_NAME).is_file()
    assert _audio_streams(archived.with_name(ORIGINAL_NAME).read_bytes()) == []

    page.goto(f"/tasks?task={task.id}")
    facts = page.locator("li").filter(has_text="Sound:")
    expect(facts).to_have_text("Sound: Added from the driving clip.")
    the_card = card(page, task.id)
    video = the_card.locator("video").first
    expect(video).to_be_visible(timeout=60_000)
    handle = video.element_handle()
    assert handle is not None
    assert f"/files/{task.id}/" in handle.evaluate("v => v.currentSrc || v.src")
    # Played with sound on (the browser may play unmuted here): Chromium counts the audio
    # bytes it decodes, which only a file with an audio track has.
    handle.evaluate("v => { v.muted = false; return v.play(); }")
    page.wait_for_function(
        "v => v.currentTime > 0.3 && v.webkitAudioDecodedByteCount > 0", arg=handle
    )
    shot(page, "task-sound")

    href = the_card.get_by_role("link", name="Download").get_attribute("href")
    assert href and "download=1" in href
    body = page.request.get(href).body()
    assert body == archived.read_bytes()
    assert _audio_streams(body) == ["aac"]
    assert_no_traceback(page)


def test_the_settings_switch_is_stored_for_this_creator(
    page: Page, app_server: AppServer, studio: Studio
) -> None:
    key = sound_pref_key(LOCAL_OWNER)
    page.goto("/settings")
    switch = page.get_by_role("switch", name="Add the driving clip's sound")
    expect(switch).to_be_checked()  # on until turned off
    try:
        page.locator(".st-key-sound_switch label").first.click()
        expect(switch).not_to_be_checked()
        wait_for(lambda: studio.store.get_pref(key) is False, what="the switch to be saved")
        page.reload()
        wait_idle(page)
        expect(page.get_by_role("switch", name="Add the driving clip's sound")).not_to_be_checked()
        shot(page, "settings-sound")
    finally:
        # The server is shared by every browser test: put the default back.
        studio.store.set_pref(key, None)
    page.reload()
    expect(page.get_by_role("switch", name="Add the driving clip's sound")).to_be_checked()
    assert_no_traceback(page)
