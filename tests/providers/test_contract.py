"""What every provider must do, checked against each provider's loopback emulator."""

from __future__ import annotations

import logging

import httpx
import pytest

from services.config import load_settings
from services.errors import ConfigError, ErrorKind, ProviderError, TransportError
from services.models import TaskOptions, TaskStatus
from services.providers.registry import provider_class
from tests.providers.conftest import MakeHarness, build_provider

ALL = ["cometapi", "liangxin", "runway", "makevid"]
CREATORS = ["cometapi", "liangxin", "runway"]


@pytest.mark.parametrize("pid", ALL)
def test_happy_path_queued_running_succeeded_with_a_result_url(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid, queued_polls=1, polls_to_finish=3)
    task_id = h.start_task()
    seen = h.poll_until_done(task_id)
    assert [u.status for u in seen] == [TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.SUCCEEDED]
    assert seen[1].progress == pytest.approx(0.5)
    assert seen[-1].progress == 1.0
    assert seen[-1].result_url == h.emu.result_url(task_id)
    assert all(u.raw_status for u in seen)  # the provider's own word is kept
    video = httpx.get(seen[-1].result_url)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert h.sleeps == []


@pytest.mark.parametrize("pid", ALL)
def test_capabilities_are_consistent(harness: MakeHarness, pid: str) -> None:
    h = harness(pid)
    caps = h.provider.capabilities()
    assert caps.id == pid and caps.name == h.provider.name
    assert caps.can_create is (pid != "makevid")
    assert caps.can_cancel is (pid == "runway")
    assert caps.poll_interval_s > 0
    # Every option a provider declares is a TaskOptions field (the page and CLI offer no other).
    assert caps.options <= set(TaskOptions.model_fields)
    assert h.provider.availability().available


@pytest.mark.parametrize("pid", ALL)
def test_wrong_key_is_rejected_with_a_sentence_and_never_echoed(
    harness: MakeHarness, pid: str
) -> None:
    wrong = "sk-wrong-0123456789abcdef"
    h = harness(pid, key=wrong)
    task_id = h.emu.add_task()
    with pytest.raises(ProviderError) as info:
        h.provider.poll(task_id)
    err = info.value
    assert err.kind is ErrorKind.AUTHENTICATION
    assert "the provider rejected the api key" in str(err).lower()
    assert f"REENACT_{pid.upper()}_API_KEY" in str(err)
    assert wrong not in str(err) and wrong not in repr(err.__dict__)
    assert h.sleeps == []  # a wrong key is never retried
    if pid in CREATORS:
        with pytest.raises(ProviderError) as info:
            h.provider.create(h.request())
        assert info.value.kind is ErrorKind.AUTHENTICATION
        assert h.emu.create_count == 0


@pytest.mark.parametrize("pid", ALL)
def test_a_key_echoed_by_the_provider_is_scrubbed(harness: MakeHarness, pid: str) -> None:
    h = harness(pid)
    task_id = h.emu.add_task()
    h.emu.fault(
        "status", route="poll", status=401, message=f"bad key {h.emu.key} for you", code=401
    )
    with pytest.raises(ProviderError) as info:
        h.provider.poll(task_id)
    assert info.value.kind is ErrorKind.AUTHENTICATION
    assert "[redacted]" in str(info.value)
    assert h.emu.key not in str(info.value)
    assert h.emu.key not in (info.value.detail or "")


