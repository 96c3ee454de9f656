"""Batches as services/batch.py builds them: the CSV read with its sentences, every row checked
and priced before anything is sent, one run per row, nothing sent twice, the progress counts
and ETA, and the ZIP with its CSV — against a real SQLite file, the real media checks and a
real loopback Runway emulator."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from services import batch as batches
from services.config import load_settings
from services.errors import InputError
from services.models import BatchLine, Task, TaskInputs, TaskOptions, TaskStatus, utcnow
from services.monitor import Monitor
from services.studio import Studio
from tests.emulators import RunwayEmulator
from tests.mediagen import make_image, make_video


def _studio(tmp_path: Path, env: dict[str, str]) -> Studio:
    settings = load_settings(
        env={"REENACT_DATA_DIR": str(tmp_path / "data"), "REENACT_POLL_SCALE": "0.01", **env},
        secrets={},
    )
    return Studio(settings)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("batch-inputs")
    make_video(d / "take1.mp4", size=(320, 180), seconds=4.0, fps=8)
    make_video(d / "take2.mp4", size=(320, 180), seconds=3.5, fps=8, face_pos=(0.45, 0.5))
    make_image(d / "alice.png", size=(640, 360))
    (d / "broken.mp4").write_bytes(b"this is not a video " * 64)
    return d


# ---- the CSV ---------------------------------------------------------------------------------
def test_a_csv_is_read_relative_to_its_folder_with_a_sentence_per_bad_row(folder: Path) -> None:
    text = (
        "\ufeffVideo , IMAGE,providers,options\n"
        "# takes of Monday\n"
        "take1.mp4,alice.png,local;Runway,intensity=4;seed=7;ratio=1280:720\n"
        "\n"
        f"{folder / 'take2.mp4'},alice.png,,\n"
        "take1.mp4,alice.png,nope,\n"
        "take1.mp4,alice.png,runway,intensity=9\n"
        "take1.mp4,alice.png,runway,speed=2\n"
        ",alice.png,runway,\n"
        "https://example.com/clip.mp4,alice.png,runway,public-figure=low\n"
    )
    lines = batches.parse_csv(text, folder=folder, name="takes.csv", providers=["local"])
    assert [line.row for line in lines] == [3, 5, 6, 7, 8, 9, 10]  # lines of the file
    first = lines[0]
    assert first.video == str(folder / "take1.mp4") and first.image == str(folder / "alice.png")
    assert first.providers == ["local", "runway"] and not first.problems
    assert first.options == TaskOptions(expression_intensity=4, seed=7, ratio="1280:720")
    assert lines[1].providers == ["local"]  # the default for an empty providers cell
    assert lines[2].problems == [
        "There is no provider called “nope”: use one of local, runway, cometapi, liangxin, makevid."
    ]
    assert lines[3].problems == [
        "The option expression_intensity: Input should be less than or equal to 5."
    ]
    assert "“speed=2” is not one this app knows" in lines[4].problems[0]
    assert lines[5].problems == ["The video cell is empty: name the driving video."]
    assert lines[6].video == "https://example.com/clip.mp4"
    assert lines[6].options.public_figure_threshold == "low"


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("", "is empty"),
        ("vidoe,image\nx.mp4,y.png\n", "Unknown column “vidoe”"),
        ("image,providers\ny.png,local\n", "No “video” column"),
        ("video,providers\nx.mp4,local\n", "No “image” column"),
        ("video,image\n", "has a header but no rows"),
    ],
)
def test_a_malformed_csv_is_one_sentence(tmp_path: Path, text: str, sentence: str) -> None:
    path = tmp_path / "takes.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=sentence):
        batches.read_csv(path)


def test_a_csv_that_is_not_text_or_not_there_is_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="There is no CSV file at"):
        batches.read_csv(tmp_path / "missing.csv")
    binary = tmp_path / "takes.csv"
    binary.write_bytes(b"\xff\xfe\x00video\x00")
    with pytest.raises(InputError, match="not a text CSV file"):
        batches.read_csv(binary)


def test_the_page_makes_every_clip_onto_every_character() -> None:
    lines = batches.lines_for(["a.mp4", "b.mp4"], ["x.png", "y.png"], ["local"])
    assert [(line.row, line.video, line.image) for line in lines] == [
        (1, "a.mp4", "x.png"),
        (2, "a.mp4", "y.png"),
        (3, "b.mp4", "x.png"),
        (4, "b.mp4", "y.png"),
    ]
    key = batches.batch_key(lines, "local")
    assert key == batches.batch_key(lines, "local")
    assert key != batches.batch_key(lines, "local", nonce="again")
    assert key != batches.batch_key(lines, "ana@example.com")


# ---- plan, send, resend ----------------------------------------------------------------------
def _csv(folder: Path, rows: list[str]) -> list[BatchLine]:
    text = "video,image,providers,options\n" + "\n".join(rows) + "\n"
    return batches.parse_csv(text, folder=folder, name="takes.csv")


def test_every_row_is_checked_and_priced_before_anything_is_sent(
    tmp_path: Path, folder: Path, runway_emulator: RunwayEmulator
) -> None:
    studio = _studio(tmp_path, runway_emulator.env())
    lines = _csv(
        folder,
        [
            "take1.mp4,alice.png,runway,",
            "take2.mp4,alice.png,local;runway,",
            "broken.mp4,alice.png,runway,",
            "gone.mp4,alice.png,runway,",
        ],
    )
    planned = batches.plan(studio, lines, name="takes.csv", key=batches.batch_key(lines, "local"))
    assert runway_emulator.create_count == 0 and studio.store.list_tasks() == []
    ready, both, broken, gone = planned.lines
    assert not ready.problems and ready.estimates == {"runway": 0.2}  # $0.05/s × 4 s
    assert both.estimates == {"local": 0.0, "runway": 0.18}  # 3.5 s
    assert "'broken.mp4' is not a video or image this app can read" in broken.problems[0]
    assert gone.problems == [f"The driving video file was not found: {folder / 'gone.mp4'}"]
    assert any("low resolution" in n for n in ready.notes)  # warnings are kept, not blocking
    assert planned.to_send == {2: ["runway"], 3: ["local", "runway"]}
    assert planned.planned_by_provider() == {"runway": 0.38, "local": 0.0}
    assert planned.total_usd == 0.38 and planned.task_count == 3
    assert [line.row for line in planned.refused] == [4, 5]
    studio.close()


def test_a_batch_sent_again_sends_nothing_twice_and_a_fixed_row_goes(
    tmp_path: Path, folder: Path, runway_emulator: RunwayEmulator
) -> None:
    studio = _studio(tmp_path, runway_emulator.env())
    work = tmp_path / "takes"
    work.mkdir()
    for name in ("take1.mp4", "take2.mp4", "alice.png"):
        (work / name).symlink_to(folder / name)
    lines = _csv(work, ["take1.mp4,alice.png,runway,", "later.mp4,alice.png,runway,"])
    key = batches.batch_key(lines, "local")

    first = batches.plan(studio, lines, name="takes.csv", key=key)
    sent = batches.send(studio, first)
    assert runway_emulator.create_count == 1
    assert studio.store.batch_runs(sent.id).keys() == {2}

    again = batches.plan(studio, lines, name="takes.csv", key=key)
    assert again.batch_id == sent.id and again.sent == [2] and again.to_send == {}
    assert batches.send(studio, again).id == sent.id
    assert runway_emulator.create_count == 1  # nothing twice
    assert sent.estimate_usd == 0.2 and _estimate(studio, sent.id) == 0.2

    (work / "later.mp4").symlink_to(folder / "take2.mp4")  # the creator adds the take
    fixed = batches.plan(studio, lines, name="takes.csv", key=key)
    assert fixed.to_send == {3: ["runway"]}
    batches.send(studio, fixed)
    assert runway_emulator.create_count == 2
    view = batches.load(studio, sent.id)
    assert [(rt.row, rt.task.provider) for rt in view.tasks] == [(2, "runway"), (3, "runway")]
    assert view.counts["not_sent"] == 0 and view.batch.lines[1].problems == []
    assert _estimate(studio, sent.id) == 0.38  # both rows: 4 s and 3.5 s at $0.05
    studio.close()


def _estimate(studio: Studio, batch_id: str) -> float | None:
    found = studio.store.get_batch(batch_id)
    assert found is not None
    return found.estimate_usd


def test_a_run_left_without_its_task_is_finished_under_its_own_keys(
    tmp_path: Path, folder: Path, runway_emulator: RunwayEmulator
) -> None:
    """A process stopped between writing a row's run and its task: the next send makes the
    missing task once, in the same run."""
    studio = _studio(tmp_path, runway_emulator.env())
    lines = _csv(folder, ["take1.mp4,alice.png,runway,"])
    planned = batches.plan(studio, lines, name="t.csv", key="batch-crash")
    batch, _ = studio.store.create_batch("t.csv", planned.lines, idempotency_key="batch-crash")
    line = planned.lines[0]
    run, _ = studio.store.create_run(
        TaskInputs(video=line.video, image=line.image),
        line.options,
        line.providers,
        idempotency_key=f"batch:{batch.id}:2",
        batch_id=batch.id,
        batch_row=2,
    )
    resumed = batches.plan(studio, lines, name="t.csv", key="batch-crash")
    assert resumed.sent == [2] and resumed.to_send == {2: ["runway"]}
    batches.send(studio, resumed)
    batches.send(studio, batches.plan(studio, lines, name="t.csv", key="batch-crash"))
    assert runway_emulator.create_count == 1
    (task,) = studio.store.run_tasks(run.id)
    assert task.provider == "runway"
    studio.close()


def test_a_cap_refuses_the_whole_batch_with_what_is_left(
    tmp_path: Path, folder: Path, runway_emulator: RunwayEmulator
) -> None:
    env = {**runway_emulator.env(), "REENACT_RUNWAY_SPEND_CAP_DAY_USD": "0.30"}
    studio = _studio(tmp_path, env)
    lines = _csv(folder, ["take1.mp4,alice.png,local;runway,", "take2.mp4,alice.png,runway,"])
    planned = batches.plan(studio, lines, name="t.csv", key="batch-cap")
    with pytest.raises(
        InputError, match=r"would add \$0\.38; \$0\.30 left\..* Nothing in this batch was sent\."
    ):
        batches.send(studio, planned)
    assert runway_emulator.create_count == 0
    assert studio.store.list_tasks() == [] and studio.store.list_batches() == []
    studio.close()


# ---- progress, ETA, results ------------------------------------------------------------------
def test_the_view_counts_and_the_zip_lists_what_each_row_produced(
    tmp_path: Path, folder: Path, runway_emulator: RunwayEmulator
) -> None:
    studio = _studio(tmp_path, runway_emulator.env())
    lines = _csv(
        folder,
        [
            "take1.mp4,alice.png,runway,",
            "take2.mp4,alice.png,runway,",
            "broken.mp4,alice.png,runway,",
        ],
    )
    sent = batches.send(studio, batches.plan(studio, lines, name="takes.csv", key="batch-view"))
    view = batches.load(studio, sent.id)
    assert view.counts == {"queued": 2, "running": 0, "done": 0, "failed": 0, "not_sent": 1}
    assert view.eta_s is None  # Runway has finished nothing here yet: no observed duration
    runway_emulator.fail_task(view.tasks[1].task.provider_task_id or "", "The face was hidden.")
    Monitor(studio).wait_many([rt.task.id for rt in view.tasks], timeout=60)
    view = batches.load(studio, sent.id)
    assert view.settled
    assert view.counts == {"queued": 0, "running": 0, "done": 1, "failed": 1, "not_sent": 1}
    with pytest.raises(InputError, match="No batch with id"):
        batches.load(studio, sent.id, owner="someone@example.com")

    archive, table = batches.export(studio, view, tmp_path / "out")
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == [
            "01-row2-runway-take1-alice.mp4",
            "summary.csv",
            "summary.json",
        ]
        inside = z.read("summary.csv").decode()
    assert table.read_bytes() == inside.encode()
    rows = list(csv.DictReader(io.StringIO(inside)))
    assert [(r["row"], r["status"], r["result_file"]) for r in rows] == [
        ("2", "succeeded", "01-row2-runway-take1-alice.mp4"),
        ("3", "failed", ""),
        ("4", "not sent", ""),
    ]
    assert rows[0]["task_id"] == view.tasks[0].task.id and rows[0]["video"] == "take1.mp4"
    assert rows[0]["cost_usd"] and rows[0]["cost_source"] in ("reported", "estimate")
    # A failure costs nothing: Runway reports $0 for it (or, silent, it is not counted).
    assert "The face was hidden" in rows[1]["error"] and float(rows[1]["cost_usd"] or 0) == 0
    assert "could not read" in rows[2]["error"] or "can read" in rows[2]["error"]
    studio.close()


def _task(provider: str, status: TaskStatus, age_s: float, **fields: object) -> Task:
    now = utcnow()
    return Task(
        id=f"t{age_s}",
        provider=provider,
        status=status,
        created_at=now - timedelta(seconds=age_s),
        **fields,  # type: ignore[arg-type]
    )


def test_the_eta_follows_observed_durations_and_the_local_engines_slots() -> None:
    now = utcnow()
    remote = [_task("runway", TaskStatus.RUNNING, 20), _task("runway", TaskStatus.QUEUED, 5)]
    # Runway renders in parallel: the newest task, 60 - 5 s from now.
    assert batches.eta_s(remote, {"runway": [50, 60, 70]}, now) == pytest.approx(55, abs=0.5)
    said = _task("runway", TaskStatus.RUNNING, 20, meta={"eta_seconds": 90})
    assert batches.eta_s([said], {"runway": [60]}, now) == 90
    local = [_task("local", TaskStatus.QUEUED, 1) for _ in range(4)]
    slots = batches.concurrency("local")
    assert slots is not None
    expected = max(4 * 29 / slots, 29)  # four 30 s renders, `slots` at a time
    assert batches.eta_s(local, {"local": [30]}, now) == pytest.approx(expected, abs=0.5)
    assert batches.eta_s(remote + local, {"runway": [60]}, now) is None  # local never seen


def test_a_success_counts_as_done_only_once_its_file_is_saved() -> None:
    saving = _task("runway", TaskStatus.SUCCEEDED, 1, archive_state="pending")
    saved = _task("runway", TaskStatus.SUCCEEDED, 1, archive_state="done", result_path="/r.mp4")
    dead_link = _task("runway", TaskStatus.SUCCEEDED, 1, archive_state="gave_up")
    assert [batches.bucket(t) for t in (saving, saved, dead_link)] == ["running", "done", "failed"]
    assert batches.bucket(_task("local", TaskStatus.UNKNOWN, 1)) == "failed"
    assert batches.bucket(_task("local", TaskStatus.SUBMITTING, 1)) == "queued"


def test_recent_durations_are_each_providers_latest_successes(tmp_path: Path) -> None:
    studio = _studio(tmp_path, {})
    store = studio.store
    for seconds in (10, 20, 30):
        task, _ = store.create_task("runway", status=TaskStatus.QUEUED)
        store.update_task(
            task.id,
            status=TaskStatus.SUCCEEDED,
            finished_at=task.created_at + timedelta(seconds=seconds),
        )
    failed, _ = store.create_task("runway", status=TaskStatus.QUEUED)
    store.update_task(failed.id, status=TaskStatus.FAILED, finished_at=utcnow())
    got = store.recent_durations(["runway", "local"], per_provider=2)
    assert got["local"] == [] and sorted(round(s) for s in got["runway"]) == [20, 30]
    studio.close()
