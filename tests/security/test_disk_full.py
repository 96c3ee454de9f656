"""A full disk gets a sentence and loses nothing (issue 10, item 8).

The disks here are real: a small tmpfs mounted (as root) where the test needs a full one —
the results folder, or the whole data folder with its database — and filled to the last byte
by a filler file, which the test deletes to "free some space". Where mounting is impossible
those tests skip and say why; the write path is also tested through /dev/full, which fails
every write with ENOSPC on any Linux machine.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.config import load_settings
from services.errors import (
    DISK_FULL_ARCHIVE,
    DISK_FULL_SUBMIT,
    DISK_FULL_UPLOAD,
    FREE_SPACE_MARGIN,
    DiskFullError,
    is_disk_full,
)
from services.lifecycle import archive_blocked, settled
from services.models import Task, TaskInputs, TaskStatus, utcnow
from services.monitor import Monitor
from services.runtime import close_process_runtime
from services.studio import Studio
from tests.cli.support import run, wait_for
from tests.emulators import RunwayEmulator
from tests.emulators.media import tiny_mp4
from tests.media.conftest import MediaServer, make_settings

MiB = 1024 * 1024
MP4 = {"Content-Type": "video/mp4"}
# Provider intervals are 5-10 s; this makes Runway's 1 s, so a backoff is long enough to
# check that nobody retries inside it, and short enough to wait out.
SCALE = 0.2


# ---------------------------------------------------------------------------- real full disks


class Disk:
    """A mounted tmpfs; `fill()` takes its space, `free_up()` gives it back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / ".filler"

    def free(self) -> int:
        return shutil.disk_usage(self.root).free

    def fill(self, leave: int = 0) -> None:
        """Write a filler until `leave` bytes (roughly, to the MiB) or nothing is left."""
        with self.filler.open("ab", buffering=0) as fh:
            try:
                while self.free() - leave >= MiB:
                    fh.write(b"\0" * MiB)
                if leave == 0:
                    while True:  # the last pages, until the kernel says no
                        fh.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        if leave == 0:
            assert self.free() == 0

    def free_up(self) -> None:
        self.filler.unlink()
        assert self.free() > 2 * FREE_SPACE_MARGIN


