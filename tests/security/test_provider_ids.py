"""Provider task ids are data, never part of a URL's structure: each provider's ids are checked
when a task is tracked, and again (with percent-encoding as one path segment) on every poll
and cancel, so an id already in the database cannot steer an authenticated request either."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.config import load_settings
from services.errors import ErrorKind, InputError, ProviderError
from services.models import TaskStatus, utcnow
from services.monitor import Monitor
from services.providers.registry import get_provider
from services.studio import Studio
from tests.cli.support import run
from tests.emulators import CometApiEmulator, LiangXinEmulator
from tests.security.recording import RECORDING, RecordingMakevid, RecordingRunway


@pytest.fixture
def runway() -> Iterator[RecordingRunway]:
    with RecordingRunway() as emu:
        yield emu  # type: ignore[misc]


def _provider(emu: object, tmp_path: Path, provider_id: str):  # type: ignore[no-untyped-def]
    settings = load_settings(
        env={"REENACT_DATA_DIR": str(tmp_path / "data"), **emu.env()},  # type: ignore[attr-defined]
        secrets={},
    )
    return get_provider(provider_id, settings)


# (provider, the hostile id, the path it would reach if it were put into the URL as is)
ESCAPES = [
    ("runway", "../../v1/organization?x=1", "/v1/organization"),
    ("runway", "..%2F..%2Fv1%2Forganization", "/v1/organization"),
    ("makevid", "../../../admin/keys?x=1", "/admin/keys"),
]


@pytest.mark.parametrize(("provider_id", "bad_id", "target"), ESCAPES)
def test_tracking_a_path_escaping_id_is_refused_before_any_request(
    env: dict[str, str], tmp_path: Path, provider_id: str, bad_id: str, target: str
) -> None:
    with RECORDING[provider_id]() as emu:
        env.update(emu.env())
        r = run(["track", "--provider", provider_id, bad_id, "--json"], env)
        seen = emu.paths()  # type: ignore[attr-defined]
    assert target not in seen, r.output
    assert seen == []  # refused before anything was sent
    assert r.code == 1, r.output
    assert "does not look like" in r.stderr and "task id" in r.stderr
    assert "paste the id exactly" in r.stderr
    listed = run(["list", "--json"], env)
    assert listed.code == 0 and listed.json() == [], listed.output


@pytest.mark.parametrize(
    "bad_id",
    [
        f"{uuid.uuid4()}\r\nX-Injected: 1",
        f"{uuid.uuid4()}\nx",
        f"{uuid.uuid4()} x",
        "not-a-uuid-at-all",
        "1" * 200,
    ],
)
def test_runway_ids_must_be_uuids_and_never_hold_line_breaks(
    env: dict[str, str], runway: RecordingRunway, bad_id: str
) -> None:
    env.update(runway.env())
    r = run(["track", "--provider", "runway", bad_id, "--json"], env)
    assert r.code == 1, r.output
    assert "does not look like a Runway task id" in r.stderr
    assert "base URL" not in r.output and "BASE_URL" not in r.output
    assert runway.paths() == []
    assert r.json()["error"]


def test_a_good_runway_id_is_still_tracked(env: dict[str, str], runway: RecordingRunway) -> None:
    env.update(runway.env())
    ptid = runway.add_task()
    # Blanks around a pasted id are trimmed.
    r = run(["track", "--provider", "runway", f" {ptid}\n", "--json"], env)
    assert r.code == 0, r.output
    assert r.json()["provider_task_id"] == ptid
    assert runway.paths() == [f"/v1/tasks/{ptid}"]


def test_liangxin_and_cometapi_ids_as_their_docs_show_them_are_accepted(tmp_path: Path) -> None:
    with LiangXinEmulator() as lx, CometApiEmulator() as comet:
        liangxin = _provider(lx, tmp_path, "liangxin")
        cometapi = _provider(comet, tmp_path, "cometapi")
        for provider, ok in (
            (liangxin, "task_runway_act_two_1765166238716"),
            (cometapi, "196642a0-05e1-441a-981e-eb0c1f5d983b"),
        ):
            assert provider.check_task_id(ok) == ok
            assert provider.check_task_id("YWJj+ZGVm==") == "YWJj+ZGVm=="  # room for base64
            for bad in (
                "a/b",
                "a?b",
                "a#b",
                "a%2e",
                "a&b",
                "a\\b",
                "a b",
                "a\tb",
                "a\x00b",
                "..",
                "x" * 129,
            ):
                with pytest.raises(InputError, match="paste the id exactly"):
                    provider.check_task_id(bad)
        liangxin.close()
        cometapi.close()


@pytest.mark.parametrize("bad_id", ["../../v1/organization", "x\r\nX-Injected: 1", "a/b"])
def test_a_bad_id_already_stored_is_never_polled_or_canceled(
    tmp_path: Path, runway: RecordingRunway, bad_id: str
) -> None:
    """Defence in depth: the provider itself refuses, whatever put the id in the database."""
    provider = _provider(runway, tmp_path, "runway")
    with pytest.raises(ProviderError) as polled:
        provider.poll(bad_id)
    with pytest.raises(ProviderError) as canceled:
        provider.cancel(bad_id)
    provider.close()
    for err in (polled.value, canceled.value):
        assert err.kind is ErrorKind.NOT_FOUND  # the monitor fails it after its grace period
        assert "does not look like a Runway task id" in str(err)
    assert runway.paths() == []


def test_ids_go_into_the_path_as_one_encoded_segment(tmp_path: Path) -> None:
    with RecordingMakevid() as emu:
        provider = _provider(emu, tmp_path, "makevid")
        with pytest.raises(ProviderError):
            provider.poll("abc:def")  # allowed characters, but ':' is encoded all the same
        provider.close()
        assert emu.paths() == ["/api/v1/get_runway/abc%3Adef"]


@pytest.fixture
def studio(tmp_path: Path, runway: RecordingRunway) -> Iterator[Studio]:
    env = {"REENACT_DATA_DIR": str(tmp_path / "data"), **runway.env()}
    s = Studio(load_settings(env=env, secrets={}))
    yield s
    s.close()


def _stored(studio: Studio, provider_task_id: str) -> str:
    """A tracked row holding this id, as an old database (or a bug) could have it."""
    task, _ = studio.store.create_task(
        "runway", status=TaskStatus.QUEUED, provider_task_id=provider_task_id, tracked=True
    )
    studio.store.update_task(task.id, started_at=utcnow(), next_poll_at=utcnow())
    return task.id


def test_canceling_a_stored_task_with_an_escaping_id_sends_no_delete(
    studio: Studio, runway: RecordingRunway
) -> None:
    task_id = _stored(studio, "../../v1/some/other/resource")
    with pytest.raises(ProviderError, match="does not look like a Runway task id"):
        studio.cancel(task_id)
    assert [(q.method, q.path) for q in runway.seen] == []


def test_the_monitor_fails_a_stored_bad_id_with_a_sentence_instead_of_polling_it(
    studio: Studio, runway: RecordingRunway
) -> None:
    task_id = _stored(studio, "x\r\nX-Injected: 1")
    monitor = Monitor(studio)
    try:
        monitor.tick([task_id])
    finally:
        monitor.stop()
    task = studio.get(task_id)
    assert task.status is TaskStatus.FAILED  # not queued forever
    assert "does not look like a Runway task id" in (task.error or "")
    assert "line break" in (task.error or "")
    assert runway.seen == []
