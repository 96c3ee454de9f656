"""Component logic through Streamlit's AppTest (in addition to the browser scenarios):
default provider choice, idempotency keys, empty and missing states, secrets hygiene."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from services.models import TaskInputs, TaskOptions, TaskStatus
from services.runtime import close_process_runtime
from services.store import Store

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-live-please-never-show-me-0123456789"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean configuration per test; the per-process caches are emptied around it."""
    import os

    for name in list(os.environ):
        if name.startswith(("REENACT_", "RUNWAYML_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REENACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .streamlit/secrets.toml from the repo's cwd
    _clear_caches()
    yield tmp_path / "data"
    _clear_caches()


def _clear_caches() -> None:
    from components.providers import provider_infos

    close_process_runtime()
    provider_infos.clear()


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in (at.error, at.warning, at.info):
        parts += [e.value for e in kind]
    return "\n".join(str(p) for p in parts)


def test_without_keys_the_local_engine_is_chosen_by_default(env: Path) -> None:
    at = _page("create").run()
    assert not at.exception
    boxes = {c.label: c.value for c in at.checkbox}
    assert boxes == {"Local engine": True}, "only usable providers can be ticked"
    text = _texts(at)
    assert "Runway is not configured: set REENACT_RUNWAY_API_KEY." in text
    assert "Uploads up to" in text  # the limit is stated (its value: the browser test)
    submit = [b for b in at.button if b.label.startswith("Submit")]
    assert submit and submit[0].disabled, "nothing to submit without inputs"
    assert "Add a driving video." in text


def test_with_a_key_the_provider_is_offered_and_the_key_never_shown(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REENACT_RUNWAY_API_KEY", SECRET)
    at = _page("create").run()
    # A key is not a choice to pay: only the free local engine starts ticked.
    assert {c.label: c.value for c in at.checkbox} == {"Local engine": True, "Runway": False}
    assert SECRET not in _texts(at)

    at = _page("settings").run()
    assert not at.exception
    text = _texts(at)
    assert "environment variable" in text and "REENACT_RUNWAY_API_KEY" in text
    assert SECRET not in text
    assert str(env) in text


def test_settings_masks_the_database_password(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REENACT_DATABASE_URL", "postgresql://studio:hunter2@db.internal/reenact")
    at = _page("settings").run()
    text = _texts(at)
    assert "hunter2" not in text
    # Shown as the app uses it: with the driver (psycopg) a plain URL implies.
    assert "postgresql+psycopg://studio:***@db.internal/reenact" in text
    assert not at.exception


def test_idempotency_key_follows_the_form_not_the_rerun(env: Path) -> None:
    at = AppTest.from_function(_key_probe, default_timeout=30)
    at.run()
    first = at.session_state["keys"]
    assert first[0] == first[1], "the same form gives the same key"
    assert first[0] != first[2], "a different option gives a different key"
    at.run()
    assert at.session_state["keys"] == first, "a rerun keeps the keys"


def _key_probe() -> None:
    import streamlit as st

    from components.submit import idempotency_key
    from services.models import TaskInputs, TaskOptions

    inputs = TaskInputs(video="/v.mp4", image="/i.png")
    st.session_state["keys"] = [
        idempotency_key(["runway"], inputs, TaskOptions(seed=1)),
        idempotency_key(["runway"], inputs, TaskOptions(seed=1)),
        idempotency_key(["runway"], inputs, TaskOptions(seed=2)),
    ]


def test_tasks_page_empty_missing_and_listed(env: Path) -> None:
    at = _page("tasks").run()
    assert "No tasks yet" in _texts(at)

    at = _page("tasks")
    at.query_params["task"] = "doesnotexist"
    at.run()
    assert "There is no task with id doesnotexist." in _texts(at)  # plain text, not code
    assert not at.exception

    env.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{env / 'reenact.db'}")
    task, _ = store.create_task(
        "local",
        status=TaskStatus.QUEUED,
        inputs=TaskInputs(video="/v.mp4", image="/i.png"),
        options=TaskOptions(),
    )
    store.update_task(task.id, status=TaskStatus.FAILED, error="The engine found no face.")
    store.close()
    # Through the app's navigation: a row's Open link names a page st.navigation registered.
    at = AppTest.from_file(str(ROOT / "ui.py"), default_timeout=60)
    at.switch_page("pages/tasks.py")
    at.run()
    assert not at.exception
    assert "Page 1 of 1 · 1 task" in _texts(at)
    [link] = at.get("page_link")
    assert link.proto.label == "Open" and link.proto.query_string == f"task={task.id}"
    at = _page("tasks")
    at.query_params["task"] = task.id
    at.run()
    assert "The engine found no face." in _texts(at)
    assert any(b.label == "Retry" for b in at.button)


def test_settings_prices_are_stored_and_used_by_estimates(env: Path) -> None:
    at = _page("settings").run()
    assert not at.exception
    comet = next(n for n in at.number_input if n.key == "price_cometapi")
    assert comet.value is None and "no published price" in comet.label
    comet.set_value(0.08)
    next(b for b in at.button if b.label == "Save prices").click()
    at.run()
    assert not at.exception
    from components.common import get_studio

    studio = get_studio()
    assert studio.prices() == {"cometapi": 0.08}
    caps = studio.provider("cometapi").capabilities()
    assert studio.price_per_second(caps) == (0.08, "yours")
    runway = studio.provider("runway").capabilities()
    assert studio.price_per_second(runway) == (runway.cost_per_second_usd, "published")


def test_compare_without_runs_explains_how_to_make_one(env: Path) -> None:
    at = _page("compare").run()
    assert not at.exception
    text = _texts(at)
    assert "No comparisons yet" in text and "No votes yet" in text
    at.query_params["run"] = "missing"
    at.run()
    assert not at.exception
    assert "No comparison run with id 'missing'." in _texts(at)