@pytest.fixture
def small_disk() -> Iterator[Callable[..., Disk]]:
    """Mount a tmpfs of `size_mb` at a folder (made if missing); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(folder: Path, size_mb: int = 32) -> Disk:
        folder.mkdir(parents=True, exist_ok=True)
        tool = shutil.which("mount")
        if tool is None:
            pytest.skip("no `mount` command here, so no real small filesystem can be made")
        done = subprocess.run(
            [tool, "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(
                "cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): "
                + (done.stderr.strip() or f"exit {done.returncode}")
            )
        mounted.append(folder)
        return Disk(folder)

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _studio(data_dir: Path, emulator: RunwayEmulator) -> Studio:
    env = {
        "REENACT_DATA_DIR": str(data_dir),
        "REENACT_ALLOW_PRIVATE_URLS": "1",
        **emulator.env(),
    }
    return Studio(load_settings(env=env, secrets={}))


def _parts(folder: Path) -> list[Path]:
    return list(folder.rglob("*.part")) if folder.exists() else []


def _blocked_task(
    data_dir: Path, runway_emulator: RunwayEmulator, small_disk: Callable[..., Disk]
) -> tuple[Studio, Monitor, str, Disk]:
    """A Runway task that succeeded while the results folder is full: its archive stopped."""
    disk = small_disk(data_dir / "results")
    disk.fill()
    runway_emulator.configure(polls_to_finish=1)
    studio = _studio(data_dir, runway_emulator)
    monitor = Monitor(studio, interval_scale=SCALE)
    task = studio.track("runway", runway_emulator.add_task())
    done = monitor.wait(task.id, timeout=30)
    assert archive_blocked(done), (done.error, done.error_kind)
    return studio, monitor, task.id, disk


# ---------------------------------------------------------------------------- the monitor


def test_monitor_archive_on_a_full_disk_says_so_backs_off_and_succeeds_once_freed(
    data_dir: Path, runway_emulator: RunwayEmulator, small_disk: Callable[..., Disk]
) -> None:
    disk = small_disk(data_dir / "results")
    # The result streams without a Content-Length (as many CDNs send it), so nothing can be
    # checked beforehand: the write itself meets ENOSPC.
    files = MediaServer()
    body = tiny_mp4()
    url = files.add("/result.mp4", body=body, headers=MP4, send_length=False)
    runway_emulator.result_url = lambda _task_id: url  # type: ignore[method-assign]
    runway_emulator.configure(polls_to_finish=1)
    studio = _studio(data_dir, runway_emulator)
    other = _studio(data_dir, runway_emulator)  # a second process's view (the CLI's)
    monitor = Monitor(studio, interval_scale=SCALE)
    second = Monitor(other, interval_scale=SCALE)
    try:
        disk.fill()
        task = studio.track("runway", runway_emulator.add_task())
        started = time.monotonic()
        done = monitor.wait(task.id, timeout=30)  # settles: the full disk waits on the user
        assert time.monotonic() - started < 20
        assert done.status is TaskStatus.SUCCEEDED
        assert done.result_path is None
        assert done.error == DISK_FULL_ARCHIVE
        assert done.error_kind == "disk_full"
        assert archive_blocked(done) and settled(done)
        assert files.hits["/result.mp4"] == 1
        assert _parts(data_dir / "results") == []
        assert not (data_dir / "results" / task.id / "result.mp4").exists()
        # The claim is released (no owner), with a backoff before the monitor tries again.
        assert done.lease_owner is None and done.lease_until is None  # released
        assert done.next_poll_at is not None
        backoff = (done.next_poll_at - utcnow()).total_seconds()
        assert backoff > 0.5, backoff
        events = [e.message for e in studio.store.events(task.id)]
        assert any(m.startswith(DISK_FULL_ARCHIVE) and "again by itself" in m for m in events)

        # Inside the backoff neither monitor downloads it again.
        assert monitor.tick([task.id]).archives_started == 0
        assert second.tick([task.id]).archives_started == 0
        assert files.hits["/result.mp4"] == 1

        # Space is freed: the monitor, left to itself, archives it once the backoff is over.
        disk.free_up()

        def archived() -> str | None:
            monitor.tick([task.id])
            return studio.get(task.id).result_path

        path = Path(wait_for(archived, timeout=30, what="the archive after freeing space"))
        assert path.read_bytes() == body
        final = studio.get(task.id)
        assert final.error is None and final.error_kind is None and final.poll_failures == 0
        assert files.hits["/result.mp4"] == 2
        assert _parts(data_dir / "results") == []
        retried = next(
            e.at for e in studio.store.events(task.id) if e.message.startswith("Result archived")
        )
        assert retried >= done.next_poll_at  # not before the backoff ran out
    finally:
        monitor.stop()
        second.stop()
        studio.close()
        other.close()
        files.close()


def test_a_restarted_monitor_finds_the_archives_waiting_for_space(
    data_dir: Path, runway_emulator: RunwayEmulator, small_disk: Callable[..., Disk]
) -> None:
    studio, monitor, task_id, disk = _blocked_task(data_dir, runway_emulator, small_disk)
    monitor.stop()
    studio.close()  # the process that met the full disk is gone
    disk.free_up()
    fresh = _studio(data_dir, runway_emulator)
    restarted = Monitor(fresh, interval_scale=SCALE)
    try:

        def archived() -> str | None:
            restarted.tick()  # a server's own pass: no task ids given
            return fresh.get(task_id).result_path

        path = Path(wait_for(archived, timeout=30, what="the archive by a new monitor"))
        assert path.read_bytes() == tiny_mp4()
        assert fresh.get(task_id).error is None
    finally:
        restarted.stop()
        fresh.close()


def test_a_known_size_that_cannot_fit_is_refused_before_writing(
    tmp_path: Path, small_disk: Callable[..., Disk]
) -> None:
    from services import fetch
    from services.archive import fetch_result

    settings = make_settings(tmp_path / "data", allow_private=True)
    settings.work_dir.mkdir(parents=True)
    disk = small_disk(tmp_path / "data" / "results")
    size = 2 * MiB
    body = tiny_mp4() + b"\0" * (size - len(tiny_mp4()))
    # Room for the file itself, not for the file and the margin the database needs.
    disk.fill(leave=size + FREE_SPACE_MARGIN // 2)
    free = disk.free()
    assert size < free < size + FREE_SPACE_MARGIN
    files = MediaServer()
    try:
        url = files.add("/big.mp4", body=body, headers=MP4)
        dest = settings.results_dir / "t-known" / "result.mp4"
        with pytest.raises(DiskFullError) as err:
            fetch.download(url, dest, settings, max_bytes=10 * size, backoff_s=0)
        assert str(err.value) == DISK_FULL_ARCHIVE
        assert files.hits["/big.mp4"] == 1  # asked once, not retried
        assert disk.free() == free  # not a byte written
        assert _parts(settings.results_dir) == [] and not dest.exists()

        # The local engine's output has a known size too.
        local = settings.work_dir / "engine-out.mp4"
        local.write_bytes(body)
        with pytest.raises(DiskFullError):
            fetch_result(local.as_uri(), "t-local", settings)
        assert disk.free() == free
        assert _parts(settings.results_dir) == []

        disk.free_up()
        assert fetch.download(url, dest, settings, max_bytes=10 * size) == dest
        assert dest.read_bytes() == body
        assert fetch_result(local.as_uri(), "t-local", settings).read_bytes() == body
    finally:
        files.close()


def test_enospc_while_writing_removes_the_part_file(tmp_path: Path) -> None:
    """/dev/full fails every write with ENOSPC, on any machine, mounted or not."""
    from services import fetch

    if not os.path.exists("/dev/full"):
        pytest.skip("this machine has no /dev/full")
    settings = make_settings(tmp_path / "data", allow_private=True)
    dest = tmp_path / "results" / "t1" / "result.mp4"
    dest.parent.mkdir(parents=True)
    part = dest.with_suffix(".part")
    part.symlink_to("/dev/full")  # the download's own .part now writes into a full device
    files = MediaServer()
    try:
        url = files.add("/r.mp4", body=tiny_mp4(), headers=MP4, send_length=False)
        with pytest.raises(DiskFullError) as err:
            fetch.download(url, dest, settings, max_bytes=10 * MiB, backoff_s=0)
    finally:
        files.close()
    assert str(err.value) == DISK_FULL_ARCHIVE
    assert isinstance(err.value.__cause__, OSError)
    assert err.value.__cause__.errno == errno.ENOSPC
    assert not part.is_symlink() and not part.exists()
    assert not dest.exists()
    assert files.hits["/r.mp4"] == 1  # a full disk is not retried at once


# ---------------------------------------------------------------------------- the CLI


def test_cli_submit_wait_stops_with_the_sentence_and_exit_1(
    env: dict[str, str],
    data_dir: Path,
    video: str,
    image: str,
    runway_emulator: RunwayEmulator,
    small_disk: Callable[..., Disk],
) -> None:
    env.update(runway_emulator.env())
    runway_emulator.configure(polls_to_finish=2)
    small_disk(data_dir / "results").fill()
    timeout = 120
    started = time.monotonic()
    args = ["submit", "--provider", "runway", "--video", video, "--image", image, "--wait"]
    r = run([*args, "--timeout", str(timeout), "--json"], env, timeout=timeout + 30)
    took = time.monotonic() - started
    assert r.code == 1, r.output
    assert took < timeout / 3, f"waited {took:.0f} s: it should stop, not run to --timeout"
    doc = r.json()
    assert doc["status"] == "succeeded" and doc["error_kind"] == "disk_full"
    assert doc["error"] == DISK_FULL_ARCHIVE and not doc["result_path"]
    assert f"Task {doc['id']}: {DISK_FULL_ARCHIVE}" in r.stderr
    assert f"reenact download {doc['id']}" in r.stderr
    assert "Traceback" not in r.output and "Gave up waiting" not in r.output
    assert runway_emulator.stats()["creates"] == 1
    assert _parts(data_dir / "results") == []


def test_cli_download_says_the_sentence_then_works_once_space_is_freed(
    env: dict[str, str],
    data_dir: Path,
    tmp_path: Path,
    runway_emulator: RunwayEmulator,
    small_disk: Callable[..., Disk],
) -> None:
    env.update(runway_emulator.env())
    studio, monitor, task_id, disk = _blocked_task(data_dir, runway_emulator, small_disk)
    try:
        out = tmp_path / "out"
        r = run(["download", task_id, "--out", str(out)], env)
        assert r.code == 1, r.output
        assert DISK_FULL_ARCHIVE in r.stderr
        assert "Something went wrong" not in r.output and "Traceback" not in r.output
        assert not out.exists() or not any(out.iterdir())
        assert _parts(data_dir / "results") == []
        assert archive_blocked(studio.get(task_id))

        disk.free_up()
        r = run(["download", task_id, "--out", str(out)], env)
        assert r.code == 0, r.output
        copy = Path(r.stdout.strip())
        assert copy.parent == out.resolve()
        assert copy.read_bytes() == tiny_mp4()
        final = studio.get(task_id)
        assert final.result_path and final.error is None and not archive_blocked(final)

        # The archive is fine but the folder it is copied to is full: said, nothing left there.
        full_out = small_disk(tmp_path / "full-out", size_mb=4)
        full_out.fill()
        r = run(["download", task_id, "--out", str(full_out.root)], env)
        assert r.code == 1, r.output
        assert "is full, so the result was not copied there" in r.stderr
        assert f"reenact download {task_id}" in r.stderr
        assert "Something went wrong" not in r.output and "Traceback" not in r.output
        assert sorted(p.name for p in full_out.root.iterdir()) == [".filler"]
    finally:
        monitor.stop()
        studio.close()


def test_cli_submit_on_a_full_database_disk_says_so_and_sends_nothing(
    env: dict[str, str],
    data_dir: Path,
    video: str,
    image: str,
    runway_emulator: RunwayEmulator,
    small_disk: Callable[..., Disk],
) -> None:
    env.update(runway_emulator.env())
    disk = small_disk(data_dir)
    assert run(["list", "--json"], env).code == 0  # the database exists
    args = ["submit", "--provider", "runway", "--video", video, "--image", image]
    # Once with the app holding the database open (its WAL files exist), once with nothing
    # else running (SQLite cannot even make them then).
    app = _studio(data_dir, runway_emulator)
    try:
        app.store.list_tasks()
        disk.fill()
        held = run([*args, "--json"], env)
    finally:
        app.close()
    lone = run(args, env)
    disk.free_up()
    for r in (held, lone):
        assert r.code == 1, r.output
        assert DISK_FULL_SUBMIT in r.stderr, r.output
        assert "Traceback" not in r.output and "Something went wrong" not in r.output
    assert held.json() == {"error": DISK_FULL_SUBMIT}
    assert runway_emulator.stats()["creates"] == 0
    assert runway_emulator.stats()["routes"] == {}  # not even an upload
    listed = run(["list", "--json"], env)
    assert listed.code == 0 and listed.json() == [], listed.output


def test_a_full_database_is_recognised_through_sqlalchemy(
    data_dir: Path,
    video: str,
    image: str,
    runway_emulator: RunwayEmulator,
    small_disk: Callable[..., Disk],
) -> None:
    """What the page and the CLI are handed: SQLAlchemy's wrapper of SQLite's error."""
    import sqlalchemy.exc

    disk = small_disk(data_dir)
    studio = _studio(data_dir, runway_emulator)
    try:
        studio.store.list_tasks()
        disk.fill()
        with pytest.raises(sqlalchemy.exc.OperationalError) as err:
            studio.submit("runway", TaskInputs(video=video, image=image))
        assert "database or disk is full" in str(err.value)
        assert is_disk_full(err.value)
        assert not is_disk_full(RuntimeError("database or disk is fine"))
        assert runway_emulator.stats()["creates"] == 0
    finally:
        studio.close()


# ---------------------------------------------------------------------------- the pages


@pytest.fixture
def page_env(
    data_dir: Path, runway_emulator: RunwayEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The page's own Studio (get_studio) on this data dir and emulator, caches emptied."""

    for name in list(os.environ):
        if name.startswith(("REENACT_", "RUNWAYML_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("REENACT_DATA_DIR", str(data_dir))
    for name, value in runway_emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(data_dir.parent)  # no stray .streamlit/secrets.toml from the repo
    close_process_runtime()
    yield data_dir
    close_process_runtime()


def _submit_page(video: str, image: str) -> None:
    from components.common import get_studio, sentences
    from services.models import TaskInputs

    with sentences("submitting"):
        get_studio().submit("runway", TaskInputs(video=video, image=image))


def _card_page(task_id: str) -> None:
    from components.common import get_studio
    from components.task_card import task_cards

    task_cards(get_studio().store.get_tasks([task_id]), key="t")


def _texts(at: object) -> str:
    parts = [e.value for kind in ("error", "warning", "info") for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def test_page_submit_on_a_full_database_disk_is_one_sentence(
    page_env: Path,
    video: str,
    image: str,
    runway_emulator: RunwayEmulator,
    small_disk: Callable[..., Disk],
) -> None:
    from streamlit.testing.v1 import AppTest

    from components.common import get_studio

    disk = small_disk(page_env)
    get_studio().store.list_tasks()  # the server's Studio has the database open
    disk.fill()
    at = AppTest.from_function(_submit_page, args=(video, image), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [DISK_FULL_SUBMIT]
    assert runway_emulator.stats()["creates"] == 0
    disk.free_up()
    assert get_studio().store.list_tasks() == []


def test_task_card_says_the_disk_is_full_and_retry_download_hands_it_to_the_monitor(
    page_env: Path, runway_emulator: RunwayEmulator, small_disk: Callable[..., Disk]
) -> None:
    from streamlit.testing.v1 import AppTest

    studio, monitor, task_id, disk = _blocked_task(page_env, runway_emulator, small_disk)
    try:
        at = AppTest.from_function(_card_page, args=(task_id,), default_timeout=60).run()
        assert not at.exception
        text = _texts(at)
        assert DISK_FULL_ARCHIVE in text
        assert "Saving the result" not in text  # not an endless "Saving…"
        retry = [b for b in at.button if b.label == "Retry download"]
        assert len(retry) == 1

        disk.free_up()
        retry[0].click().run()
        assert not at.exception
        asked = studio.get(task_id)
        assert asked.error is None and asked.error_kind is None
        assert asked.next_poll_at is not None and asked.next_poll_at <= utcnow()
        assert "Saving the result to this computer" in _texts(at)
        assert any(e.message == "Retry download requested." for e in studio.store.events(task_id))

        # The page downloaded nothing itself; the monitor's next sweep does.
        assert not (page_env / "results" / task_id / "result.mp4").exists()

        def archived() -> str | None:
            monitor.tick([task_id])
            return studio.get(task_id).result_path

        path = Path(wait_for(archived, timeout=30, what="the monitor's archive"))
        assert path.read_bytes() == tiny_mp4()
    finally:
        monitor.stop()
        studio.close()


def test_an_upload_on_a_full_disk_is_a_sentence_and_leaves_nothing(
    tmp_path: Path, small_disk: Callable[..., Disk]
) -> None:
    from components.uploads import save_stream

    folder = tmp_path / "uploads"
    disk = small_disk(folder)
    disk.fill()
    clip = io.BytesIO(tiny_mp4() + b"\0" * MiB)
    with pytest.raises(DiskFullError) as err:
        save_stream(clip, "performance.mp4", folder)
    assert str(err.value) == DISK_FULL_UPLOAD
    assert sorted(p.name for p in folder.iterdir()) == [".filler"]

    disk.free_up()
    stored = save_stream(clip, "performance.mp4", folder)
    assert stored.name == "performance.mp4" and stored.read_bytes() == clip.getvalue()
    assert not list(folder.glob(".upload-*"))


def test_a_full_disk_while_adding_sound_keeps_the_provider_result(
    tmp_path: Path, small_disk: Callable[..., Disk]
) -> None:
    """Full to the last byte once the download is in: the version with the driving clip's
    sound cannot be written, so the provider's file is archived untouched, nothing is left
    beside it, and the sentence says why."""
    from services.archive import add_sound
    from services.store import Store
    from tests.mediagen import make_beep_clip

    take = make_beep_clip(tmp_path / "take.mp4")
    settings = make_settings(tmp_path / "data", allow_private=True)
    settings.ensure_dirs()
    folder = settings.results_dir / "t1"
    disk = small_disk(folder, size_mb=4)
    result = folder / "result.mp4"
    result.write_bytes(tiny_mp4())
    disk.fill()
    task = Task(id="t1", provider="runway", inputs=TaskInputs(video=str(take), image=str(take)))
    store = Store.open(settings)
    try:
        note = add_sound(task, result, settings, store)
    finally:
        store.close()
    assert not note.added
    assert note.sentence == (
        "Sound not added: the disk is full. The provider's result is kept as it came."
    )
    assert result.read_bytes() == tiny_mp4()
    assert sorted(p.name for p in folder.iterdir()) == [".filler", "result.mp4"]
