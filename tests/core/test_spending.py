"""Spending and caps (services/spending.py) on a real SQLite file and a real PostgreSQL
database (tests/pg.py), with the loopback emulators:
what counts (reported, estimate, nothing), UTC day and month buckets, caps from the
environment and from Settings, the refusal sentence, and that a refused submit sends nothing
— not even when two submits race for the last of a cap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services import spending
from services.compare.runs import load_run, numbers
from services.config import load_settings
from services.errors import ConfigError, InputError
from services.models import TaskInputs, TaskStatus
from services.monitor import Monitor
from services.studio import Studio
from tests.emulators import CometApiEmulator, LiangXinEmulator, RunwayEmulator

# Runway publishes $0.05 a second; the 3 s driving clip below makes $0.15 an estimate.
RUNWAY_ESTIMATE = 0.15


@pytest.fixture
def inputs(tmp_path: Path) -> TaskInputs:
    from tests.mediagen import make_image, make_video

    video = make_video(tmp_path / "drive.mp4", size=(160, 90), seconds=3.0, fps=8)
    image = make_image(tmp_path / "face.png", size=(320, 180))
    return TaskInputs(video=str(video), image=str(image))


@pytest.fixture
def make_studio(tmp_path: Path, db_url: str) -> Iterator:  # type: ignore[type-arg]
    made: list[Studio] = []

    def factory(*emulators: object, **env: str) -> Studio:
        variables = {
            "REENACT_DATA_DIR": str(tmp_path / "data"),
            "REENACT_DATABASE_URL": db_url,
            "REENACT_ALLOW_PRIVATE_URLS": "1",
            "REENACT_PUBLIC_URL": "http://127.0.0.1:9",
            **env,
        }
        for emu in emulators:
            variables.update(emu.env())  # type: ignore[attr-defined]
        studio = Studio(load_settings(env=variables, secrets={}))
        made.append(studio)
        return studio

    yield factory
    for studio in made:
        studio.close()


def _at(studio: Studio, task_id: str, when: datetime) -> None:
    studio.store.update_task(task_id, created_at=when)


# ---- refusals ---------------------------------------------------------------------------------
def test_a_cap_refuses_the_submit_that_would_cross_it_and_nothing_is_sent(
    make_studio, inputs: TaskInputs, runway_emulator: RunwayEmulator
) -> None:
    studio = make_studio(runway_emulator, REENACT_RUNWAY_SPEND_CAP_DAY_USD="0.40")
    first = studio.submit("runway", inputs)
    second = studio.submit("runway", inputs)
    assert first.cost_estimate == second.cost_estimate == RUNWAY_ESTIMATE
    with pytest.raises(InputError) as refused:
        studio.submit("runway", inputs)
    assert str(refused.value) == (
        "Today's Runway cap is $0.40: $0.30 spent, this would add $0.15; $0.10 left. "
        "Raise the cap in Settings → Spending, or wait until tomorrow (UTC)."
    )
    assert runway_emulator.create_count == 2
    assert studio.store.count_tasks() == 2  # nothing was written for the refused submit
    # The free local engine is never held back by a Runway cap, nor by one on everything.
    spending.set_cap(studio.store, "day", "total", 0.30)
    assert studio.submit("local", inputs).cost_estimate == 0.0


def test_the_first_submit_over_a_cap_reaches_no_provider(
    make_studio, inputs: TaskInputs, runway_emulator: RunwayEmulator
) -> None:
    studio = make_studio(runway_emulator, REENACT_SPEND_CAP_MONTH_USD="0.10")
    with pytest.raises(InputError, match=r"This month's cap for all providers is \$0\.10: "):
        studio.submit("runway", inputs)
    assert runway_emulator.create_count == 0
    assert studio.store.count_tasks() == 0


def test_a_comparison_is_checked_as_a_whole_before_anything_is_sent(
    make_studio,
    inputs: TaskInputs,
    runway_emulator: RunwayEmulator,
    cometapi_emulator: CometApiEmulator,
) -> None:
    studio = make_studio(runway_emulator, cometapi_emulator, REENACT_SPEND_CAP_DAY_USD="0.40")
    studio.set_price("cometapi", 0.1)  # $0.30 for the 3 s clip
    with pytest.raises(InputError, match=r"this would add \$0\.45; \$0\.40 left"):
        studio.submit_many(["runway", "cometapi"], inputs)
    assert runway_emulator.create_count == cometapi_emulator.create_count == 0
    assert studio.store.list_runs() == []
    run, tasks = studio.submit_many(["runway", "local"], inputs, idempotency_key="k")
    assert [t.status for t in tasks] == [TaskStatus.QUEUED, TaskStatus.QUEUED]
    # Sent again (a rerun, a double click) at the edge of the cap: the same run, no refusal.
    spending.set_cap(studio.store, "day", "total", 0.15)
    again, same = studio.submit_many(["runway", "local"], inputs, idempotency_key="k")
    assert again.id == run.id and [t.id for t in same] == [t.id for t in tasks]
    assert runway_emulator.create_count == 1


def test_a_provider_without_a_price_is_refused_only_under_a_cap_that_covers_it(
    make_studio, inputs: TaskInputs, cometapi_emulator: CometApiEmulator
) -> None:
    studio = make_studio(cometapi_emulator, REENACT_RUNWAY_SPEND_CAP_DAY_USD="5")
    assert studio.submit("cometapi", inputs).cost_estimate is None  # no cap on CometAPI
    spending.set_cap(studio.store, "month", "cometapi", 10.0)
    with pytest.raises(InputError) as refused:
        studio.submit("cometapi", inputs)
    assert str(refused.value) == (
        "CometAPI has no price here, so what it costs cannot be counted against this month's "
        "CometAPI cap ($10.00). Set your price per second for CometAPI in Settings → Your "
        "prices, then submit again."
    )
    assert cometapi_emulator.create_count == 1


def test_two_submits_racing_for_the_last_of_a_cap_cannot_both_pass(
    make_studio, inputs: TaskInputs, runway_emulator: RunwayEmulator
) -> None:
    # Two Studios on one database, as the app and a CLI process would be.
    studios = [
        make_studio(runway_emulator, REENACT_RUNWAY_SPEND_CAP_DAY_USD="0.20") for _ in range(2)
    ]
    start = threading.Barrier(len(studios))
    outcomes: list[str] = []

    def submit(studio: Studio) -> None:
        start.wait()
        try:
            studio.submit("runway", inputs)
            outcomes.append("sent")
        except InputError:
            outcomes.append("refused")

    workers = [threading.Thread(target=submit, args=(s,)) for s in studios]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert sorted(outcomes) == ["refused", "sent"]
    assert runway_emulator.create_count == 1


def test_caps_saved_in_settings_replace_the_environments_one_by_one(
    make_studio, runway_emulator: RunwayEmulator
) -> None:
    studio = make_studio(
        runway_emulator,
        REENACT_SPEND_CAP_DAY_USD="20",
        REENACT_RUNWAY_SPEND_CAP_MONTH_USD="$100",
    )
    found = {
        (c.period, c.scope): (c.usd, c.source) for c in spending.caps(studio.store, studio.settings)
    }
    assert found == {
        ("day", "total"): (20.0, "REENACT_SPEND_CAP_DAY_USD"),
        ("month", "runway"): (100.0, "REENACT_RUNWAY_SPEND_CAP_MONTH_USD"),
    }
    spending.set_cap(studio.store, "day", "total", None)  # cleared in Settings: no cap
    spending.set_cap(studio.store, "day", "runway", 7.5)
    found = {
        (c.period, c.scope): (c.usd, c.source) for c in spending.caps(studio.store, studio.settings)
    }
    assert found == {
        ("day", "runway"): (7.5, "Settings"),
        ("month", "runway"): (100.0, "REENACT_RUNWAY_SPEND_CAP_MONTH_USD"),
    }
    spending.forget_cap(studio.store, "day", "total")
    assert ("day", "total") in {
        (c.period, c.scope) for c in spending.caps(studio.store, studio.settings)
    }
    with pytest.raises(InputError, match="between"):
        spending.set_cap(studio.store, "day", "runway", -1)
    with pytest.raises(InputError, match="no provider called"):
        spending.set_cap(studio.store, "day", "nobody", 1)


def test_an_unreadable_cap_variable_refuses_paid_submits_with_a_sentence_naming_it(
    make_studio, inputs: TaskInputs, runway_emulator: RunwayEmulator
) -> None:
    studio = make_studio(runway_emulator, REENACT_RUNWAY_SPEND_CAP_DAY_USD="twenty")
    with pytest.raises(ConfigError, match=r"REENACT_RUNWAY_SPEND_CAP_DAY_USD='twenty' is not an"):
        studio.submit("runway", inputs)
    assert runway_emulator.create_count == 0
    assert studio.submit("local", inputs).status is TaskStatus.QUEUED  # costs nothing
    report = spending.month_report(studio.store, studio.settings)
    assert report.problems and "REENACT_RUNWAY_SPEND_CAP_DAY_USD" in report.problems[0]


# ---- what counts ------------------------------------------------------------------------------
def test_what_each_task_counts_for(make_studio, inputs: TaskInputs) -> None:
    studio = make_studio()
    store = studio.store

    def row(provider: str, status: TaskStatus, tracked: bool = False, **fields: object) -> None:
        task, _ = store.create_task(provider, status=status, inputs=inputs, tracked=tracked)
        store.update_task(task.id, **fields)

    row("runway", TaskStatus.SUCCEEDED, cost_estimate=0.15, cost_usd=0.25)  # reported wins
    row("runway", TaskStatus.RUNNING, cost_estimate=0.15)  # estimate
    row("runway", TaskStatus.FAILED, cost_estimate=0.15)  # nothing: not charged
    row("runway", TaskStatus.FAILED, cost_estimate=0.15, cost_usd=0.05)  # what it said
    row("runway", TaskStatus.CANCELED, cost_estimate=0.15)  # nothing
    row("runway", TaskStatus.UNKNOWN, cost_estimate=0.15)  # may have been charged
    row("cometapi", TaskStatus.SUCCEEDED)  # no price: counted, unpriced
    row("makevid", TaskStatus.SUCCEEDED, tracked=True)  # made and paid elsewhere
    row("local", TaskStatus.SUCCEEDED, cost_estimate=0.0)
    report = spending.month_report(store, studio.settings)
    runway = report.providers["runway"]
    assert (runway.reported_usd, runway.estimated_usd, runway.tasks) == (0.30, 0.30, 4)
    assert runway.source == "mixed" and runway.total_usd == 0.60
    comet = report.providers["cometapi"]
    assert (comet.tasks, comet.unpriced, comet.total_usd, comet.source) == (1, 1, 0.0, "estimate")
    assert "makevid" not in report.providers
    assert report.providers["local"].total_usd == 0.0
    assert list(report.providers) == ["local", "runway", "cometapi"]  # the app's order
    assert report.total.total_usd == 0.60 and report.total.tasks == 6


def test_days_and_months_are_utc(make_studio, inputs: TaskInputs) -> None:
    studio = make_studio()
    store = studio.store
    last_of_jan = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    first_of_feb = datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC)
    # 20:30 in New York on Jan 31 is already Feb 1 in UTC: it counts for February.
    new_york_evening = datetime(2026, 1, 31, 20, 30, tzinfo=UTC) + timedelta(hours=5)
    for when, cost in ((last_of_jan, 1.0), (first_of_feb, 2.0), (new_york_evening, 4.0)):
        task, _ = store.create_task("runway", status=TaskStatus.SUCCEEDED, inputs=inputs)
        store.update_task(task.id, cost_usd=cost)
        _at(studio, task.id, when)
    jan = spending.month_report(store, studio.settings, "2026-01", now=first_of_feb)
    feb = spending.month_report(store, studio.settings, "2026-02", now=first_of_feb)
    assert jan.total.total_usd == 1.0 and [d.day.isoformat() for d in jan.days] == ["2026-01-31"]
    assert feb.total.total_usd == 6.0 and [d.day.isoformat() for d in feb.days] == ["2026-02-01"]
    assert feb.total.source == "reported"
    # Just after midnight UTC, today's cap sees only today's $6; this month's the same.
    spending.set_cap(store, "day", "runway", 6.5)
    spending.set_cap(store, "month", "total", 100)
    now = first_of_feb + timedelta(seconds=30)
    status = {(c.period, c.scope): c for c in spending.cap_status(store, studio.settings, now=now)}
    assert status[("day", "runway")].spent_usd == 6.0
    assert status[("day", "runway")].left_usd == 0.5
    assert status[("month", "total")].spent_usd == 6.0
    with pytest.raises(InputError, match=r"\$6\.00 spent, this would add \$1\.00; \$0\.50 left"):
        spending.ensure_within_cap(store, studio.settings, {"runway": 1.0}, now=now)
    # A second before midnight, January's spending was today's.
    spending.ensure_within_cap(store, studio.settings, {"runway": 5.0}, now=last_of_jan)
    with pytest.raises(InputError, match=r"\$1\.00 spent, this would add \$6\.00"):
        spending.ensure_within_cap(store, studio.settings, {"runway": 6.0}, now=last_of_jan)
    with pytest.raises(InputError, match="YYYY-MM"):
        spending.month_report(store, studio.settings, "2026-13")


# ---- what providers report --------------------------------------------------------------------
def _finish(studio: Studio, task_id: str) -> None:
    monitor = Monitor(studio, interval_scale=0.001)
    deadline = time.monotonic() + 30
    try:
        while not studio.get(task_id).status.terminal:
            assert time.monotonic() < deadline, f"task {task_id} did not finish"
            monitor.tick([task_id])
    finally:
        monitor.stop()


def test_runways_reported_credits_become_the_tasks_cost(
    make_studio,
    inputs: TaskInputs,
    runway_emulator: RunwayEmulator,
) -> None:
    runway_emulator.configure(polls_to_finish=1, queued_polls=0, credits=25)
    studio = make_studio(runway_emulator)
    run, (task,) = studio.submit_many(["runway"], inputs)
    _finish(studio, task.id)
    done = studio.get(task.id)
    assert done.status is TaskStatus.SUCCEEDED
    assert done.cost_usd == 0.25 and done.cost_estimate == RUNWAY_ESTIMATE
    (row,) = numbers(studio, load_run(studio, run.id))
    assert (row.cost_usd, row.cost_source) == (0.25, "reported")
    # A refunded failure says so: $0 reported, not the estimate.
    runway_emulator.configure(fail_reason="Something broke.", fail_code="INTERNAL")
    failed = studio.submit("runway", inputs)
    _finish(studio, failed.id)
    assert studio.get(failed.id).cost_usd == 0.0
    report = spending.month_report(studio.store, studio.settings)
    assert report.providers["runway"].reported_usd == 0.25
    assert report.providers["runway"].source == "reported"


def test_liangxin_credits_count_only_with_a_known_price_per_credit(
    make_studio, inputs: TaskInputs, liangxin_emulator: LiangXinEmulator
) -> None:
    liangxin_emulator.configure(polls_to_finish=1, queued_polls=0, credits_consumed=30)
    unpriced = make_studio(liangxin_emulator)
    task = unpriced.submit("liangxin", inputs)
    _finish(unpriced, task.id)
    assert unpriced.get(task.id).cost_usd is None  # credits of unknown worth: not dollars
    priced = make_studio(liangxin_emulator, REENACT_LIANGXIN_USD_PER_CREDIT="0.005")
    task = priced.submit("liangxin", inputs)
    _finish(priced, task.id)
    assert priced.get(task.id).cost_usd == 0.15
