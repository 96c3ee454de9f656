"""Comparison runs on a real SQLite file with the loopback emulators: listing, provider order,
retries, the numbers table, votes, the leaderboard and the analysis claims."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.compare.leaderboard import bradley_terry, leaderboard, pairs
from services.compare.runs import load_run, numbers, vote
from services.config import load_settings
from services.errors import InputError
from services.models import OutputFacts, TaskAnalysis, TaskInputs, TaskStatus, Vote, utcnow
from services.studio import Studio
from tests.emulators import CometApiEmulator, RunwayEmulator


@pytest.fixture
def inputs(tmp_path: Path) -> TaskInputs:
    from tests.mediagen import make_image, make_video

    video = make_video(tmp_path / "drive.mp4", size=(160, 90), seconds=3.0, fps=8)
    image = make_image(tmp_path / "face.png", size=(320, 180))
    return TaskInputs(video=str(video), image=str(image))


@pytest.fixture
def studio(tmp_path: Path, runway_emulator: RunwayEmulator, cometapi_emulator: CometApiEmulator):
    env = {
        "REENACT_DATA_DIR": str(tmp_path / "data"),
        "REENACT_ALLOW_PRIVATE_URLS": "1",
        # CometAPI takes links only; a public URL lets this app serve the local inputs.
        "REENACT_PUBLIC_URL": "http://127.0.0.1:9",
        **runway_emulator.env(),
        **cometapi_emulator.env(),
    }
    made = Studio(load_settings(env=env, secrets={}))
    yield made
    made.close()


def _finish(studio: Studio, task_id: str, **fields) -> None:  # type: ignore[no-untyped-def]
    studio.store.update_task(task_id, **fields)


def test_comparisons_are_listed_newest_first_filtered_and_counted(
    studio: Studio, inputs: TaskInputs
) -> None:
    single, _ = studio.store.create_run(inputs, studio_options(), ["runway"])
    first, _ = studio.submit_many(["cometapi", "runway"], inputs)
    second, _ = studio.submit_many(["runway", "cometapi"], inputs, idempotency_key="k2")
    listed = studio.store.list_comparisons()
    assert [r.id for r in listed] == [second.id, first.id]
    assert single.id not in {r.id for r in listed}
    assert studio.store.count_comparisons() == 2
    assert studio.store.count_comparisons(provider="local") == 0
    assert [r.id for r in studio.store.list_comparisons(provider="cometapi")] == [
        second.id,
        first.id,
    ]
    assert [r.id for r in studio.store.list_comparisons(limit=1, offset=1)] == [first.id]


def studio_options():  # type: ignore[no-untyped-def]
    from services.models import TaskOptions

    return TaskOptions()


def test_run_keeps_the_chosen_order_and_a_retry_stands_in_for_its_task(
    studio: Studio, inputs: TaskInputs
) -> None:
    run, tasks = studio.submit_many(["runway", "cometapi"], inputs)
    assert [t.provider for t in studio.store.run_tasks(run.id)] == ["runway", "cometapi"]
    _finish(studio, tasks[0].id, status=TaskStatus.FAILED, error="Boom.")
    retried = studio.retry(tasks[0].id, idempotency_key="retry-1")
    view = load_run(studio, run.id)
    assert [t.provider for t in view.tasks] == ["runway", "cometapi"]
    assert view.tasks[0].id == retried.id
    assert view.reference == inputs.video


def test_numbers_table_reads_times_cost_specs_and_fidelity(
    studio: Studio, inputs: TaskInputs
) -> None:
    run, tasks = studio.submit_many(["runway", "cometapi"], inputs)
    runway, comet = tasks
    t0 = runway.created_at
    studio.store.update_task(runway.id, status=TaskStatus.RUNNING, progress=0.5)
    _finish(
        studio,
        runway.id,
        status=TaskStatus.SUCCEEDED,
        progress=1.0,
        finished_at=t0 + timedelta(seconds=30),
        result_path=inputs.video,
    )
    _finish(
        studio,
        comet.id,
        status=TaskStatus.FAILED,
        error="CometAPI refused the image.",
        finished_at=t0 + timedelta(seconds=12),
    )
    studio.store.save_analysis(
        TaskAnalysis(
            task_id=runway.id,
            state="done",
            result_path=inputs.video,
            output=OutputFacts(width=160, height=90, fps=8.0, duration_s=3.0, has_audio=True),
            fidelity={"score": 87.26, "signals": []},
        )
    )
    rows = numbers(studio, load_run(studio, run.id))
    assert [r.provider for r in rows] == ["runway", "cometapi"]
    rw, cm = rows
    assert rw.state is TaskStatus.SUCCEEDED and rw.total_s == 30.0
    assert rw.queued_s is not None and rw.render_s is not None
    assert rw.queued_s + rw.render_s == pytest.approx(30.0, abs=0.2)
    assert (rw.width, rw.height, rw.fps, rw.duration_s, rw.has_audio) == (160, 90, 8.0, 3.0, True)
    assert rw.fidelity == 87.3
    # Runway publishes $0.05/s; the 3 s driving clip makes $0.15, marked as an estimate.
    assert rw.cost_usd == pytest.approx(0.15) and rw.cost_source == "estimate"
    assert rw.price_source == "published"
    assert cm.error == "CometAPI refused the image." and cm.total_s == 12.0
    # CometAPI publishes no price: none until the creator sets theirs.
    assert cm.cost_usd is None
    studio.set_price("cometapi", 0.1)
    cm = numbers(studio, load_run(studio, run.id))[1]
    assert cm.cost_usd == pytest.approx(0.3) and cm.price_source == "yours"
    assert studio.prices() == {"cometapi": 0.1}
    with pytest.raises(InputError):
        studio.set_price("cometapi", -1)


def test_numbers_say_measuring_until_the_analysis_of_this_file_is_done(
    studio: Studio, inputs: TaskInputs
) -> None:
    run, tasks = studio.submit_many(["runway", "cometapi"], inputs)
    _finish(studio, tasks[0].id, status=TaskStatus.SUCCEEDED, result_path=inputs.video)
    assert numbers(studio, load_run(studio, run.id))[0].fidelity_note == "measuring…"
    studio.store.save_analysis(
        TaskAnalysis(
            task_id=tasks[0].id,
            state="done",
            result_path=inputs.video,
            fidelity={"score": None, "reason": "No face found in the result."},
        )
    )
    row = numbers(studio, load_run(studio, run.id))[0]
    assert row.fidelity is None and row.fidelity_note == "No face found in the result."


def test_analysis_claims_one_owner_per_file_and_expire(studio: Studio, inputs: TaskInputs) -> None:
    task = studio.submit("runway", inputs)
    store = studio.store
    assert store.claim_analysis(task.id, "/a.mp4", lease_s=60)
    assert not store.claim_analysis(task.id, "/a.mp4", lease_s=60)  # someone is on it
    store.save_analysis(TaskAnalysis(task_id=task.id, state="done", result_path="/a.mp4"))
    assert not store.claim_analysis(task.id, "/a.mp4", lease_s=60)  # done for this file
    assert store.claim_analysis(task.id, "/b.mp4", lease_s=-1)  # a new file; lease already over
    assert store.claim_analysis(task.id, "/b.mp4", lease_s=60)  # the dead claim is taken over
    _finish(studio, task.id, status=TaskStatus.SUCCEEDED, result_path="/c.mp4")
    store.save_analysis(TaskAnalysis(task_id=task.id, state="done", result_path="/b.mp4"))
    assert [t.id for t in store.unanalysed()] == [task.id]  # the result file changed
    studio.delete(task.id)
    assert store.analyses([task.id]) == {}


def test_votes_need_two_results_and_name_a_contender(studio: Studio, inputs: TaskInputs) -> None:
    run, tasks = studio.submit_many(["runway", "cometapi"], inputs)
    _finish(studio, tasks[0].id, status=TaskStatus.SUCCEEDED, result_path=inputs.video)
    with pytest.raises(InputError, match="at least two finished results"):
        vote(studio, run.id, "runway")
    _finish(studio, tasks[1].id, status=TaskStatus.SUCCEEDED, result_path=inputs.video)
    with pytest.raises(InputError, match="choose one of runway, cometapi"):
        vote(studio, run.id, "local")
    with pytest.raises(InputError, match="No comparison run"):
        vote(studio, "nope", "runway")
    vote(studio, run.id, "runway", note="  sharper lips ", blind=True)
    saved = vote(studio, run.id, "CometAPI ")  # a new vote replaces the first
    stored = studio.store.votes([run.id])
    assert stored == [saved] and saved.winner == "cometapi" and saved.note is None
    assert sorted(saved.contenders) == ["cometapi", "runway"]


def _v(winner: str, *others: str) -> Vote:
    return Vote(run_id=f"r{utcnow().timestamp()}", winner=winner, contenders=[winner, *others])


def test_bradley_terry_orders_by_wins_and_stays_finite_when_unbeaten() -> None:
    outcomes = pairs([_v("a", "b", "c")] * 3 + [_v("b", "c")] * 2)
    strength = bradley_terry(outcomes, ["a", "b", "c"])
    assert strength["a"] > strength["b"] > strength["c"]
    assert all(abs(s) < 5 for s in strength.values())


def test_leaderboard_moves_as_votes_are_added() -> None:
    votes = [_v("runway", "local"), _v("runway", "local", "cometapi")]
    table = leaderboard(votes)
    assert table[0].provider == "runway"
    top = table[0]
    assert top.low <= top.rating <= top.high and top.wins == 3 and top.first_places == 2
    more = votes + [_v("local", "runway")] * 5
    moved = leaderboard(more)
    assert moved[0].provider == "local"
    local = next(s for s in moved if s.provider == "local")
    assert local.votes == 7 and local.losses == 2 and local.wins == 5
    assert leaderboard([]) == []
