"""Runway: data URIs within their caps, ephemeral uploads beyond, THROTTLED, SAFETY, cancel."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from services.errors import ErrorKind, InputError, ProviderError, TransportError
from services.models import TaskOptions, TaskStatus
from tests.emulators.media import tiny_mp4, tiny_png
from tests.providers.conftest import MakeHarness

MB = 1024 * 1024


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _big(path: Path, size: int) -> str:
    # Real bytes (not sparse): they travel to the emulator's bucket.
    with path.open("wb") as fh:
        fh.write(tiny_mp4())
        fh.write(os.urandom(size - len(tiny_mp4())))
    return str(path)


def test_capabilities(harness: MakeHarness) -> None:
    caps = harness("runway").provider.capabilities()
    assert caps.can_cancel and caps.accepts_character_video and not caps.needs_urls
    assert caps.cost_per_second_usd == 0.05 and caps.poll_interval_s == 6.0
    assert caps.size_caps.data_uri_image == 5 * MB and caps.size_caps.data_uri_video == 16 * MB
    assert caps.size_caps.url_video == 32 * MB and caps.size_caps.upload_max == 200 * MB


def test_small_local_files_go_as_data_uris(harness: MakeHarness, tmp_path: Path) -> None:
    h = harness("runway")
    video = _write(tmp_path / "drive.mp4", tiny_mp4())
    image = _write(tmp_path / "face.png", tiny_png())
    body = h.emu.task(h.provider.create(h.request(video=video, image=image))).body
    ref, char = body["reference"]["uri"], body["character"]["uri"]
    assert ref.startswith("data:video/mp4;base64,") and char.startswith("data:image/png;base64,")
    assert base64.b64decode(ref.split(",", 1)[1]) == tiny_mp4()
    assert base64.b64decode(char.split(",", 1)[1]) == tiny_png()
    assert h.emu.uploads == {}


def test_files_beyond_the_data_uri_caps_go_through_ephemeral_uploads(
    harness: MakeHarness, tmp_path: Path
) -> None:
    h = harness("runway")
    video = _big(tmp_path / "long take.mp4", 13 * MB)  # base64 makes it > 16 MB
    image = _big(tmp_path / "face.png", 4 * MB)  # > 5 MB once encoded
    body = h.emu.task(h.provider.create(h.request(video=video, image=image))).body
    assert body["reference"]["uri"].startswith("runway://")
    assert body["character"]["uri"].startswith("runway://")
    assert sorted(h.emu.uploads.values()) == [4 * MB, 13 * MB]
    # The bucket is third-party storage: the key never goes there.
    assert h.emu.storage_headers and all("authorization" not in hs for hs in h.emu.storage_headers)


def test_a_file_over_200_mb_is_refused_before_anything_is_sent(
    harness: MakeHarness, tmp_path: Path
) -> None:
    h = harness("runway")
    huge = tmp_path / "huge.mp4"
    with huge.open("wb") as fh:
        fh.truncate(201 * MB)  # sparse: costs no disk
    with pytest.raises(InputError, match="200 MB"):
        h.provider.create(h.request(video=str(huge)))
    assert h.emu.route_counts == {}


def test_body_uses_runways_field_names(harness: MakeHarness) -> None:
    h = harness("runway")
    opts = TaskOptions(expression_intensity=5, body_control=False, seed=42, ratio="720:1280")
    req = h.request(options=opts)
    task = h.emu.task(h.provider.create(req))
    assert task.body == {
        "model": "act_two",
        "character": {"type": "image", "uri": req.image},
        "reference": {"type": "video", "uri": req.video},
        "ratio": "720:1280",
        "bodyControl": False,
        "expressionIntensity": 5,
        "seed": 42,
    }
    assert task.headers["x-runway-version"] == "2024-11-06"


def test_character_video_is_sent_as_a_video(harness: MakeHarness, tmp_path: Path) -> None:
    h = harness("runway")
    char = _write(tmp_path / "char.mp4", tiny_mp4())
    body = h.emu.task(h.provider.create(h.request(character_video=char))).body
    assert body["character"]["type"] == "video"
    assert body["character"]["uri"].startswith("data:video/mp4;base64,")


def test_invalid_input_names_the_field_in_the_creators_words(harness: MakeHarness) -> None:
    h = harness("runway")
    with pytest.raises(ProviderError) as info:
        h.provider.create(h.request(video="http://example.com/not-https.mp4"))
    err = info.value
    assert err.kind is ErrorKind.INVALID_INPUT and err.field == "reference.uri"
    assert "the driving video (field 'reference.uri')" in str(err)
    assert "must be an HTTPS URL" in str(err)
    assert h.emu.create_count == 0


def test_not_enough_credits_as_a_400_is_insufficient_credits(harness: MakeHarness) -> None:
    h = harness("runway")
    h.emu.fault("credits", route="create")
    with pytest.raises(ProviderError) as info:
        h.provider.create(h.request())
    assert info.value.kind is ErrorKind.INSUFFICIENT_CREDITS


def test_throttled_is_queued_not_an_error(harness: MakeHarness) -> None:
    h = harness("runway", throttled=True, queued_polls=2, polls_to_finish=3)
    seen = h.poll_until_done(h.provider.create(h.request()))
    assert [(u.raw_status, u.status) for u in seen] == [
        ("THROTTLED", TaskStatus.QUEUED),
        ("THROTTLED", TaskStatus.QUEUED),
        ("SUCCEEDED", TaskStatus.SUCCEEDED),
    ]


def test_safety_failure_is_moderation_with_a_sentence_and_no_retry(
    harness: MakeHarness,
) -> None:
    h = harness(
        "runway",
        fail_reason="The input image was flagged by content moderation.",
        fail_code="SAFETY.INPUT.IMAGE",
        polls_to_finish=1,
    )
    task_id = h.provider.create(h.request())
    final = h.provider.poll(task_id)
    assert final.status is TaskStatus.FAILED
    assert final.error_kind == ErrorKind.MODERATION.value
    assert "content moderation refused this task" in (final.error or "")
    assert "SAFETY.INPUT.IMAGE" in (final.error or "")
    assert "Use a different character image" in (final.error or "")
    assert h.sleeps == [] and h.emu.create_count == 1


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ASSET.INVALID", ErrorKind.INVALID_INPUT),
        ("INTERNAL.BAD_OUTPUT.CODE01", ErrorKind.UNEXPECTED),
        ("INTERNAL", ErrorKind.UNAVAILABLE),
    ],
)
def test_other_failure_codes(harness: MakeHarness, code: str, kind: ErrorKind) -> None:
    h = harness("runway", fail_reason="It went wrong.", fail_code=code, polls_to_finish=1)
    final = h.provider.poll(h.provider.create(h.request()))
    assert final.status is TaskStatus.FAILED and final.error_kind == kind.value
    assert "It went wrong." in (final.error or "")


def test_cancel_a_running_task(harness: MakeHarness) -> None:
    h = harness("runway", polls_to_finish=5)
    task_id = h.provider.create(h.request())
    assert h.provider.poll(task_id).status is TaskStatus.QUEUED
    h.provider.cancel(task_id)
    update = h.provider.poll(task_id)
    assert update.status is TaskStatus.CANCELED and update.raw_status == "CANCELLED"
    assert h.emu.route_counts["cancel"] == 1


def test_cancel_an_unknown_task_is_not_found(harness: MakeHarness) -> None:
    h = harness("runway")
    with pytest.raises(ProviderError) as info:
        h.provider.cancel("00000000-0000-0000-0000-000000000000")
    assert info.value.kind is ErrorKind.NOT_FOUND


def test_a_2xx_create_answer_without_an_id_is_an_unknown_outcome(harness: MakeHarness) -> None:
    h = harness("runway")
    h.emu.fault("status", route="create", status=200, message="accepted, maybe")
    with pytest.raises(TransportError) as info:
        h.provider.create(h.request())
    assert info.value.sent is True
    assert h.emu.route_counts["create"] == 1
