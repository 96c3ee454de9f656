"""CometAPI quirks: task_not_exist after create, two feed shapes, progress and result-link
variants, callback addresses, links only, 16:9 only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.errors import ErrorKind, InputError, ProviderError
from services.models import TaskStatus
from services.publish import no_route_sentence, sha256_of
from tests.emulators.media import tiny_mp4, tiny_png
from tests.providers.conftest import MakeHarness


def test_capabilities(harness: MakeHarness) -> None:
    caps = harness("cometapi").provider.capabilities()
    assert caps.required_aspect == "16:9" and caps.needs_urls
    assert caps.options == frozenset() and not caps.can_cancel
    assert caps.cost_per_second_usd is None
    assert caps.not_found_grace_s == 60


def test_task_not_exist_right_after_create_is_not_found_then_visible(
    harness: MakeHarness,
) -> None:
    h = harness("cometapi", not_exist_polls=2)
    task_id = h.provider.create(h.request())
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            h.provider.poll(task_id)
        assert info.value.kind is ErrorKind.NOT_FOUND
        assert "task_not_exist" in str(info.value)
        assert not info.value.retryable  # the monitor's grace period decides, not a retry
    assert h.provider.poll(task_id).status is TaskStatus.QUEUED
    assert h.sleeps == []


def test_task_not_exist_for_the_first_seconds(harness: MakeHarness) -> None:
    h = harness("cometapi", not_exist_seconds=0.3)
    task_id = h.provider.create(h.request())
    with pytest.raises(ProviderError) as info:
        h.provider.poll(task_id)
    assert info.value.kind is ErrorKind.NOT_FOUND
    deadline = time.monotonic() + 5
    while True:
        try:
            update = h.provider.poll(task_id)
            break
        except ProviderError as err:
            assert err.kind is ErrorKind.NOT_FOUND and time.monotonic() < deadline
            time.sleep(0.05)
    assert update.status is TaskStatus.QUEUED


@pytest.mark.parametrize("shape", ["envelope", "flat"])
@pytest.mark.parametrize("style", ["percent", "number", "fraction"])
def test_both_feed_shapes_and_every_progress_style(
    harness: MakeHarness, shape: str, style: str
) -> None:
    h = harness("cometapi", feed_shape=shape, progress_style=style, polls_to_finish=5)
    task_id = h.provider.create(h.request())
    seen = h.poll_until_done(task_id)
    assert [u.progress for u in seen] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert seen[-1].result_url == h.emu.result_url(task_id)


@pytest.mark.parametrize("where", ["result_url", "video_url", "output", "artifacts"])
def test_result_link_found_wherever_it_is(harness: MakeHarness, where: str) -> None:
    h = harness("cometapi", result_field=where, polls_to_finish=1)
    task_id = h.provider.create(h.request())
    final = h.provider.poll(task_id)
    assert final.status is TaskStatus.SUCCEEDED
    assert final.result_url == h.emu.result_url(task_id)


def test_success_without_a_link_yet_keeps_polling(harness: MakeHarness) -> None:
    h = harness("cometapi", status_override="SUCCESS")
    update = h.provider.poll(h.provider.create(h.request()))
    assert update.status is TaskStatus.RUNNING and update.result_url is None
    assert update.raw_status and update.raw_status.startswith("SUCCESS")


def test_upstream_throttled_counts_as_queued(harness: MakeHarness) -> None:
    h = harness("cometapi", throttled=True, status_override="IN_PROGRESS")
    update = h.provider.poll(h.provider.create(h.request()))
    assert update.status is TaskStatus.QUEUED
    assert update.raw_status == "IN_PROGRESS/THROTTLED"


def test_string_create_code_is_accepted(harness: MakeHarness) -> None:
    h = harness("cometapi", create_code="success")
    assert h.provider.create(h.request()) in h.emu.tasks


def test_body_sent_with_version_header_and_an_invalid_callback_host(
    harness: MakeHarness,
) -> None:
    h = harness("cometapi")
    req = h.request()
    task = h.emu.task(h.provider.create(req))
    assert task.body == {
        "video": req.video,
        "image": req.image,
        "callback_url": "https://callbacks.reenact.invalid/hooks/cometapi",
    }
    assert task.headers["x-runway-version"] == "2024-11-06"
    assert "authorization" not in task.headers  # the emulator never keeps the key


def test_the_studios_callback_url_is_used_when_given(harness: MakeHarness) -> None:
    h = harness("cometapi")
    hook = "https://studio.example.org/hooks/cometapi/t123"
    task = h.emu.task(h.provider.create(h.request(callback_url=hook)))
    assert task.body["callback_url"] == hook


def test_local_files_need_a_public_url(harness: MakeHarness, tmp_path: Path) -> None:
    h = harness("cometapi")
    video = tmp_path / "drive.mp4"
    video.write_bytes(tiny_mp4())
    with pytest.raises(InputError) as info:
        h.provider.create(h.request(video=str(video)))
    assert str(info.value) == no_route_sentence("CometAPI")
    assert "REENACT_S3_BUCKET" in str(info.value) and "REENACT_PUBLIC_URL" in str(info.value)
    assert h.emu.create_count == 0


def test_local_files_are_published_under_the_public_url(
    harness: MakeHarness, tmp_path: Path
) -> None:
    h = harness("cometapi", public_url="https://studio.example.org/")
    video, image = tmp_path / "my clip (1).mp4", tmp_path / "face.png"
    video.write_bytes(tiny_mp4())
    image.write_bytes(tiny_png())
    task = h.emu.task(h.provider.create(h.request(video=str(video), image=str(image))))
    digest = sha256_of(video)
    assert task.body["video"] == f"https://studio.example.org/media/{digest}/my-clip-1.mp4"
    published = h.tmp / "data" / "uploads" / digest / "my-clip-1.mp4"
    assert published.read_bytes() == tiny_mp4()
    assert task.body["image"].endswith(f"/media/{sha256_of(image)}/face.png")


def test_a_character_video_or_a_missing_image_is_refused_before_sending(
    harness: MakeHarness,
) -> None:
    h = harness("cometapi")
    with pytest.raises(InputError, match="character image only"):
        h.provider.create(h.request(character_video="https://x.example/c.mp4"))
    with pytest.raises(InputError, match="needs a character image"):
        h.provider.create(h.request(image=None))
    assert h.emu.route_counts == {}


def test_invalid_request_500_is_invalid_input_and_not_retried(harness: MakeHarness) -> None:
    h = harness("cometapi")
    h.emu.fault(
        "status",
        route="create",
        status=500,
        code="invalid_request",
        message="image url cannot be fetched",
    )
    with pytest.raises(ProviderError) as info:
        h.provider.create(h.request())
    assert info.value.kind is ErrorKind.INVALID_INPUT
    assert "image" in str(info.value) and "cannot be fetched" in str(info.value)
    assert h.sleeps == [] and h.emu.route_counts["create"] == 1


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("Content moderation: the image was flagged", None),
        ("Input rejected", "SAFETY.INPUT.IMAGE"),
    ],
)
def test_moderation_failures_say_change_the_input(
    harness: MakeHarness, reason: str, code: str | None
) -> None:
    h = harness("cometapi", fail_reason=reason, fail_code=code, polls_to_finish=1)
    final = h.provider.poll(h.provider.create(h.request()))
    assert final.status is TaskStatus.FAILED
    assert final.error_kind == ErrorKind.MODERATION.value
    error = final.error or ""
    assert reason in error and "different character image" in error  # the image was blamed
