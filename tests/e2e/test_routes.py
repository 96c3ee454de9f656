"""The app's own HTTP routes on the running server: files only from the data dir, provider
callbacks that nudge the monitor without trusting the payload."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest

from services.config import load_settings
from services.models import TaskStatus, utcnow
from services.publish import new_hook_secret
from services.store import Store
from tests.e2e.conftest import RENDER_SECONDS, AppServer
from tests.emulators import RunwayEmulator


@pytest.fixture
def store(app_server: AppServer) -> Store:
    settings = load_settings(env={"REENACT_DATA_DIR": str(app_server.data_dir)}, secrets={})
    s = Store.open(settings)
    yield s
    s.close()


@pytest.mark.parametrize(
    "path",
    [
        "/files/nosuchtask/result.mp4",
        "/files/..%2F..%2Fetc/passwd",
        "/files/%2e%2e/reenact.db",
        "/media/" + "0" * 64 + "/x.mp4",
        "/media/" + "0" * 64 + "/..%2F..%2Freenact.db",
        "/media/" + "0" * 64 + "/%2e%2e",
    ],
)
def test_files_outside_the_data_folders_are_never_served(app_server: AppServer, path: str) -> None:
    r = httpx.get(app_server.url + path, timeout=10)
    # 400: Streamlit's own path-security middleware refused it before our route saw it.
    assert r.status_code in (400, 404)
    assert b"SQLite" not in r.content


def test_a_task_whose_result_points_outside_results_is_refused(
    app_server: AppServer, store: Store
) -> None:
    outside = app_server.data_dir / "reenact.db"
    task, _ = store.create_task("runway", status=TaskStatus.DRAFT)
    store.update_task(task.id, status=TaskStatus.SUCCEEDED, result_path=str(outside))
    r = httpx.get(f"{app_server.url}/files/{task.id}/result.mp4", timeout=10)
    assert r.status_code == 404
    store.delete_task(task.id)


def test_result_route_supports_ranges(app_server: AppServer, store: Store) -> None:
    results = app_server.data_dir / "results" / "range-test"
    results.mkdir(parents=True, exist_ok=True)
    data = bytes(range(256)) * 40
    (results / "out.mp4").write_bytes(data)
    task, _ = store.create_task("runway", status=TaskStatus.DRAFT)
    store.update_task(task.id, status=TaskStatus.SUCCEEDED, result_path=str(results / "out.mp4"))
    url = f"{app_server.url}/files/{task.id}/result.mp4"
    whole = httpx.get(url, timeout=10)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["content-disposition"].startswith("inline")
    part = httpx.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == data[100:200]
    store.delete_task(task.id)


def test_callback_nudges_the_monitor_and_ignores_the_payload(
    app_server: AppServer, store: Store, runway: RunwayEmulator
) -> None:
    ptid = runway.add_task()
    secret = new_hook_secret()
    task, _ = store.create_task(
        "runway", status=TaskStatus.DRAFT, provider_task_id=ptid, meta={"hook_secret": secret}
    )
    # Queued, but not due for a minute: only the callback can make the monitor look sooner.
    store.update_task(
        task.id, status=TaskStatus.QUEUED, next_poll_at=utcnow() + timedelta(seconds=60)
    )
    assert runway.task(ptid).requests == 0

    # Strangers — no secret, a wrong one, the task id alone, another provider — get the same
    # answer as the real hook and move nothing.
    forged = (
        f"/hooks/runway/{task.id}",
        f"/hooks/runway/{task.id}.{new_hook_secret()}",
        f"/hooks/cometapi/{task.id}.{secret}",
        "/hooks/runway/nosuchtask.0123456789abcdef0123",
        "/hooks/unknown/abc",
    )
    answers = {httpx.post(app_server.url + path, content=b"{}", timeout=10).text for path in forged}
    store.update_task(task.id, next_poll_at=utcnow() + timedelta(seconds=60))
    assert runway.task(ptid).requests == 0, "a forged hook brought a poll forward"

    hook = f"{app_server.url}/hooks/runway/{task.id}.{secret}"
    r = httpx.post(
        hook, json={"status": "SUCCEEDED", "output": ["https://evil.example/x.mp4"]}, timeout=10
    )
    assert r.status_code == 200 and answers == {r.text}
    deadline = time.monotonic() + 15
    while runway.task(ptid).requests == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a condition owned by another process, with a deadline
    assert runway.task(ptid).requests > 0, "the callback did not bring the poll forward"
    after = store.get_task(task.id)
    assert after is not None and after.result_url != "https://evil.example/x.mp4"


def test_a_burst_of_valid_hooks_costs_at_most_one_extra_poll_per_interval(
    app_server: AppServer, store: Store, runway: RunwayEmulator
) -> None:
    runway.configure(seconds_to_finish=600.0)  # stays running for the whole burst
    try:
        ptid = runway.add_task()
        secret = new_hook_secret()
        task, _ = store.create_task(
            "runway", status=TaskStatus.DRAFT, provider_task_id=ptid, meta={"hook_secret": secret}
        )
        store.update_task(
            task.id, status=TaskStatus.QUEUED, next_poll_at=utcnow() + timedelta(seconds=60)
        )
        hook = f"{app_server.url}/hooks/runway/{task.id}.{secret}"
        started = time.monotonic()
        with httpx.Client(timeout=10) as client:
            for _ in range(200):
                assert client.post(hook, content=b"{}").status_code == 200
        # Let a poll the burst caused land, then count (the app polls at 0.05 x Runway's 6 s).
        deadline = time.monotonic() + 2
        while runway.task(ptid).requests == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling a condition owned by another process, with a deadline
        polls = runway.task(ptid).requests
        elapsed = time.monotonic() - started
        store.update_task(task.id, status=TaskStatus.CANCELED)
    finally:
        runway.configure(seconds_to_finish=RENDER_SECONDS)
    # The task is polled at its interval anyway; the hooks may add at most one poll per
    # interval on top (before this rule, 200 hooks meant about 200 polls).
    interval = 6.0 * 0.05
    assert 1 <= polls <= 2 + 2 * elapsed / interval, (polls, elapsed)


def test_an_upload_is_published_only_while_a_live_task_uses_it(
    app_server: AppServer, store: Store
) -> None:
    from services.models import TaskInputs
    from services.publish import sha256_of

    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8
    staged = app_server.data_dir / "staged.mp4"
    staged.write_bytes(data)
    digest = sha256_of(staged)
    stored = app_server.data_dir / "uploads" / digest / "drive.mp4"
    stored.parent.mkdir(parents=True, exist_ok=True)
    staged.replace(stored)
    url = f"{app_server.url}/media/{digest}/drive.mp4"
    # Uploaded, rejected or not yet sent: nobody can fetch it by its hash.
    assert httpx.get(url, timeout=10).status_code == 404
    task, _ = store.create_task(
        "cometapi", status=TaskStatus.QUEUED, inputs=TaskInputs(video=str(stored))
    )
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200 and r.content == data
    store.update_task(task.id, status=TaskStatus.SUCCEEDED)
    assert httpx.get(url, timeout=10).status_code == 404
    store.delete_task(task.id)
