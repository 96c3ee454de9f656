"""Exposure: the app listens on 127.0.0.1 unless the operator chooses otherwise, and without
sign-in it answers only this computer (published inputs and provider callbacks excepted)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from server.exposure import REFUSED, LocalOnlyWithoutSignIn
from tests.e2e.conftest import ROOT, _free_port


def test_by_default_the_app_listens_on_loopback_only(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REENACT_")}
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    env["REENACT_DATA_DIR"] = str(tmp_path / "data")
    # As `make run` starts it, minus the Makefile: the address comes from .streamlit/config.toml.
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        listening: list[str] = []
        while not listening:
            assert proc.poll() is None, "streamlit exited early"
            assert time.monotonic() < deadline, "the app never listened"
            conns = psutil.Process(proc.pid).net_connections(kind="inet")
            listening = [
                c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            ]
            time.sleep(0.05)  # polling a condition with a deadline
        assert set(listening) <= {"127.0.0.1", "::1"}, listening
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def _call(client: tuple[str, int], path: str) -> tuple[int, bytes]:
    reached: list[str] = []

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    sent: list[dict] = []

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": client,
        "server": ("127.0.0.1", 8501),
        "scheme": "http",
        "http_version": "1.1",
    }
    await LocalOnlyWithoutSignIn(inner)(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.parametrize(
    ("client", "path", "allowed"),
    [
        (("127.0.0.1", 5000), "/", True),
        (("::1", 5000), "/files/abc/result.mp4", True),
        # A request from another machine (a documentation address: nothing is sent there,
        # the request is handed to the middleware in this process).
        (("203.0.113.7", 5000), "/", False),
        (("203.0.113.7", 5000), "/files/abc/result.mp4", False),
        (("203.0.113.7", 5000), "/_stcore/health", False),
        (("203.0.113.7", 5000), "/media/" + "0" * 64 + "/drive.mp4", True),
        # A creator's own upload (the Create page's preview) is not for providers.
        (("203.0.113.7", 5000), "/uploads/" + "0" * 64 + "/drive.mp4", False),
        (("203.0.113.7", 5000), "/hooks/runway/token", True),
    ],
)
def test_without_sign_in_only_this_computer_is_answered(
    client: tuple[str, int], path: str, allowed: bool
) -> None:
    # On a thread of its own: Playwright's sync API (browser tests earlier in the same
    # process) can leave an event loop running on this one.
    with ThreadPoolExecutor(1) as pool:
        status, body = pool.submit(asyncio.run, _call(client, path)).result()
    if allowed:
        assert (status, body) == (200, b"app")
    else:
        assert status == 403 and body.decode() == REFUSED
