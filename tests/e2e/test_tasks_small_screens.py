"""The Tasks page on a phone (400 px: a compact card per task, nothing clipped, each opened by a
labelled link) and on a desktop (1280 px: a whole page of tasks without a scroll box inside the
page)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from services.config import load_settings
from services.models import TaskStatus
from services.store import Store
from tests.e2e.conftest import AppServer, shot

# Settled states only: the server's monitor leaves these alone, so what the test expects to
# read stays true while it reads.
_STATES = (TaskStatus.FAILED, TaskStatus.SUCCEEDED, TaskStatus.CANCELED, TaskStatus.UNKNOWN)
_PROVIDERS = {
    "local": "Local engine",
    "runway": "Runway",
    "cometapi": "CometAPI",
    "liangxin": "LiangXin",
}
_LABELS = {
    TaskStatus.FAILED: "Failed",
    TaskStatus.SUCCEEDED: "Done",
    TaskStatus.CANCELED: "Canceled",
    TaskStatus.UNKNOWN: "Needs a look",
}
LONG_FAILURE = (
    "The provider refused the driving clip: reference_performance_take_07_final_graded_"
    "export_v3_really_final.mp4 is longer than the 30 second limit of this model, and the "
    "character image has no face it could track. Trim the clip and pick a clearer portrait, "
    "then retry."
)


@dataclass(frozen=True)
class Seeded:
    id: str
    provider: str
    state: str
    note: str


@pytest.fixture(scope="module")
def seeded(app_server: AppServer) -> Iterator[list[Seeded]]:
    """20 tasks owned by "local", written straight to the server's store, newest last."""
    settings = load_settings(env={"REENACT_DATA_DIR": str(app_server.data_dir)}, secrets={})
    store = Store.open(settings)
    made: list[Seeded] = []
    try:
        for i in range(20):
            provider = list(_PROVIDERS)[i % len(_PROVIDERS)]
            status = _STATES[i % len(_STATES)]
            tracked = status is TaskStatus.CANCELED
            task, _ = store.create_task(
                provider,
                status=TaskStatus.DRAFT,
                owner="local",
                tracked=tracked,
                provider_task_id=f"ext-{i}" if tracked else None,
            )
            fields: dict[str, object] = {"status": status}
            if status is TaskStatus.FAILED:
                note = LONG_FAILURE if i == 0 else f"Seeded failure number {i}."
                fields["error"] = note
            elif status is TaskStatus.SUCCEEDED:
                note = "Result saved"
                fields["result_path"] = str(app_server.data_dir / "results" / task.id / "r.mp4")
            elif status is TaskStatus.CANCELED:
                note = f"Tracked ext-{i}"
            else:
                note = f"The provider stopped answering about take {i}."
                fields["error"] = note
            store.update_task(task.id, **fields)
            made.append(Seeded(task.id, _PROVIDERS[provider], _LABELS[status], note))
        yield made
    finally:
        for s in made:
            store.delete_task(s.id)
        store.close()


def _open_tasks(page: Page, width: int, height: int, seeded: list[Seeded]) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.goto("/tasks")
    expect(page.get_by_text("Page 1 of")).to_be_visible()
    for s in seeded:
        expect(_row(page, s.id)).to_be_visible()
    # The list's stylesheet can reach the page a moment after its first rows.
    expect(_row(page, seeded[0].id)).to_have_css("display", "grid")


def _row(page: Page, task_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f".st-key-tl_row_{task_id}")


# Every text-bearing element inside a row: wider than its box (clipped) or outside the window.
_CLIPPED_JS = """(ids) => {
  const out = [];
  const vw = document.documentElement.clientWidth;
  for (const id of ids) {
    const row = document.querySelector('.st-key-tl_row_' + id);
    if (!row) { out.push(id + ': no row'); continue; }
    for (const el of row.querySelectorAll('*')) {
      if (!el.textContent.trim()) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
        out.push(id + ': clipped ' + el.tagName + ' ' + el.textContent.slice(0, 40));
      if (r.left < -1 || r.right > vw + 1)
        out.push(id + ': outside the window ' + el.tagName + ' ' + el.textContent.slice(0, 40));
    }
  }
  return out;
}"""

