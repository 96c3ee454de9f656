"""LocalProvider end to end: real worker processes, real files, real signals."""

from __future__ import annotations

import os
import signal
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from services.config import Settings, load_settings
from services.engine import jobs
from services.errors import ErrorKind, ProviderError
from services.models import ProviderUpdate, TaskOptions, TaskStatus
from services.procs import process_running
from services.providers import local as local_module
from services.providers.base import CreateRequest
from services.providers.local import INTERRUPTED, STUCK, LocalProvider
from services.providers.registry import get_provider
from tests.engine.conftest import Clip, wait_for
from tests.engine.measure import facts
from tests.mediagen import Character


def _done(u: ProviderUpdate) -> bool:
    return u.status is TaskStatus.SUCCEEDED


def _rendering(u: ProviderUpdate) -> bool:
    return u.status is TaskStatus.RUNNING and (u.progress or 0) > 0


def _request(clip: Clip, character: Character, **kw: object) -> CreateRequest:
    return CreateRequest(video=str(clip.path), image=str(character.path), **kw)


def _state(local: LocalProvider, task_id: str) -> jobs.JobState:
    state = jobs.read_state(jobs.job_dir(local.settings, task_id))
    assert state is not None
    return state


def test_local_needs_no_key_and_says_what_it_can_do(settings: Settings) -> None:
    provider = get_provider("local", settings)
    assert isinstance(provider, LocalProvider)
    assert provider.availability().available
    caps = provider.capabilities()
    assert caps.id == "local" and caps.can_cancel and not caps.can_track
    assert not caps.needs_urls and not caps.accepts_character_video
    assert caps.cost_per_second_usd == 0 and caps.poll_interval_s <= 1.0
    assert "expression_intensity" in caps.options


def test_create_then_poll_until_the_result_file_is_there(
    local: LocalProvider, clip: Clip, character: Character
) -> None:
    task_id = local.create(_request(clip, character))
    seen: list[ProviderUpdate] = []
    final = wait_for(local, task_id, _done, seen=seen)
    assert final.progress == 1.0
    assert final.result_url is not None and final.result_url.startswith("file://")
    result = Path(url2pathname(urlsplit(final.result_url).path))
    assert result.is_file() and result.is_relative_to(local.settings.data_dir)
    assert facts(result).frames == clip.frames
    progress = [u.progress for u in seen if u.status is TaskStatus.RUNNING]
    assert progress == sorted(progress)  # real progress only moves forward
    assert all(0 <= (p or 0) < 1 for p in progress)
    assert not (result.parent / jobs.PARTIAL_FILE).exists()


def test_the_same_submission_twice_is_one_job(
    local: LocalProvider, clip: Clip, character: Character
) -> None:
    first = local.create(_request(clip, character, idempotency_key="task-1"))
    again = local.create(_request(clip, character, idempotency_key="task-1"))
    other = local.create(_request(clip, character, idempotency_key="task-2"))
    assert first == again != other
    wait_for(local, first, _done)
    assert _state(local, first).attempts == 1  # no second worker was started
    wait_for(local, other, _done)


def test_cancel_stops_a_running_render_and_leaves_no_output(
    local: LocalProvider, long_clip: Clip, character: Character
) -> None:
    task_id = local.create(_request(long_clip, character))
    wait_for(local, task_id, _rendering)
    local.cancel(task_id)
    final = wait_for(local, task_id, lambda u: u.status.terminal, timeout=20)
    assert final.status is TaskStatus.CANCELED
    assert final.error_kind == ErrorKind.CANCELED.value
    state = _state(local, task_id)
    assert state.frames_done < long_clip.frames  # it stopped, it did not run to the end
    folder = jobs.job_dir(local.settings, task_id)
    assert not (folder / jobs.RESULT_FILE).exists()
    assert not (folder / jobs.PARTIAL_FILE).exists()
    assert not jobs.worker_holds(folder)


def test_one_render_at_a_time_others_wait_queued_and_can_be_canceled(
    local: LocalProvider, long_clip: Clip, clip: Clip, character: Character
) -> None:
    assert jobs.slot_count() == 1 or pytest.skip("more than one render slot on this machine")
    first = local.create(_request(long_clip, character))
    wait_for(local, first, _rendering)
    second = local.create(_request(clip, character))
    third = local.create(_request(clip, character))
    # while the first renders, the others wait (their workers are up, polling for the slot)
    waiting = wait_for(local, second, lambda u: "waiting" in (u.raw_status or ""))
    assert waiting.status is TaskStatus.QUEUED
    assert local.poll(first).status is TaskStatus.RUNNING
    local.cancel(third)
    assert wait_for(local, third, lambda u: u.status.terminal).status is TaskStatus.CANCELED
    local.cancel(first)
    # the freed slot goes to the waiting job; never are two rendering at once
    seen_first: list[ProviderUpdate] = []
    seen_second: list[ProviderUpdate] = []

    def second_done(u: ProviderUpdate) -> bool:
        seen_first.append(local.poll(first))
        seen_second.append(u)
        return u.status is TaskStatus.SUCCEEDED

    wait_for(local, second, second_done)
    assert local.poll(first).status is TaskStatus.CANCELED
    both = [
        (a.status, b.status)
        for a, b in zip(seen_first, seen_second, strict=True)
        if a.status is TaskStatus.RUNNING and b.status is TaskStatus.RUNNING
    ]
    assert not both
    assert any(u.status is TaskStatus.RUNNING for u in seen_second)


