"""The comparison as a creator does it in Chromium: one input pair to two providers, the run
filling in live on the Compare page, the results playing in sync beside the driving clip, a
blind vote, the leaderboard moving, and both exports downloaded (over HTTP: browser downloads
are impossible here)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import av
import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AppServer, Media, shot
from tests.e2e.helpers import (
    assert_no_traceback,
    choose_only,
    open_create,
    run_id_after_submit,
    upload,
)
from tests.emulators import CometApiEmulator, RunwayEmulator
from tests.mediagen import make_performance

PICKABLE = ["local", "runway", "cometapi"]

# The player lives in a shadow root; CSS locators pierce it, page JavaScript needs this.
_PLAYER_JS = """(() => {
  for (const host of document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
    const sp = host.shadowRoot && host.shadowRoot.querySelector('.sp');
    if (sp) return sp;
  }
  return null;
})()"""
_VIDEOS_JS = f"""() => {{
  const sp = {_PLAYER_JS};
  if (!sp) return {{}};
  const out = {{}};
  for (const tile of sp.querySelectorAll('.sp-tile')) {{
    const v = tile.querySelector('video');
    out[tile.dataset.id] = v ? {{t: v.currentTime, paused: v.paused, ready: v.readyState,
      src: v.currentSrc, label: tile.querySelector('.sp-label')?.textContent}} : null;
  }}
  return out;
}}"""


def _probe(data: bytes) -> tuple[int, int, float, bool]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        seconds = float(container.duration or 0) / av.time_base
        return stream.width, stream.height, seconds, bool(container.streams.audio)


@pytest.fixture(scope="module")
def performance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photographed face that opens its mouth, blinks and raises its brows, with sound:
    the local engine's result then has motion to be scored on."""
    folder = tmp_path_factory.mktemp("compare-media")
    return make_performance(folder / "performance.mp4", seconds=4.0, audio=True)


def _videos(page: Page) -> dict[str, dict | None]:
    return page.evaluate(_VIDEOS_JS)


