"""Text from outside — a provider's failure message, a provider's task id, a file name — is
shown as typed in a real browser: no image is fetched, no link or code span is made."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from services.config import load_settings
from services.models import TaskInputs, TaskStatus
from services.store import Store
from tests.e2e.conftest import AppServer

HOSTILE = "Refused: ![pixel](http://127.0.0.1:9/pixel.png) see [here](http://127.0.0.1:9/) `x`"


def test_provider_words_ids_and_file_names_are_plain_text(
    page: Page, app_server: AppServer
) -> None:
    store = Store.open(
        load_settings(env={"REENACT_DATA_DIR": str(app_server.data_dir)}, secrets={})
    )
    task, _ = store.create_task(
        "runway",
        status=TaskStatus.QUEUED,
        provider_task_id="abc`](http://127.0.0.1:9/id)",
        inputs=TaskInputs(video="/nowhere/![f](f.png) :red[x] `y`.mp4"),
    )
    store.update_task(task.id, status=TaskStatus.FAILED, error=HOSTILE)
    store.close()
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if ":9/" in r.url else None)
    page.goto("/")
    page.goto(f"/tasks?task={task.id}")
    expect(page.get_by_text("Refused: ![pixel](http://127.0.0.1:9/pixel.png)")).to_be_visible()
    expect(page.get_by_text("abc`](http://127.0.0.1:9/id)")).to_be_visible()
    expect(page.get_by_text("![f](f.png) :red[x] `y`.mp4")).to_be_visible()
    main = page.get_by_test_id("stMain")
    assert main.locator("img[src*='127.0.0.1:9'], img[src*='f.png']").count() == 0
    assert main.locator("a[href*='127.0.0.1:9']").count() == 0
    assert fetched == [], fetched
