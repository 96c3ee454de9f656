"""The Batch tab's states through Streamlit's AppTest (the browser scenario is in
test_batch.py): what is missing before anything can be sent, a link to a batch that is not
there, and a finished batch opened from its link (a real store, nothing mocked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from services.models import BatchLine, TaskInputs, TaskOptions, TaskStatus
from services.runtime import close_process_runtime
from services.store import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import os

    from components.providers import provider_infos

    for name in list(os.environ):
        if name.startswith(("REENACT_", "RUNWAYML_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REENACT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .streamlit/secrets.toml from the repo's cwd
    close_process_runtime()
    provider_infos.clear()
    yield tmp_path / "data"
    close_process_runtime()
    provider_infos.clear()


def _create(**query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "create.py"), default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in (at.error, at.warning, at.info):
        parts += [e.value for e in kind]
    return "\n".join(str(p) for p in parts)


def test_the_batch_tab_says_what_is_missing_and_sends_nothing(data: Path) -> None:
    at = _create(create_mode="Batch")
    assert not at.exception
    text = _texts(at)
    assert "Add at least one driving clip." in text
    assert "Add at least one character image." in text
    send = next(b for b in at.button if b.label.startswith("Send"))
    assert send.disabled
    assert len(at.dataframe) == 0  # no rows yet
    # The One take form did not run: its uploaders are not on the page.
    assert "Driving video" not in text


def test_a_link_to_a_batch_that_is_not_there_is_a_sentence(data: Path) -> None:
    at = _create(batch="0123456789ab")
    assert not at.exception
    assert "No batch with id '0123456789ab'." in _texts(at)
    assert any(b.label == "New batch" for b in at.button)


def test_a_finished_batch_opens_from_its_link_with_its_counts(data: Path) -> None:
    store = Store(f"sqlite:///{data / 'reenact.db'}")
    lines = [
        BatchLine(row=1, video="/t/a.mp4", image="/c/x.png", providers=["local"]),
        BatchLine(
            row=2,
            video="/t/b.mp4",
            image="/c/x.png",
            providers=["local"],
            problems=["'b.mp4' could not be read as a video or image; it may be damaged."],
        ),
    ]
    batch, _ = store.create_batch("2 takes × 1 character", lines, idempotency_key="k")
    run, _ = store.create_run(
        TaskInputs(video="/t/a.mp4", image="/c/x.png"),
        TaskOptions(),
        ["local"],
        batch_id=batch.id,
        batch_row=1,
    )
    task, _ = store.create_task("local", status=TaskStatus.QUEUED, run_id=run.id)
    store.update_task(task.id, status=TaskStatus.FAILED, error="The local render stopped.")
    store.close()

    at = _create(batch=batch.id)
    assert not at.exception
    assert [s.value for s in at.subheader] == ["Batch · 2 takes × 1 character"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "Queued": "0",
        "Running": "0",
        "Done": "0",
        "Failed": "1",
        "Rows not sent": "1",
    }
    assert "1 of 1 finished · Every task has finished." in str(at.get("progress")[0].proto.text)
    assert len(at.dataframe) == 1  # every task and row not sent, one table
    make_zip = next(b for b in at.button if b.label == "Make ZIP of results")
    assert make_zip.disabled  # nothing finished with a result