@pytest.mark.parametrize("pid", ALL)
def test_the_key_never_reaches_the_logs(
    harness: MakeHarness, pid: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = harness(pid)
    task_id = h.start_task()
    h.emu.fault("status", route="poll", status=500)
    h.poll_until_done(task_id)
    assert caplog.records, "expected debug logs from the HTTP layer"
    assert all(h.emu.key not in r.getMessage() for r in caplog.records)
    assert all("authorization" not in r.getMessage().lower() for r in caplog.records)


@pytest.mark.parametrize("pid", ALL)
def test_rate_limit_on_poll_honours_retry_after_seconds(harness: MakeHarness, pid: str) -> None:
    h = harness(pid)
    task_id = h.start_task()
    h.emu.fault("rate_limit", route="poll", retry_after="3")
    update = h.provider.poll(task_id)
    assert update.status is TaskStatus.QUEUED
    assert h.sleeps == [3.0]
    assert h.emu.poll_counts()[task_id] == 2


@pytest.mark.parametrize("pid", ALL)
def test_rate_limit_longer_than_allowed_is_returned_with_retry_after(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid, http={"max_retry_after": 5.0})
    task_id = h.start_task()
    h.emu.fault("rate_limit", route="poll", retry_after="120")
    with pytest.raises(ProviderError) as info:
        h.provider.poll(task_id)
    assert info.value.kind is ErrorKind.RATE_LIMITED
    assert info.value.retry_after == pytest.approx(120)
    assert info.value.retryable
    assert h.sleeps == []


@pytest.mark.parametrize("pid", ALL)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_on_poll_are_retried_with_backoff(
    harness: MakeHarness, pid: str, status: int
) -> None:
    h = harness(pid)
    task_id = h.start_task()
    h.emu.fault("status", route="poll", status=status, times=2)
    assert h.provider.poll(task_id).status is TaskStatus.QUEUED
    assert len(h.sleeps) == 2
    assert 0.05 <= h.sleeps[0] <= 0.075 and 0.1 <= h.sleeps[1] <= 0.15  # 2x backoff, +50% jitter


@pytest.mark.parametrize("pid", ALL)
def test_a_provider_that_stays_down_is_unavailable_after_the_retries(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid)
    task_id = h.start_task()
    h.emu.fault("status", route="poll", status=503, times=None)
    with pytest.raises(ProviderError) as info:
        h.provider.poll(task_id)
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert info.value.retryable
    assert "unavailable" in str(info.value)
    assert h.emu.poll_counts()[task_id] == 3  # 1 + max_retries


@pytest.mark.parametrize("pid", ALL)
@pytest.mark.parametrize("kind", ["html", "garbage"])
def test_a_page_or_garbage_instead_of_json_is_unexpected(
    harness: MakeHarness, pid: str, kind: str
) -> None:
    h = harness(pid)
    task_id = h.start_task()
    h.emu.fault(kind, route="poll")
    with pytest.raises(ProviderError) as info:
        h.provider.poll(task_id)
    assert info.value.kind is ErrorKind.UNEXPECTED
    assert "instead of data" in str(info.value)
    if kind == "html":
        assert "web page" in str(info.value)
        assert "<html" not in str(info.value).lower()
    assert h.sleeps == []


@pytest.mark.parametrize("pid", ALL)
def test_an_html_error_page_with_a_5xx_is_retried_then_unavailable(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid)
    task_id = h.start_task()
    h.emu.fault("html", route="poll", status=502, times=None)
    with pytest.raises(ProviderError) as info:
        h.provider.poll(task_id)
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert "<" not in str(info.value)
    assert len(h.sleeps) == 2


@pytest.mark.parametrize("pid", ALL)
def test_a_wrong_base_path_answers_a_web_page(harness: MakeHarness, pid: str) -> None:
    h = harness(pid)
    env = {**h.emu.env(), f"REENACT_{pid.upper()}_BASE_URL": h.emu.url + "/wrong/prefix"}
    provider = build_provider(pid, h.tmp, env, h.sleeps)
    with pytest.raises(ProviderError) as info:
        provider.poll(h.emu.add_task())
    provider.close()
    assert info.value.kind is ErrorKind.UNEXPECTED
    assert "web page instead of data" in str(info.value)


@pytest.mark.parametrize("pid", ALL)
def test_an_unknown_task_is_not_found(harness: MakeHarness, pid: str) -> None:
    h = harness(pid)
    with pytest.raises(ProviderError) as info:
        h.provider.poll("no-such-task-0000")
    assert info.value.kind is ErrorKind.NOT_FOUND
    assert not info.value.retryable
    assert h.sleeps == []


@pytest.mark.parametrize("pid", ALL)
def test_a_slow_poll_times_out_and_is_retried(harness: MakeHarness, pid: str) -> None:
    h = harness(pid, http={"read_timeout": 0.3})
    task_id = h.start_task()
    h.emu.fault("slow", route="poll", delay=1.0)
    # The emulator did the slow poll's work (queued), so the retry already sees it running.
    assert h.provider.poll(task_id).status is TaskStatus.RUNNING
    assert len(h.sleeps) == 1
    assert h.emu.poll_counts()[task_id] == 2


@pytest.mark.parametrize("pid", ALL)
def test_polls_that_never_answer_end_within_the_deadline_as_a_timeout(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid, http={"read_timeout": 0.2, "deadline": 0.5, "max_retries": 10})
    task_id = h.start_task()
    h.emu.fault("slow", route="poll", delay=0.6, times=None)
    with pytest.raises(TransportError) as info:
        h.provider.poll(task_id)
    assert info.value.kind is ErrorKind.TIMEOUT and info.value.sent
    assert "did not answer in time" in str(info.value)
    assert h.emu.poll_counts()[task_id] <= 3


@pytest.mark.parametrize("pid", ALL)
def test_a_provider_side_failure_keeps_the_providers_reason(harness: MakeHarness, pid: str) -> None:
    reason = "The driving video has no visible face"
    h = harness(pid, fail_reason=reason, polls_to_finish=2)
    seen = h.poll_until_done(h.start_task())
    final = seen[-1]
    assert final.status is TaskStatus.FAILED
    assert reason in (final.error or "")
    assert final.error and final.error.endswith(".")
    assert final.error_kind != ErrorKind.MODERATION.value


@pytest.mark.parametrize("pid", ALL)
def test_an_existing_task_can_be_made_to_fail(harness: MakeHarness, pid: str) -> None:
    h = harness(pid, polls_to_finish=2)
    task_id = h.start_task()
    h.emu.fail_task(task_id, "GPU fell over")
    final = h.poll_until_done(task_id)[-1]
    assert final.status is TaskStatus.FAILED and "GPU fell over" in (final.error or "")


@pytest.mark.parametrize("pid", ALL)
def test_an_unknown_status_word_is_kept_and_never_terminal(harness: MakeHarness, pid: str) -> None:
    h = harness(pid, status_override="WARMING_UP_NEW_STATE")
    update = h.provider.poll(h.start_task())
    assert update.status in (TaskStatus.QUEUED, TaskStatus.RUNNING)
    assert "WARMING_UP_NEW_STATE" in (update.raw_status or "")


@pytest.mark.parametrize("pid", ALL)
def test_missing_key_is_a_configuration_error_naming_the_variable(
    harness: MakeHarness, pid: str
) -> None:
    h = harness(pid)
    settings = load_settings(env={f"REENACT_{pid.upper()}_BASE_URL": h.emu.url}, secrets={})
    provider = provider_class(pid)(settings)
    assert not provider.availability().available
    with pytest.raises(ConfigError) as info:
        provider.poll("anything")
    assert f"REENACT_{pid.upper()}_API_KEY" in str(info.value)
    assert sum(h.emu.route_counts.values()) == 0


@pytest.mark.parametrize("pid", ALL)
def test_an_unreachable_provider_is_unavailable_not_sent(
    harness: MakeHarness, pid: str, closed_port: int
) -> None:
    h = harness(pid)
    env = {**h.emu.env(), f"REENACT_{pid.upper()}_BASE_URL": f"http://127.0.0.1:{closed_port}"}
    provider = build_provider(pid, h.tmp, env, h.sleeps)
    with pytest.raises(TransportError) as info:
        provider.poll("abc")
    provider.close()
    assert not info.value.sent
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert f"127.0.0.1:{closed_port}" in str(info.value)
    assert len(h.sleeps) == 2


def test_emulator_serves_expired_result_links_as_403(harness: MakeHarness) -> None:
    h = harness("runway", polls_to_finish=1)
    url = h.poll_until_done(h.start_task())[-1].result_url
    assert httpx.get(url).status_code == 200
    h.emu.configure(expire_results=403)
    expired = httpx.get(url)
    assert expired.status_code == 403 and b"expired" in expired.content
