"""The monitor against real emulators: grace periods, backoff, archiving, and two monitors
sharing one database."""

from __future__ import annotations

import threading
from itertools import pairwise
from pathlib import Path

from services.archive import fetch_result
from services.errors import InputError, ProviderError
from services.models import TaskStatus, utcnow
from services.monitor import Monitor
from tests.cli.support import wait_for
from tests.emulators import CometApiEmulator, RunwayEmulator


def _archived_ok(path: str | None) -> bool:
    assert path is not None
    file = Path(path)
    assert file.name == "result.mp4" and file.is_file()
    assert not list(file.parent.glob("*.part"))
    head = file.read_bytes()[:12]
    assert head[4:8] == b"ftyp", "the archived file is an MP4"
    return True


def test_tracked_task_is_followed_to_success_and_archived(
    make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    runway_emulator.configure(queued_polls=1, polls_to_finish=3)
    studio = make_studio(runway_emulator)
    monitor = make_monitor(studio)
    ptid = runway_emulator.add_task()
    task = studio.track("runway", ptid)
    seen: list[tuple[TaskStatus, float]] = []
    done = monitor.wait(
        task.id, timeout=20, on_update=lambda t: seen.append((t.status, t.progress))
    )
    assert done.status is TaskStatus.SUCCEEDED
    assert done.progress == 1.0
    assert _archived_ok(done.result_path)
    assert done.result_path == str(studio.settings.results_dir / task.id / "result.mp4")
    statuses = [s for s, _ in seen]
    assert statuses[0] is TaskStatus.QUEUED and TaskStatus.RUNNING in statuses
    # Exactly the polls the lifecycle needs: nothing polled twice, nothing after the end.
    assert runway_emulator.poll_counts()[ptid] == 3


def test_cometapi_task_not_exist_within_grace_stays_queued(
    make_studio, make_monitor, cometapi_emulator: CometApiEmulator
):
    cometapi_emulator.configure(not_exist_polls=3, queued_polls=1, polls_to_finish=3)
    studio = make_studio(cometapi_emulator)
    monitor = make_monitor(studio, not_found_grace_s=30.0)
    ptid = cometapi_emulator.add_task()
    task = studio.track("cometapi", ptid)
    done = monitor.wait(task.id, timeout=20)
    assert done.status is TaskStatus.SUCCEEDED, done.error
    assert cometapi_emulator.task(ptid).hidden_polls == 3
    assert done.error is None
    assert not any(e.status is TaskStatus.FAILED for e in studio.store.events(task.id))


def test_cometapi_task_not_exist_after_grace_fails_with_a_sentence(
    make_studio, make_monitor, cometapi_emulator: CometApiEmulator
):
    cometapi_emulator.configure(not_exist_seconds=3600)
    studio = make_studio(cometapi_emulator)
    grace = 0.3
    monitor = make_monitor(studio, not_found_grace_s=grace)
    ptid = cometapi_emulator.add_task()
    task = studio.track("cometapi", ptid)
    done = monitor.wait(task.id, timeout=20)
    assert done.status is TaskStatus.FAILED
    assert "does not know this task" in (done.error or "")
    assert done.error_kind == "not_found"
    assert done.finished_at is not None and done.started_at is not None
    assert (done.finished_at - done.started_at).total_seconds() >= grace
    # Polled through the grace period (several times), then given up on.
    assert cometapi_emulator.task(ptid).hidden_polls >= 2


def test_default_grace_comes_from_the_provider_and_the_time_scale(
    make_studio, make_monitor, cometapi_emulator
):
    studio = make_studio(cometapi_emulator)
    monitor = make_monitor(studio, interval_scale=0.5)
    caps = studio.provider("cometapi").capabilities()
    assert monitor.grace("cometapi") == caps.not_found_grace_s * 0.5
    assert monitor.interval("cometapi") == caps.poll_interval_s * 0.5


def test_rate_limit_and_server_errors_back_off_without_failing(
    make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    runway_emulator.configure(queued_polls=1, polls_to_finish=2)
    studio = make_studio(runway_emulator)
    monitor = make_monitor(studio)
    interval = monitor.interval("runway")
    ptid = runway_emulator.add_task()
    task = studio.track("runway", ptid)

    # More 429s than the HTTP layer retries on its own: the monitor sees the failure.
    runway_emulator.fault("rate_limit", route="poll", times=3, retry_after="0")
    before = utcnow()
    stats = monitor.tick([task.id])
    assert stats.polled == 1 and stats.errors == 1
    after_429 = studio.get(task.id)
    assert after_429.status is TaskStatus.QUEUED
    assert after_429.poll_failures == 1
    assert after_429.error is None  # one transient failure stays quiet
    assert after_429.next_poll_at is not None
    assert (after_429.next_poll_at - before).total_seconds() >= 2 * interval

    # Not due yet: a tick right now must not poll it again.
    count = runway_emulator.poll_counts()[ptid]
    if (after_429.next_poll_at - utcnow()).total_seconds() > 0.01:
        assert monitor.tick([task.id]).polled == 0
        assert runway_emulator.poll_counts()[ptid] == count

    runway_emulator.fault("status", route="poll", times=3, status=500)
    before = utcnow()
    wait_for(lambda: monitor.tick([task.id]).polled == 1, what="the next poll", timeout=10)
    after_500 = studio.get(task.id)
    assert after_500.status is TaskStatus.QUEUED
    assert after_500.poll_failures == 2
    assert after_500.next_poll_at is not None
    # The backoff doubled: two failures in a row wait four intervals.
    assert (after_500.next_poll_at - before).total_seconds() >= 4 * interval
    times = runway_emulator.poll_times(ptid)  # 3 answered 429, then 3 answered 500
    assert times[-3] - times[-4] >= 2 * interval  # the 500s came no sooner than the backoff

    done = monitor.wait(task.id, timeout=30)
    assert done.status is TaskStatus.SUCCEEDED
    assert done.poll_failures == 0 and done.error is None
    assert _archived_ok(done.result_path)


def test_wrong_key_is_shown_but_the_task_stays_pollable(
    make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    studio = make_studio(runway_emulator)
    monitor = make_monitor(studio)
    ptid = runway_emulator.add_task()
    task = studio.track("runway", ptid)
    runway_emulator.fault("auth", route="poll", times=1)
    monitor.tick([task.id])
    shown = studio.get(task.id)
    assert shown.status is TaskStatus.QUEUED
    assert shown.error_kind == "authentication"
    assert "rejected the API key" in (shown.error or "")
    assert runway_emulator.key not in (shown.error or "")
    done = monitor.wait(task.id, timeout=30)  # the key works again: it carries on
    assert done.status is TaskStatus.SUCCEEDED and done.error is None


def test_provider_failure_is_recorded_with_the_reason(
    make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    runway_emulator.configure(polls_to_finish=2)
    studio = make_studio(runway_emulator)
    monitor = make_monitor(studio)
    ptid = runway_emulator.add_task()
    runway_emulator.fail_task(ptid, "Input image has no visible face")
    task = studio.track("runway", ptid)
    done = monitor.wait(task.id, timeout=20)
    assert done.status is TaskStatus.FAILED
    assert "Input image has no visible face" in (done.error or "")
    assert done.result_path is None


def test_expired_result_link_keeps_success_and_says_why(
    make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    runway_emulator.configure(polls_to_finish=1, expire_results=403)
    studio = make_studio(runway_emulator)
    monitor = make_monitor(studio)
    task = studio.track("runway", runway_emulator.add_task())
    done = monitor.wait(task.id, timeout=20)
    assert done.status is TaskStatus.SUCCEEDED
    assert done.result_path is None
    assert "expired" in (done.error or "")
    assert done.result_url and done.result_url.startswith(runway_emulator.url)
    folder = studio.settings.results_dir / task.id
    assert not folder.exists() or not any(folder.iterdir())
    # Given up on for good: later ticks do not hammer the dead link.
    assert monitor.tick().archives_started == 0


def test_a_new_monitor_resumes_unfinished_tasks_and_archives(
    make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    runway_emulator.configure(polls_to_finish=2)
    first = make_studio(runway_emulator)
    tasks = [first.track("runway", runway_emulator.add_task()) for _ in range(3)]
    first.close()  # the app stopped before polling anything
    second = make_studio(runway_emulator)
    monitor = make_monitor(second).start()
    try:
        wait_for(
            lambda: all(second.get(t.id).result_path for t in tasks),
            timeout=20,
            what="every task archived by the background thread",
        )
    finally:
        monitor.stop()
        monitor.stop()  # idempotent
    assert not monitor.is_alive()
    for t in tasks:
        assert second.get(t.id).status is TaskStatus.SUCCEEDED


def test_two_monitors_on_one_database_never_double_apply(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, db_url: str
):
    """On SQLite (the app and a CLI) and on PostgreSQL (two replicas)."""
    runway_emulator.configure(queued_polls=1, polls_to_finish=3)
    app_studio = make_studio(runway_emulator, database_url=db_url)
    cli_studio = make_studio(runway_emulator, database_url=db_url)  # its own connections
    ptids = [runway_emulator.add_task() for _ in range(24)]
    tasks = [app_studio.track("runway", p) for p in ptids]
    monitors: list[Monitor] = [make_monitor(app_studio), make_monitor(cli_studio)]
    stop = threading.Event()

    def spin(monitor: Monitor) -> None:
        while not stop.is_set():
            monitor.tick()

    threads = [threading.Thread(target=spin, args=(m,)) for m in monitors]
    for t in threads:
        t.start()
    try:
        wait_for(
            lambda: all(app_studio.get(t.id).result_path for t in tasks),
            timeout=30,
            what="every task archived",
        )
    finally:
        stop.set()
        for t in threads:
            t.join()
    counts = runway_emulator.poll_counts()
    for task, ptid in zip(tasks, ptids, strict=True):
        # Each state change happened once, by one monitor.
        events = app_studio.store.events(task.id)
        messages = [e.message for e in events]
        assert sum(m.startswith("Result archived") for m in messages) == 1, messages
        assert (
            sum(
                e.status is TaskStatus.SUCCEEDED
                and "→" not in e.message
                and e.message.startswith("Succeeded")
                for e in events
            )
            == 1
        )
        assert sum(m.startswith("queued → running") for m in messages) == 1
        # Never polled twice for one step of the lifecycle, nor sooner than the interval.
        assert counts[ptid] == 3, (ptid, counts[ptid])
        times = runway_emulator.poll_times(ptid)
        gaps = [b - a for a, b in pairwise(times)]
        assert len(times) == 3 and min(gaps) >= monitors[0].interval("runway"), (ptid, times)
        final = app_studio.get(task.id)
        assert final.poll_failures == 0


def test_a_burst_of_successes_is_archived_by_more_workers_in_batched_writes(
    make_studio, make_monitor, runway_emulator: RunwayEmulator, db_url: str, monkeypatch
):
    """Many tasks succeeding at once: the archive workers follow the backlog past the fewest
    (and back once idle), each writes its batch's outcomes in one statement (so their events
    share one time), and every result is archived once, whole."""
    import services.monitor as monitor_module

    monkeypatch.setattr(monitor_module, "ARCHIVER_IDLE_S", 0.5)
    runway_emulator.configure(queued_polls=0, polls_to_finish=1)
    studio = make_studio(runway_emulator, database_url=db_url)
    # At the provider's own interval a pass claims dozens, as a replica does in a burst.
    monitor = make_monitor(studio, interval_scale=1.0)
    n = 160
    tasks = [studio.track("runway", runway_emulator.add_task()) for _ in range(n)]
    started = 0
    for _ in range(50):
        started += monitor.tick(block=False).archives_started
        if started == n:
            break
    assert started == n

    def workers() -> int:
        return sum(t.name == monitor.archiver_name() for t in threading.enumerate())

    fewest, most = monitor_module.ARCHIVE_THREADS
    assert fewest < workers() <= most
    wait_for(
        lambda: all(t.result_path for t in studio.store.get_tasks([t.id for t in tasks])),
        timeout=60,
        what="every result archived",
    )
    times = set()
    for task in studio.store.get_tasks([t.id for t in tasks]):
        assert _archived_ok(task.result_path)
        done = [e for e in studio.store.events(task.id) if e.message.startswith("Result archived")]
        assert len(done) == 1, done
        times.add(done[0].at)
    assert len(times) <= n // 4, f"{len(times)} writes for {n} archives"
    wait_for(lambda: workers() == fewest, timeout=10, what="the extra workers ending when idle")


def test_archive_copies_local_engine_files_only_from_the_work_area(
    make_studio, tmp_path, runway_emulator
):
    from tests.emulators.media import tiny_mp4

    settings = make_studio(runway_emulator).settings
    inside = settings.work_dir / "engine-out.mp4"
    inside.write_bytes(tiny_mp4())
    path = fetch_result(inside.as_uri(), "t-local", settings)
    assert path.read_bytes() == tiny_mp4()
    assert not list(path.parent.glob("*.part"))

    for outside in (tmp_path / "elsewhere.mp4", settings.uploads_dir / "someone.mp4"):
        outside.write_bytes(tiny_mp4())
        try:
            fetch_result(outside.as_uri(), "t-outside", settings)
        except InputError as err:
            assert "outside" in str(err)
        else:
            raise AssertionError(f"{outside} outside the engine's work area was archived")
    try:
        fetch_result((settings.work_dir / "gone.mp4").as_uri(), "t-gone", settings)
    except ProviderError as err:
        assert err.kind.value == "not_found" and not err.retryable
    else:
        raise AssertionError("a missing engine file was not reported")


def test_the_runtime_monitor_runs_in_the_background_and_stops_once(
    make_studio, runway_emulator: RunwayEmulator
):
    from services.runtime import Runtime

    runway_emulator.configure(polls_to_finish=1)
    settings = make_studio(runway_emulator).settings
    runtime = Runtime(settings)
    monitor = runtime.monitor.start()
    try:
        # One of each per process: the monitor works through the runtime's own studio.
        assert monitor.is_alive() and runtime.monitor_running()
        assert monitor.studio is runtime.studio and runtime.studio.store is runtime.store
        task = runtime.studio.track("runway", runway_emulator.add_task())
        monitor.wake()
        wait_for(lambda: runtime.studio.get(task.id).result_path, timeout=20, what="the archive")
    finally:
        runtime.close()
    runtime.close()  # a second close (the server shutting down twice) is harmless
    assert not monitor.is_alive() and not runtime.monitor_running()


def test_polls_overlap_while_the_provider_is_slow_to_answer(
    make_studio, make_monitor, runway_emulator: RunwayEmulator
):
    runway_emulator.configure(queued_polls=1000, polls_to_finish=1000)  # stays in flight
    studio = make_studio(runway_emulator)
    monitor = make_monitor(studio)
    ptids = [runway_emulator.add_task() for _ in range(16)]
    ids = [studio.track("runway", p).id for p in ptids]
    delay = 0.2
    runway_emulator.fault("slow", route="poll", times=None, delay=delay)

    def polled_twice() -> bool:
        monitor.tick(ids)
        counts = runway_emulator.poll_counts()
        return all(counts.get(p, 0) >= 2 for p in ptids)

    wait_for(polled_twice, what="two polls of every task")
    # Polled one after another, requests would arrive at least `delay` apart (each waits for
    # its answer); polled in parallel, a whole wave arrives before the first answer.
    arrivals = sorted(t for p in ptids for t in runway_emulator.poll_times(p))
    soonest_wave = min(b - a for a, b in zip(arrivals, arrivals[4:], strict=False))
    assert soonest_wave < delay / 2
    assert all(t.status is TaskStatus.QUEUED for t in studio.store.get_tasks(ids))
