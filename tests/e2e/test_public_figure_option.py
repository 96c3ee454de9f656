"""Runway's public-figure moderation on Create: offered only while Runway is chosen, and what
the creator picks is what Runway's create carries."""

from __future__ import annotations

import json
import time

from playwright.sync_api import Page, expect

from services.models import LOCAL_OWNER
from tests.e2e.conftest import AppServer, Media
from tests.e2e.helpers import (
    assert_no_traceback,
    choose_only,
    open_create,
    run_id_after_submit,
    submit_button,
    upload,
    wait_idle,
)
from tests.emulators import RunwayEmulator

PICKABLE = ["local", "runway", "cometapi"]
LABEL = "Public-figure moderation"


def _choose(page: Page, words: str) -> None:
    wait_idle(page)  # a rerun under way would redraw the box and close its list
    box = page.locator(".st-key-opt_public_figure")
    field = box.locator("input")
    field.click()
    option = page.get_by_role("option", name=words, exact=True)
    if not option.is_visible():
        field.press("ArrowDown")  # the keyboard's way to open the list, if the click only focused
    option.click()
    expect(field).to_have_value(words)
    wait_idle(page)


def test_offered_for_runway_only_and_sent_as_chosen(
    page: Page, app_server: AppServer, media: Media, runway: RunwayEmulator
) -> None:
    open_create(page)
    choose_only(page, ["cometapi"], PICKABLE)
    wait_idle(page)
    expect(page.get_by_text(LABEL, exact=True)).to_have_count(0)
    choose_only(page, ["runway"], PICKABLE)
    expect(page.get_by_text(LABEL, exact=True)).to_be_visible()
    _choose(page, "Less strict (low)")
    upload(page, "driving_video", media.wide)
    upload(page, "character_image", media.face)

    before = set(runway.tasks)
    submit_button(page).click()
    run_id = run_id_after_submit(page)
    [(options,)] = app_server.query("SELECT options FROM tasks WHERE run_id = ?", (run_id,))
    assert json.loads(str(options))["public_figure_threshold"] == "low"
    [new] = [t for tid, t in runway.tasks.items() if tid not in before]
    assert new.body["contentModeration"] == {"publicFigureThreshold": "low"}
    assert_no_traceback(page)

    # The choice is part of the creator's draft: a fresh page starts with it.
    open_create(page)
    field = page.locator(".st-key-opt_public_figure input")
    expect(field).to_have_value("Less strict (low)")
    # Back to the provider's default (on this idle page: no run redrawing under the click),
    # so the draft this server's other tests share sends nothing again.
    _choose(page, "Provider default")
    _wait_draft_without_threshold(app_server)


def _wait_draft_without_threshold(app: AppServer) -> None:
    deadline = time.monotonic() + 30
    while True:
        rows = app.query("SELECT value FROM preferences WHERE key = ?", (f"draft:{LOCAL_OWNER}",))
        options = json.loads(str(rows[0][0])).get("options") or {} if rows else {}
        if options.get("public_figure_threshold") is None:
            return
        assert time.monotonic() < deadline, f"the stored draft's options are {options}"
        time.sleep(0.1)  # polling a condition with a deadline
