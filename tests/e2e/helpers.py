"""What a creator does on the pages, as Playwright steps (waits are on conditions only)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

RUN_URL = re.compile(r"[?&]run=([0-9a-f]+)")
TRACEBACK_WORDS = ("Traceback (most recent call last)", 'File "/')


def open_create(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Create")).to_be_visible()
    expect(page.locator(".st-key-media_driving_video")).to_be_visible()


def panel(page: Page, role: str) -> Locator:
    return page.locator(f".st-key-media_{role}")


def wait_idle(page: Page) -> None:
    """The script is not running (Streamlit marks it on the app element)."""
    expect(page.get_by_test_id("stApp")).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=60_000
    )


def clear_input(page: Page, role: str, attempts: int = 3) -> None:
    """Bring the uploader back: the creator's draft (one per owner, shared by every test on
    the server) may have put an earlier test's file in this input."""
    box = panel(page, role)
    picker = box.locator("input[type=file]")
    replace = box.get_by_role("button", name="Replace")
    for attempt in range(attempts):
        wait_idle(page)
        # The page is drawn when the input shows one or the other.
        expect(picker.or_(replace)).not_to_have_count(0, timeout=30_000)
        if picker.count():
            break
        replace.click()
        try:
            expect(picker).to_have_count(1, timeout=15_000)
            break
        except AssertionError:
            # A click that lands while the page's first run is replaced by the next one can
            # be lost on a busy machine; a person would click again.
            if attempt == attempts - 1:
                raise
    expect(picker).to_have_count(1, timeout=30_000)


def upload(page: Page, role: str, path: Path, attempts: int = 3) -> None:
    box = panel(page, role)
    picker = box.locator("input[type=file]")
    clear_input(page, role)
    for attempt in range(attempts):
        wait_idle(page)
        picker.set_input_files(str(path))
        try:
            # Stored: the uploader gives way to the check panel. A fresh server's first
            # upload also pays for the media imports and the first probe: a dropped file is
            # only assumed once that has had time, so a slow store is not dropped again.
            expect(picker).to_have_count(0, timeout=40_000)
            break
        except AssertionError as err:
            # Streamlit can drop a file handed to an uploader while a rerun (started by the
            # click just before) replaces it, on a busy machine; a person would drop it again.
            if attempt == attempts - 1:
                # what the panel says (a refusal's sentence, or nothing) tells why
                said = box.inner_text(timeout=5_000)
                raise AssertionError(
                    f"{path.name} was not taken; the panel says: {said!r}"
                ) from err
    expect(box.get_by_role("button", name="Replace")).to_be_visible()
    expect(box.get_by_text("checks passed")).to_be_visible(timeout=60_000)
    expect(box).to_contain_text(path.name)


def set_provider(page: Page, provider_id: str, on: bool) -> None:
    row = page.locator(f".st-key-provider_row_{provider_id}")
    if not on and row.count() == 0:
        return  # not configured on this server, so it cannot be chosen anyway
    box = row.locator("input[type=checkbox]")
    if box.is_checked() != on:
        row.locator("label").first.click()
    expect(box).to_be_checked(checked=on)


def choose_only(page: Page, provider_ids: list[str], all_ids: list[str]) -> None:
    for pid in all_ids:
        if pid not in provider_ids:
            set_provider(page, pid, False)
    for pid in provider_ids:
        set_provider(page, pid, True)


def submit_button(page: Page) -> Locator:
    # A paid submit says its cost on the button ("Submit to 2 providers · ≈ $1.50").
    return page.get_by_role(
        "button", name=re.compile(r"^(Submit|Submit to \d+ providers)( · .+)?$")
    )


def run_id_after_submit(page: Page) -> str:
    expect(page).to_have_url(RUN_URL, timeout=60_000)
    match = RUN_URL.search(page.url)
    assert match is not None
    return match.group(1)


def card(page: Page, task_id: str) -> Locator:
    return page.locator(f"[class*='st-key-card_'][class*='_{task_id}']").first


def drawn(container: Locator) -> Locator:
    """The elements in `container` as the page draws them now: while a fragment reruns,
    Streamlit keeps the last run's elements on screen (marked stale) until the new ones are
    drawn, so a card whose buttons just changed (Cancel gone, Retry in) briefly shows two of
    the others."""
    return container.locator("[data-testid='stElementContainer'][data-stale='false']")


def progress_value(locator: Locator) -> float | None:
    bar = locator.get_by_role("progressbar")
    if bar.count() == 0:
        return None
    value = bar.first.get_attribute("aria-valuenow")
    return float(value) if value is not None else None


def wait_video_plays(page: Page, container: Locator) -> dict[str, Any]:
    """The <video> has loaded real media and its clock advances when played."""
    video = container.locator("video").first
    expect(video).to_be_visible(timeout=60_000)
    video.scroll_into_view_if_needed()
    handle = video.element_handle()
    assert handle is not None
    try:
        page.wait_for_function(
            "v => v.readyState >= 1 && v.duration > 0", arg=handle, timeout=30_000
        )
    except Exception as exc:
        state = handle.evaluate(
            "v => ({src: v.currentSrc || v.src, ready: v.readyState, net: v.networkState,"
            " error: v.error && v.error.code})"
        )
        raise AssertionError(f"the video never loaded: {state}") from exc
    handle.evaluate("v => { v.muted = true; return v.play(); }")
    page.wait_for_function("v => v.currentTime > 0", arg=handle, timeout=30_000)
    return handle.evaluate(
        "v => ({duration: v.duration, currentTime: v.currentTime, src: v.currentSrc,"
        " width: v.videoWidth, height: v.videoHeight})"
    )


def assert_no_traceback(page: Page) -> None:
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    text = page.locator("body").inner_text()
    for words in TRACEBACK_WORDS:
        assert words not in text, f"a traceback reached the page: {words!r}"