def test_killed_worker_is_resumed_once_then_failed_never_left_running(
    local: LocalProvider, long_clip: Clip, character: Character
) -> None:
    task_id = local.create(_request(long_clip, character))
    folder = jobs.job_dir(local.settings, task_id)
    wait_for(local, task_id, _rendering)
    first_pid = _state(local, task_id).pid
    assert first_pid
    os.kill(first_pid, signal.SIGKILL)  # as a crash or a reboot would
    # noticed at the next poll: started again from the start
    wait_for(local, task_id, lambda u: _state(local, task_id).attempts == 2)
    wait_for(local, task_id, _rendering)
    second_pid = _state(local, task_id).pid
    assert second_pid and second_pid != first_pid
    os.kill(second_pid, signal.SIGKILL)
    final = wait_for(local, task_id, lambda u: u.status.terminal, timeout=20)
    assert final.status is TaskStatus.FAILED
    assert final.error == INTERRUPTED
    assert not (folder / jobs.PARTIAL_FILE).exists()


def test_a_frozen_worker_is_stopped_and_failed(
    local: LocalProvider,
    long_clip: Clip,
    character: Character,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alive but silent (SIGSTOP stands in for a hung decoder): stopped, failed, not resumed."""
    monkeypatch.setattr(local_module, "STALE_S", 1.0)
    task_id = local.create(_request(long_clip, character))
    wait_for(local, task_id, _rendering)
    pid = _state(local, task_id).pid
    assert pid
    os.kill(pid, signal.SIGSTOP)
    final = wait_for(local, task_id, lambda u: u.status.terminal, timeout=20)
    assert final.status is TaskStatus.FAILED and final.error == STUCK
    deadline = time.monotonic() + 10
    while process_running(pid):  # killed, not merely abandoned
        local.poll(task_id)  # reaps it
        assert time.monotonic() < deadline, "the frozen worker is still there"
        time.sleep(0.02)


def test_a_new_process_picks_up_a_job_started_elsewhere(
    settings: Settings, local: LocalProvider, clip: Clip, character: Character
) -> None:
    """An app restart: a fresh provider (as a new server process would build) polls on."""
    task_id = local.create(_request(clip, character))
    restarted = LocalProvider(
        load_settings(env={"REENACT_DATA_DIR": str(settings.data_dir)}, secrets={})
    )
    assert wait_for(restarted, task_id, _done).result_url


def test_no_face_fails_with_the_sentence(
    local: LocalProvider, faceless_clip: Path, character: Character
) -> None:
    task_id = local.create(CreateRequest(video=str(faceless_clip), image=str(character.path)))
    final = wait_for(local, task_id, lambda u: u.status.terminal)
    assert final.status is TaskStatus.FAILED
    assert final.error is not None and final.error.startswith("No face was found")
    assert final.error_kind == ErrorKind.INVALID_INPUT.value


def test_missing_inputs_are_refused_at_create(
    local: LocalProvider, clip: Clip, character: Character, tmp_path: Path
) -> None:
    with pytest.raises(ProviderError, match="not found") as err:
        local.create(CreateRequest(video=str(tmp_path / "gone.mp4"), image=str(character.path)))
    assert err.value.kind is ErrorKind.INVALID_INPUT
    with pytest.raises(ProviderError, match="needs a character image"):
        local.create(CreateRequest(video=str(clip.path)))
    with pytest.raises(ProviderError, match="not a character video"):
        local.create(_request(clip, character, character_video=str(clip.path)))


def test_unknown_task_ids_are_not_found(local: LocalProvider) -> None:
    for bad in ("../../etc", "0" * 32):
        with pytest.raises(ProviderError) as err:
            local.poll(bad)
        assert err.value.kind is ErrorKind.NOT_FOUND


def test_linked_inputs_are_fetched_first(tmp_path: Path, clip: Clip, character: Character) -> None:
    """http(s) links work too (served here from 127.0.0.1, which tests allow)."""
    pytest.importorskip("services.fetch")
    settings = load_settings(
        env={"REENACT_DATA_DIR": str(tmp_path / "data"), "REENACT_ALLOW_PRIVATE_URLS": "1"},
        secrets={},
    )
    handler = partial(_QuietHandler, directory=str(clip.path.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        provider = LocalProvider(settings)
        task_id = provider.create(
            CreateRequest(
                video=f"{base}/{clip.path.name}",
                image=f"{base}/{character.path.name}",
                options=TaskOptions(expression_intensity=4),
            )
        )
        final = wait_for(provider, task_id, lambda u: u.status.terminal)
        assert final.status is TaskStatus.SUCCEEDED, final.error
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_create_returns_at_once_with_a_queued_state_on_disk(
    local: LocalProvider, clip: Clip, character: Character
) -> None:
    """create never waits for the render: the state file says queued before the worker has
    even finished starting Python, so a poll straight away never meets a void."""
    task_id = local.create(_request(clip, character))
    state = _state(local, task_id)
    assert state.status is TaskStatus.QUEUED and state.attempts == 1
    assert local.poll(task_id).status in (TaskStatus.QUEUED, TaskStatus.RUNNING)
    wait_for(local, task_id, _done)