# Any element of the list that scrolls its own content: a nested scroll box.
_INNER_SCROLL_JS = """() => {
  const list = document.querySelector('.st-key-task_list');
  return [list, ...list.querySelectorAll('*')]
    .filter(el => el.scrollHeight > el.clientHeight + 2 && el.clientHeight > 0)
    .map(el => el.className + ' ' + el.scrollHeight + '>' + el.clientHeight);
}"""


def _intersect(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_tasks_on_a_phone_are_readable_cards_with_an_open_link(
    page: Page, seeded: list[Seeded]
) -> None:
    _open_tasks(page, 400, 800, seeded)
    for s in seeded:
        row = _row(page, s.id)
        for text in (s.provider, s.state, s.note):
            # Whole words at the end of their element (an icon's name may come first).
            expect(row.get_by_text(re.compile(rf"(^|\s){re.escape(text)}$"))).to_be_visible()
    problems = page.evaluate(_CLIPPED_JS, [s.id for s in seeded])
    assert problems == []

    boxes = {
        name: page.locator(selector).bounding_box()
        for name, selector in (
            ("provider filter", ".st-key-f_provider"),
            ("state filter", ".st-key-f_state"),
            ("list", ".st-key-task_list"),
        )
    }
    assert all(boxes.values()), boxes
    assert not _intersect(boxes["provider filter"], boxes["state filter"])  # type: ignore[arg-type]
    for name in ("provider filter", "state filter"):
        assert not _intersect(boxes[name], boxes["list"]), name  # type: ignore[arg-type]
    # A card, not a table row: its cells are stacked within the window's width.
    first = _row(page, seeded[-1].id).bounding_box()
    assert first is not None and first["x"] >= 0 and first["x"] + first["width"] <= 400
    shot(page, "tasks-400")

    target = seeded[-1]
    _row(page, target.id).get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(rf"[?&]task={target.id}\b"))
    expect(page.get_by_role("heading", name="Task", exact=True)).to_be_visible()
    expect(
        page.get_by_text("Provider's task id").or_(page.get_by_text(target.note))
    ).to_be_visible()


@pytest.fixture
def live_task(app_server: AppServer) -> Iterator[str]:
    """A running task without a note: the list refreshes itself every second while it shows."""
    settings = load_settings(env={"REENACT_DATA_DIR": str(app_server.data_dir)}, secrets={})
    store = Store.open(settings)
    task, _ = store.create_task("liangxin", status=TaskStatus.DRAFT, owner="local")
    store.update_task(task.id, status=TaskStatus.RUNNING, progress=0.4)
    try:
        yield task.id
    finally:
        store.delete_task(task.id)
        store.close()


def test_tasks_on_a_desktop_are_one_table_without_an_inner_scroll(
    page: Page, app_server: AppServer, seeded: list[Seeded], live_task: str
) -> None:
    _open_tasks(page, 1280, 900, seeded)
    total = int(app_server.query("SELECT COUNT(*) FROM tasks WHERE owner = 'local'")[0][0])
    expect(page.locator("[class*='st-key-tl_row_']")).to_have_count(min(total, 25))
    # The list redraws itself while a task runs (its elapsed time moves): the table must
    # survive that redraw, not only the first one.
    elapsed = _row(page, live_task).get_by_text(re.compile(r"^\S*\s*\d+ s$"))
    expect(elapsed).to_have_count(1)
    expect(elapsed).not_to_have_text(elapsed.inner_text(), timeout=15_000)
    assert page.evaluate(_INNER_SCROLL_JS) == []
    # A table: the header labels are shown and every row is one line of cells.
    head = page.locator(".st-key-tl_head")
    for label in ("State", "Provider", "Created", "Time", "Note"):
        expect(head.get_by_text(label, exact=True)).to_be_visible()
    short = _row(page, seeded[-1].id).bounding_box()
    assert short is not None and short["height"] < 60
    # One column of Open links, a row without a note included.
    opens = [
        _row(page, i).get_by_role("link", name="Open").bounding_box()
        for i in [live_task] + [s.id for s in seeded[-5:]]
    ]
    assert len({round(b["x"]) for b in opens if b}) == 1, opens
    for s in seeded:
        expect(_row(page, s.id)).to_contain_text(s.note)
    shot(page, "tasks-1280")
