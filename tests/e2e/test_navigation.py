"""Every URL renders through the app's own navigation — also the very first request a freshly
(re)started server gets, which used to run the page file directly (Streamlit's old `pages/`
folder routing): no top bar, a file-name sidebar, narrow layout, no sign-in gate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import AppServer, start_app, stop_app


@pytest.fixture
def fresh_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("fresh-nav"), {})
    try:
        yield server
    finally:
        stop_app(server)


@pytest.mark.parametrize("path", ["/tasks?task=abc123", "/compare?run=abc123"])
def test_a_deep_link_first_after_a_start_gets_the_apps_navigation(
    browser: Browser, fresh_app: AppServer, path: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=fresh_app.url)
    try:
        page = context.new_page()
        page.goto(path)  # nobody has opened "/" on this server yet
        nav = page.get_by_role("navigation", name="App pages")
        expect(nav.get_by_role("link", name="Create")).to_be_visible(timeout=30_000)
        expect(nav.get_by_role("link", name="Settings")).to_be_visible()
        expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
        expect(page.get_by_text("ui", exact=True)).to_have_count(0)
        # The page asked for, in the wide layout ui.py sets.
        expect(
            page.get_by_role("button", name="All tasks").or_(
                page.get_by_role("button", name="All comparisons")
            )
        ).to_be_visible()
        width = page.get_by_test_id("stMainBlockContainer").bounding_box()
        assert width is not None and width["width"] > 900
    finally:
        context.close()
