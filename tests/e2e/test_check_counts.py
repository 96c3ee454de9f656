"""Checks that do not contradict themselves: the count of a file's own checks does not move
when providers are ticked (their limits are said per provider), and a fix button says what
it will produce."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import AppServer, Media
from tests.e2e.helpers import choose_only, open_create, panel, upload, wait_idle

PICKABLE = ["local", "runway", "cometapi"]
COUNT = re.compile(r"(\d+) file checks passed")


def _summary(page: Page) -> str:
    wait_idle(page)
    box = panel(page, "driving_video")
    title = box.get_by_text(COUNT).first
    expect(title).to_be_visible(timeout=60_000)
    return title.inner_text()


def test_file_checks_count_holds_while_providers_change(
    page: Page, app_server: AppServer, media: Media
) -> None:
    open_create(page)
    choose_only(page, ["local"], PICKABLE)
    upload(page, "driving_video", media.tall)
    alone = _summary(page)
    choose_only(page, ["local", "cometapi"], PICKABLE)
    # The panel is drawn again for the new choice: wait for CometAPI's limits to appear.
    expect(panel(page, "driving_video")).to_contain_text(
        re.compile(r"CometAPI: \d+ of \d+ limits met"), timeout=60_000
    )
    both = _summary(page)
    count = COUNT.search(alone)
    assert count is not None and COUNT.search(both) is not None
    assert COUNT.search(both).group(1) == count.group(1), (alone, both)  # type: ignore[union-attr]
    assert re.search(r"CometAPI: \d+ of \d+ limits met", both), both
    # CometAPI wants 16:9: the 9:16 clip's fixes say what they will produce.
    fixes = panel(page, "driving_video").get_by_role("button", name=re.compile("to 16:9 → "))
    expect(fixes.first).to_be_visible()
    assert re.search(r"\d+×\d+$", fixes.first.inner_text().strip())
