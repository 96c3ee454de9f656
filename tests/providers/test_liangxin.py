"""LiangXin quirks: errors inside HTTP-200 bodies, resultJson as a JSON string, no default
host, image or video character, options in the body."""

from __future__ import annotations

import json

import pytest

from services.config import load_settings
from services.errors import ConfigError, ErrorKind, InputError, ProviderError
from services.models import TaskOptions, TaskStatus
from services.providers.liangxin import LiangXinProvider, Record
from tests.providers.conftest import MakeHarness

# body code -> (kind, retried on a poll)
CODES = {
    401: (ErrorKind.AUTHENTICATION, False),
    402: (ErrorKind.INSUFFICIENT_CREDITS, False),
    404: (ErrorKind.NOT_FOUND, False),
    422: (ErrorKind.INVALID_INPUT, False),
    429: (ErrorKind.RATE_LIMITED, True),
    433: (ErrorKind.INSUFFICIENT_CREDITS, False),
    455: (ErrorKind.UNAVAILABLE, True),
    500: (ErrorKind.UNAVAILABLE, True),
    505: (ErrorKind.UNAVAILABLE, False),
}


def test_capabilities(harness: MakeHarness) -> None:
    caps = harness("liangxin").provider.capabilities()
    assert caps.ratios == ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
    assert (caps.reference_min_s, caps.reference_max_s) == (3.0, 30.0)
    assert caps.options == {"expression_intensity", "body_control", "seed", "ratio"}
    assert caps.accepts_character_video and caps.needs_urls


def test_no_default_host_means_not_configured() -> None:
    settings = load_settings(env={"REENACT_LIANGXIN_API_KEY": "lx-1"}, secrets={})
    provider = LiangXinProvider(settings)
    av = provider.availability()
    assert not av.available and "REENACT_LIANGXIN_BASE_URL" in (av.reason or "")
    with pytest.raises(ConfigError, match="REENACT_LIANGXIN_BASE_URL"):
        provider.poll("task_x")


@pytest.mark.parametrize("in_200", [True, False])
@pytest.mark.parametrize("code", sorted(CODES))
def test_body_codes_on_poll(harness: MakeHarness, code: int, in_200: bool) -> None:
    kind, retried = CODES[code]
    h = harness("liangxin", errors_in_200=in_200)
    task_id = h.emu.add_task()
    h.emu.fault(
        "body_error", route="poll", code=code, message=f"input.ratio says {code}", times=None
    )
    with pytest.raises(ProviderError) as info:
        h.provider.poll(task_id)
    assert info.value.kind is kind
    assert len(h.sleeps) == (2 if retried else 0)
    assert h.emu.key not in str(info.value)
    if code == 422:
        assert info.value.field == "input.ratio"


def test_rate_limit_in_a_200_body_honours_retry_after(harness: MakeHarness) -> None:
    h = harness("liangxin")
    task_id = h.emu.add_task()
    h.emu.fault("rate_limit", route="poll", retry_after="4")
    assert h.provider.poll(task_id).status is TaskStatus.QUEUED
    assert h.sleeps == [4.0]


def test_generation_failed_code_on_poll_is_a_failed_task(harness: MakeHarness) -> None:
    h = harness("liangxin")
    task_id = h.emu.add_task()
    h.emu.fault("body_error", route="poll", code=501, message="generation failed: bad face")
    update = h.provider.poll(task_id)
    assert update.status is TaskStatus.FAILED
    assert "generation failed: bad face" in (update.error or "")


@pytest.mark.parametrize(
    ("code", "retried"), [(455, True), (429, True), (500, False), (501, False), (505, False)]
)
def test_body_codes_on_create_retry_only_refusals(
    harness: MakeHarness, code: int, retried: bool
) -> None:
    h = harness("liangxin")
    h.emu.fault("body_error", route="create", code=code, message="nope")
    if retried:
        assert h.provider.create(h.request()) in h.emu.tasks
        assert h.emu.route_counts["create"] == 2
    else:
        with pytest.raises(ProviderError):
            h.provider.create(h.request())
        assert h.emu.route_counts["create"] == 1 and h.emu.create_count == 0


