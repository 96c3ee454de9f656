"""Helpers shared by the CLI and monitor tests: the installed `reenact` script run as a
subprocess, a loopback file server for URL-only providers, and a deliberately slow one for
the kill-during-download test. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Small enough that a task's life (a few polls) takes well under a second, large enough
# that polling stays cheap: provider intervals are 5-10 s, so this gives 50-100 ms.
POLL_SCALE = "0.01"


def reenact_script() -> str:
    """The console script pip installed next to this interpreter (the thing users run)."""
    bindir = Path(sys.executable).parent
    found = shutil.which("reenact", path=str(bindir))
    if found is None:
        raise RuntimeError(
            f"`reenact` is not installed in {bindir}; run `{bindir}/pip install -e .`"
        )
    return found


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's own REENACT_* settings leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REENACT_", "RUNWAYML_"))}
    env.update(
        REENACT_DATA_DIR=str(data_dir),
        REENACT_POLL_SCALE=POLL_SCALE,
        REENACT_ALLOW_PRIVATE_URLS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(
    args: list[str], env: Mapping[str, str], *, timeout: float = 60.0, cwd: Path | None = None
) -> Result:
    proc = subprocess.run(
        [reenact_script(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def start(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [reenact_script(), *args],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "") -> Any:
    """Poll a condition until it holds (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread."""

    def __init__(self, handler: Any) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FileServer(_LoopbackServer):
    """Serves a folder over HTTP on 127.0.0.1 (inputs for URL-only providers)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        super().__init__(partial(_QuietFiles, directory=str(root)))


class SlowServer(_LoopbackServer):
    """Serves one body per path, dripping it in chunks while `slow` is set: a download that
    is reliably in progress when a test kills its process."""

    def __init__(self, body: bytes, *, chunk: int = 256, pause: float = 0.2) -> None:
        self.body = body
        self.slow = threading.Event()
        self.slow.set()
        self.started = threading.Event()
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                try:
                    for i in range(0, len(server.body), chunk):
                        self.wfile.write(server.body[i : i + chunk])
                        self.wfile.flush()
                        server.started.set()
                        if server.slow.is_set():
                            time.sleep(pause)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        super().__init__(Handler)

    def close(self) -> None:
        self.slow.clear()
        super().close()
