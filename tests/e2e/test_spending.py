"""Settings → Spending and the cap on Create, in Chromium: a Runway task the emulator charged
25 credits shows as $0.25 reported; a cap saved on the page is what the next submit is held
to, and Create's Submit says what is left — or is blocked with the refusal sentence."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from services.config import load_settings
from services.models import TaskInputs
from services.monitor import Monitor
from services.studio import Studio
from tests.e2e.conftest import AppServer, Media, shot, start_app, stop_app
from tests.e2e.helpers import assert_no_traceback, choose_only, open_create, upload, wait_idle
from tests.emulators import RunwayEmulator


def _seed_a_charged_runway_task(data_dir: Path, runway: RunwayEmulator, media: Media) -> None:
    """What an earlier session left: one Runway task, finished, with the cost it reported."""
    env = {"REENACT_DATA_DIR": str(data_dir), **runway.env()}
    studio = Studio(load_settings(env=env, secrets={}))
    monitor = Monitor(studio, interval_scale=0.001)
    try:
        task = studio.submit("runway", TaskInputs(video=str(media.wide), image=str(media.face)))
        deadline = time.monotonic() + 60
        while studio.get(task.id).cost_usd is None:
            assert time.monotonic() < deadline, "the Runway task did not finish"
            monitor.tick([task.id])
    finally:
        monitor.stop()
        studio.close()


@pytest.fixture(scope="module")
def spend_app(
    tmp_path_factory: pytest.TempPathFactory, media: Media
) -> Iterator[tuple[AppServer, RunwayEmulator]]:
    with RunwayEmulator(polls_to_finish=1, queued_polls=0, credits=25) as runway:
        data_dir = tmp_path_factory.mktemp("spend-data")
        _seed_a_charged_runway_task(data_dir, runway, media)
        server = start_app(data_dir, {**runway.env(), "REENACT_RUNWAY_SPEND_CAP_DAY_USD": "1"})
        try:
            yield server, runway
        finally:
            stop_app(server)


@pytest.fixture
def spend_page(browser: Browser, spend_app: tuple[AppServer, RunwayEmulator]) -> Iterator[Page]:
    server, _ = spend_app
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=server.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    context.close()


def _open_spending(page: Page) -> None:
    page.goto("/settings")
    expect(page.get_by_role("heading", name="Spending")).to_be_visible()
    wait_idle(page)


def test_settings_shows_what_was_spent_and_a_cap_saved_there_holds_create_back(
    spend_page: Page, spend_app: tuple[AppServer, RunwayEmulator], media: Media
) -> None:
    page = spend_page
    server, runway = spend_app
    _open_spending(page)
    providers = page.locator(".st-key-spend_providers")
    expect(providers).to_contain_text("Runway")
    expect(providers).to_contain_text("$0.25")
    expect(providers).to_contain_text("reported by the provider")
    expect(page.get_by_text("Today's Runway cap $1.00: $0.25 spent, $0.75 left")).to_be_visible()
    # The environment's cap is the one in force, and says where it comes from.
    day_cap = page.locator(".st-key-cap_day_runway input")
    expect(day_cap).to_have_value("1.00")

    # Create: with Runway chosen, Submit says what is left under its cap.
    open_create(page)
    upload(page, "driving_video", media.wide)
    upload(page, "character_image", media.face)
    choose_only(page, ["runway"], ["local", "runway", "cometapi"])
    expect(page.get_by_text("$0.75 left of today's Runway cap ($1.00).")).to_be_visible()

    # A cap on everything, saved in Settings, that this submit would cross.
    _open_spending(page)
    total = page.locator(".st-key-cap_day_total input")
    total.fill("0.30")
    total.press("Tab")
    page.get_by_role("button", name="Save caps").click()
    expect(
        page.get_by_text("Today's cap for all providers $0.30: $0.25 spent, $0.05 left")
    ).to_be_visible()
    page.get_by_role("heading", name="Spending").scroll_into_view_if_needed()
    shot(page, "settings-spending")
    saved = server.query("SELECT value FROM preferences WHERE key = 'spend_caps'")
    assert saved and '"total": 0.3' in str(saved[0][0])

    open_create(page)
    choose_only(page, ["runway"], ["local", "runway", "cometapi"])
    refusal = re.compile(
        r"Today's cap for all providers is \$0\.30: \$0\.25 spent, this would add \$0\.1\d; "
        r"\$0\.05 left\."
    )
    expect(page.get_by_text(refusal)).to_be_visible()
    button = page.get_by_role("button", name=re.compile(r"^Submit( · .+)?$"))
    expect(button).to_be_disabled()
    assert runway.create_count == 1  # the seeded task only
    assert_no_traceback(page)