def test_compare_run_live_synced_blind_vote_leaderboard_exports(
    page: Page,
    app_server: AppServer,
    media: Media,
    performance: Path,
    runway: RunwayEmulator,
    cometapi: CometApiEmulator,
) -> None:
    open_create(page)
    choose_only(page, ["local", "runway"], PICKABLE)
    upload(page, "driving_video", performance)
    upload(page, "character_image", media.face)
    submit = page.get_by_role("button", name="Submit to 2 providers")
    expect(submit).to_be_enabled()
    submit.click()
    run_id = run_id_after_submit(page)

    # Create links to the run's comparison; it opens while the tasks are still going.
    page.get_by_role("link", name="Compare side by side").click()
    expect(page).to_have_url(f"{app_server.url}/compare?run={run_id}")
    tiles = page.locator(".sp-tile")
    expect(tiles).to_have_count(3)  # the driving clip, then the providers in chosen order
    order = page.evaluate(
        f"() => [...{_PLAYER_JS}.querySelectorAll('.sp-tile')].map(t => t.dataset.id)"
    )
    ids = dict(app_server.query("SELECT provider, id FROM tasks WHERE run_id = ?", (run_id,)))
    assert order == ["reference", ids["local"], ids["runway"]]
    # Runway renders for a few seconds: its tile says so before its video fills in, live.
    expect(page.locator(f".sp-tile[data-id='{ids['runway']}']")).to_contain_text(
        re.compile(r"Queued|Rendering · \d+%"), timeout=30_000
    )
    page.wait_for_function(
        f"() => {{ const sp = {_PLAYER_JS}; if (!sp) return false;"
        " const vs = [...sp.querySelectorAll('video')];"
        " return vs.length === 3 && vs.every(v => v.readyState >= 2); }",
        timeout=90_000,
    )
    state = _videos(page)
    assert state["reference"]["src"].endswith(f"/runs/{run_id}/reference")
    assert state[ids["runway"]]["src"].endswith(f"/files/{ids['runway']}/result.mp4")
    assert [state[i]["label"] for i in order[1:]] == ["Local engine", "Runway"]

    # One play button starts every video; one seek moves all of them.
    page.locator(".sp").get_by_label("Play", exact=True).click()
    page.wait_for_function(
        f"() => Object.values(({_VIDEOS_JS})()).every(v => v && !v.paused && v.t > 0.3)"
    )
    page.locator(".sp").get_by_label("Pause", exact=True).click()
    page.wait_for_function(f"() => Object.values(({_VIDEOS_JS})()).every(v => v && v.paused)")
    times = [v["t"] for v in _videos(page).values() if v]
    assert max(times) - min(times) <= 0.1, times

    # The numbers are measured in the background and reach the page without a reload.
    page.wait_for_function(
        "() => document.body.innerText.includes('Motion fidelity per signal')", timeout=90_000
    )
    analysed = app_server.query(
        "SELECT task_id, state, output, fidelity FROM task_analyses WHERE task_id IN (?, ?)",
        (ids["local"], ids["runway"]),
    )
    assert {r[1] for r in analysed} == {"done"}
    fidelity = {task_id: json.loads(f) for task_id, _, _, f in analysed}
    # The local engine carries the performance: a number; the emulator's clip has no face.
    assert 20 <= fidelity[ids["local"]]["score"] <= 100, fidelity[ids["local"]]
    assert fidelity[ids["runway"]]["score"] is None and fidelity[ids["runway"]]["reason"]
    for task_id, _, output, _ in analysed:
        facts = json.loads(output)
        archived = Path(
            app_server.query("SELECT result_path FROM tasks WHERE id = ?", (task_id,))[0][0]
        )
        width, height, seconds, audio = _probe(archived.read_bytes())
        assert (facts["width"], facts["height"], facts["has_audio"]) == (width, height, audio)
        assert abs(facts["duration_s"] - seconds) < 0.05
    shot(page, "compare")

    # Blind: shuffled, names hidden until the vote, then revealed and stored.
    page.get_by_text("Blind", exact=True).click()
    expect(page.locator(".sp-label", has_text="Result A")).to_be_visible()
    expect(page.locator(".sp-label", has_text="Runway")).to_have_count(0)
    expect(page.get_by_text("Numbers and names are hidden until you vote")).to_be_visible()
    shot(page, "compare-blind")
    blind_labels = {v["label"]: tid for tid, v in _videos(page).items() if v and tid != "reference"}
    page.get_by_role("radiogroup").get_by_text("Result B", exact=True).click()
    page.get_by_role("button", name="Vote").click()
    expect(page.get_by_text("Your vote (blind)")).to_be_visible()
    winner_task = blind_labels["Result B"]
    winner = next(p for p, t in ids.items() if t == winner_task)
    (stored,) = app_server.query("SELECT winner, blind FROM votes WHERE run_id = ?", (run_id,))
    assert stored == (winner, 1)
    expect(page.get_by_text("Revealed:")).to_be_visible()
    page.get_by_text("Leaderboard", exact=True).click()
    board = page.get_by_test_id("stDataFrame").last
    expect(board).to_be_visible()

    # Exports: made on the page, downloaded from disk over HTTP.
    page.get_by_role("button", name="Make side-by-side video").click()
    video_link = page.get_by_role("link", name="Download side-by-side video")
    expect(video_link).to_be_visible(timeout=120_000)
    href = video_link.get_attribute("href")
    assert href is not None
    assert href.endswith(f"/exports/{run_id}/{run_id}-side-by-side.mp4?download=1")
    got = httpx.get(href, timeout=30)
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    width, height, seconds, audio = _probe(got.content)
    _, _, drive_s, drive_audio = _probe(performance.read_bytes())
    assert drive_audio and audio  # the driving clip's sound
    assert width > height and abs(seconds - drive_s) < 0.3
    page.get_by_role("button", name="Make ZIP of results").click()
    zip_link = page.get_by_role("link", name="Download ZIP of results")
    expect(zip_link).to_be_visible(timeout=60_000)
    got = httpx.get(zip_link.get_attribute("href") or "", timeout=30)
    with zipfile.ZipFile(io.BytesIO(got.content)) as z:
        assert sorted(z.namelist()) == [
            "01-local.mp4",
            "02-runway.mp4",
            "summary.csv",
            "summary.json",
        ]
        rows = json.loads(z.read("summary.json"))
        assert [r["provider"] for r in rows] == ["local", "runway"]
    assert_no_traceback(page)

    # The list shows the run, with its winner, and opens it again.
    page.get_by_role("button", name="All comparisons").click()
    row = page.locator(f".st-key-runrow_{run_id}")
    expect(row).to_contain_text("winner:")
    row.get_by_role("button", name="Open").click()
    expect(page).to_have_url(f"{app_server.url}/compare?run={run_id}")


def test_unknown_run_and_files_answer_with_a_sentence(page: Page, app_server: AppServer) -> None:
    page.goto("/")
    page.goto("/compare?run=doesnotexist")
    expect(page.get_by_text("No comparison run with id 'doesnotexist'.")).to_be_visible()
    assert_no_traceback(page)
    for path in ("/runs/doesnotexist/reference", "/exports/nope/nope.zip", "/runs/..%2f/x"):
        r = httpx.get(f"{app_server.url}{path}", timeout=10)
        assert r.status_code in (400, 404), path
        assert "Traceback" not in r.text
