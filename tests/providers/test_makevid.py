"""makevid: a tracker only; progressRatio as a string or null; ETA while queued."""

from __future__ import annotations

import pytest

from services.errors import ConfigError
from services.models import TaskStatus
from services.providers.base import CreateRequest
from tests.providers.conftest import MakeHarness


def test_create_is_refused_with_a_sentence_pointing_to_track(harness: MakeHarness) -> None:
    h = harness("makevid")
    assert not h.provider.capabilities().can_create
    with pytest.raises(ConfigError) as info:
        h.provider.create(CreateRequest(video="https://cdn.example/v.mp4"))
    assert str(info.value).startswith(
        "makevid only tracks tasks made elsewhere; use `reenact track"
    )
    assert h.emu.route_counts == {}


def test_lifecycle_with_string_progress_eta_and_artifact(harness: MakeHarness) -> None:
    h = harness("makevid", queued_polls=1, polls_to_finish=5)
    task_id = h.emu.add_task()
    seen = h.poll_until_done(task_id)
    assert seen[0].status is TaskStatus.QUEUED and seen[0].eta_seconds == 12
    assert [u.progress for u in seen[1:4]] == [0.25, 0.5, 0.75]
    assert all(u.eta_seconds is None for u in seen[1:])
    assert seen[-1].status is TaskStatus.SUCCEEDED
    assert seen[-1].result_url == h.emu.result_url(task_id)


def test_null_progress_while_running_is_unknown_progress(harness: MakeHarness) -> None:
    h = harness("makevid", null_progress=True, polls_to_finish=3)
    task_id = h.emu.add_task()
    h.provider.poll(task_id)
    running = h.provider.poll(task_id)
    assert running.status is TaskStatus.RUNNING and running.progress is None


def test_throttled_is_queued(harness: MakeHarness) -> None:
    h = harness("makevid", throttled=True)
    update = h.provider.poll(h.emu.add_task())
    assert update.status is TaskStatus.QUEUED and update.raw_status == "THROTTLED"


def test_a_task_id_of_the_users_choice_can_be_tracked(harness: MakeHarness) -> None:
    h = harness("makevid", polls_to_finish=1)
    task_id = h.emu.add_task("d110cdd2-df84-4126-ba58-8416b86003eb")
    assert h.provider.poll(task_id).status is TaskStatus.SUCCEEDED
