"""Sign-in and owners end to end: the app with `[auth]` configured against a real OpenID
Connect provider on loopback (oidc-provider-mock), two people signing in with Chromium, each
seeing only their own tasks and comparisons and getting 404 on the other's file links."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from services.models import TaskInputs, TaskOptions, TaskStatus
from services.store import Store
from tests.e2e.conftest import _free_port, start_app, stop_app
from tests.mediagen import make_video

ALICE, BOB = "alice@example.com", "bob@example.com"


@dataclass
class SignedInApp:
    url: str
    data_dir: Path
    tasks: dict[str, str]  # owner -> task id with an archived result
    runs: dict[str, str]  # owner -> comparison run id


@pytest.fixture(scope="module")
def oidc() -> Iterator[str]:
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(port=_free_port()) as server:
        yield f"http://localhost:{server.server_port}"


def _seed(data_dir: Path, clip: Path) -> tuple[dict[str, str], dict[str, str]]:
    """One finished task (its result archived) and one comparison run per person."""
    store = Store(f"sqlite:///{data_dir / 'reenact.db'}")
    tasks, runs = {}, {}
    inputs = TaskInputs(video=str(clip))
    for owner in (ALICE, BOB):
        task, _ = store.create_task("local", status=TaskStatus.SUCCEEDED, owner=owner)
        result = data_dir / "results" / task.id / "result.mp4"
        result.parent.mkdir(parents=True)
        shutil.copyfile(clip, result)
        store.update_task(task.id, result_path=str(result), progress=1.0)
        run, _ = store.create_run(inputs, TaskOptions(), ["local", "runway"], owner=owner)
        tasks[owner], runs[owner] = task.id, run.id
    store.close()
    return tasks, runs


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, oidc: str) -> Iterator[SignedInApp]:
    data_dir = tmp_path_factory.mktemp("signed-in") / "data"
    data_dir.mkdir()
    clip = make_video(data_dir.parent / "clip.mp4", size=(160, 90), seconds=1.0, fps=8)
    tasks, runs = _seed(data_dir, clip)
    server = start_app(
        data_dir, {}, sign_in_metadata_url=f"{oidc}/.well-known/openid-configuration"
    )
    try:
        yield SignedInApp(url=server.url, data_dir=data_dir, tasks=tasks, runs=runs)
    finally:
        stop_app(server)


def test_a_deep_link_before_sign_in_shows_only_the_sign_in_page(
    browser: Browser, app: SignedInApp
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=app.url)
    try:
        page = context.new_page()
        page.goto(f"/tasks?task={app.tasks[ALICE]}")
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("heading", name="Tasks")).to_have_count(0)
        expect(page.get_by_text(app.tasks[ALICE])).to_have_count(0)
    finally:
        context.close()


def _sign_in(browser: Browser, app: SignedInApp, email: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=app.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto("/")
    # Nothing of the studio shows before sign-in.
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("link", name="Tasks")).to_have_count(0)
    page.get_by_role("button", name="Sign in").click()
    page.locator("input[name=sub]").fill(email)
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_role("heading", name="Create")).to_be_visible()
    return context, page


def test_each_person_sees_and_downloads_only_their_own_work(
    browser: Browser, app: SignedInApp
) -> None:
    for me, other in ((ALICE, BOB), (BOB, ALICE)):
        context, page = _sign_in(browser, app, me)
        try:
            page.goto("/tasks")
            expect(page.get_by_text("Page 1 of 1 · 1 task")).to_be_visible()
            page.goto(f"/tasks?task={app.tasks[other]}")
            expect(page.get_by_text(f"There is no task with id {app.tasks[other]}")).to_be_visible()
            page.goto(f"/tasks?task={app.tasks[me]}")
            expect(
                page.get_by_text("Provider's task id").or_(page.get_by_text("Details"))
            ).to_be_visible()

            mine = context.request.get(f"/files/{app.tasks[me]}/result.mp4")
            assert mine.status == 200 and mine.body()[4:8] == b"ftyp"
            theirs = context.request.get(f"/files/{app.tasks[other]}/result.mp4")
            assert theirs.status == 404
            assert context.request.get(f"/runs/{app.runs[other]}/reference").status == 404
            assert context.request.get(f"/runs/{app.runs[me]}/reference").status == 200

            page.goto("/compare")
            expect(page.get_by_text("1 comparison", exact=True)).to_be_visible()
            page.goto(f"/compare?run={app.runs[other]}")
            expect(
                page.get_by_text(f"No comparison run with id '{app.runs[other]}'")
            ).to_be_visible()

            page.goto("/settings")
            expect(page.get_by_text(f"Signed in as {me}")).to_be_visible()
        finally:
            context.close()


def test_without_signing_in_nothing_is_served(app: SignedInApp) -> None:
    for owner in (ALICE, BOB):
        assert httpx.get(f"{app.url}/files/{app.tasks[owner]}/result.mp4").status_code == 404
        assert httpx.get(f"{app.url}/runs/{app.runs[owner]}/reference").status_code == 404
    forged = httpx.get(
        f"{app.url}/files/{app.tasks[ALICE]}/result.mp4",
        cookies={"_streamlit_user": '{"email": "alice@example.com", "is_logged_in": true}'},
    )
    assert forged.status_code == 404  # an unsigned cookie is nobody
