"""The emulators themselves: out-of-process control, standalone mode, many tasks at once."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.emulators import EMULATORS, RunwayEmulator

ROOT = Path(__file__).resolve().parents[2]


def test_control_endpoint_drives_faults_config_and_tasks() -> None:
    with RunwayEmulator() as emu, httpx.Client(base_url=emu.url) as c:
        auth = {"Authorization": f"Bearer {emu.key}", "X-Runway-Version": "2024-11-06"}
        task_id = c.post("/_control", json={"action": "add_task"}).json()["task_id"]
        r = c.post(
            "/_control",
            json={"action": "fault", "kind": "rate_limit", "route": "poll", "retry_after": "9"},
        )
        assert r.json()["faults_pending"] == 1
        limited = c.get(f"/v1/tasks/{task_id}", headers=auth)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "9"
        c.post("/_control", json={"action": "configure", "polls_to_finish": 1})
        c.post(
            "/_control", json={"action": "fail_task", "task_id": task_id, "reason": "no face found"}
        )
        done = c.get(f"/v1/tasks/{task_id}", headers=auth).json()
        assert done["status"] == "FAILED" and done["failure"] == "no face found"
        info = c.get(f"/_control/tasks/{task_id}").json()
        assert info["requests"] == 2 and info["polls"] == 1
        stats = c.get("/_control").json()
        assert stats["tasks"] == 1 and stats["routes"] == {"poll": 2}
        assert c.post("/_control", json={"action": "nope"}).status_code == 400
        c.post("/_control", json={"action": "reset"})
        assert c.get("/_control").json()["tasks"] == 0


def test_standalone_emulator_prints_its_address_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators", "cometapi", "--polls-to-finish", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["url"].startswith("http://127.0.0.1:")
        assert info["env"]["REENACT_COMETAPI_BASE_URL"] == info["url"]
        r = httpx.post(
            f"{info['url']}/runway/feed",
            json={"task_id": "x"},
            headers={"Authorization": f"Bearer {info['key']}"},
        )
        assert r.status_code == 400 and r.json()["code"] == "task_not_exist"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("pid", ["cometapi", "runway"])  # the id in the body, or the path
def test_a_thousand_tasks_polled_concurrently(pid: str) -> None:
    with EMULATORS[pid](polls_to_finish=2) as emu:
        ids = [emu.add_task() for _ in range(1000)]
        auth = {"Authorization": f"Bearer {emu.key}", "X-Runway-Version": "2024-11-06"}
        paths = {
            "cometapi": lambda t: ("POST", "/runway/feed", {"json": {"task_id": t}}),
            "liangxin": lambda t: ("GET", "/api/v1/jobs/recordInfo", {"params": {"taskId": t}}),
            "runway": lambda t: ("GET", f"/v1/tasks/{t}", {}),
            "makevid": lambda t: ("GET", f"/api/v1/get_runway/{t}", {}),
        }
        with httpx.Client(
            base_url=emu.url, headers=auth, limits=httpx.Limits(max_connections=32)
        ) as c:

            def poll(t: str) -> int:
                method, path, kw = paths[pid](t)
                return c.request(method, path, **kw).status_code

            with ThreadPoolExecutor(32) as pool:
                codes = list(pool.map(poll, ids))
        assert codes == [200] * 1000
        assert set(emu.poll_counts().values()) == {1}
        assert emu.stats()["polls"] == 1000