def test_result_json_string_is_parsed(harness: MakeHarness) -> None:
    h = harness("liangxin", polls_to_finish=1)
    task_id = h.provider.create(h.request())
    final = h.provider.poll(task_id)
    assert final.status is TaskStatus.SUCCEEDED
    assert final.result_url == h.emu.result_url(task_id)


@pytest.mark.parametrize(
    ("result_json", "status", "url"),
    [
        (
            json.dumps({"resultUrls": ["https://cdn.example/a.mp4"]}),
            TaskStatus.SUCCEEDED,
            "https://cdn.example/a.mp4",
        ),
        (
            {"resultUrls": ["https://cdn.example/b.mp4"]},
            TaskStatus.SUCCEEDED,
            "https://cdn.example/b.mp4",
        ),
        ("", TaskStatus.RUNNING, None),
        ("{not json", TaskStatus.FAILED, None),
    ],
)
def test_result_json_variants(result_json: object, status: TaskStatus, url: str | None) -> None:
    settings = load_settings(env={}, secrets={})
    update = LiangXinProvider(settings).normalize(
        Record.model_validate({"state": "success", "resultJson": result_json})
    )
    assert update.status is status and update.result_url == url
    if status is TaskStatus.FAILED:
        assert update.error_kind == ErrorKind.UNEXPECTED.value
        assert "{not json" in (update.error or "")


def test_fail_state_keeps_message_and_code(harness: MakeHarness) -> None:
    h = harness(
        "liangxin", fail_reason="reference video too short", fail_code="422", polls_to_finish=1
    )
    final = h.provider.poll(h.provider.create(h.request()))
    assert final.status is TaskStatus.FAILED and final.raw_status == "fail"
    assert "reference video too short (code 422)" in (final.error or "")


def test_states_map_to_normalized_statuses(harness: MakeHarness) -> None:
    h = harness("liangxin", queued_polls=2, polls_to_finish=4)
    seen = h.poll_until_done(h.provider.create(h.request()))
    assert [(u.raw_status, u.status) for u in seen] == [
        ("waiting", TaskStatus.QUEUED),
        ("queuing", TaskStatus.QUEUED),
        ("generating", TaskStatus.RUNNING),
        ("success", TaskStatus.SUCCEEDED),
    ]


def test_body_carries_model_options_and_callback(harness: MakeHarness) -> None:
    h = harness("liangxin")
    opts = TaskOptions(expression_intensity=4, body_control=True, seed=7, ratio="960:960")
    req = h.request(options=opts, character_video="https://cdn.example/char.mp4")
    body = h.emu.task(h.provider.create(req)).body
    assert body == {
        "model": "runway-act-two",
        "callBackUrl": "https://callbacks.reenact.invalid/hooks/liangxin",
        "input": {
            "character": {"type": "video", "uri": "https://cdn.example/char.mp4"},
            "reference": {"type": "video", "uri": req.video},
            "ratio": "960:960",
            "body_control": True,
            "expression_intensity": 4,
            "seed": 7,
        },
    }


def test_image_character_and_default_ratio(harness: MakeHarness) -> None:
    h = harness("liangxin")
    req = h.request()
    inp = h.emu.task(h.provider.create(req)).body["input"]
    assert inp["character"] == {"type": "image", "uri": req.image}
    assert inp["ratio"] == "1280:720" and "seed" not in inp


def test_inputs_refused_before_sending(harness: MakeHarness) -> None:
    h = harness("liangxin")
    with pytest.raises(InputError, match="character image or a character video"):
        h.provider.create(h.request(image=None))
    with pytest.raises(InputError, match="1584:672"):
        h.provider.create(h.request(options=TaskOptions(ratio="16:9")))
    with pytest.raises(InputError, match="REENACT_PUBLIC_URL"):
        h.provider.create(h.request(video="/tmp/local.mp4"))
    assert h.emu.route_counts == {}
