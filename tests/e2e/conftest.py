"""The app as a creator meets it: `streamlit run app.py` in a subprocess (its own data dir),
provider emulators on 127.0.0.1 in this process, and Debian's Chromium driven by Playwright.

Everything here is session-scoped (one server, one browser) except the page; tests reset
the emulators' faults and lifecycle they changed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.emulators import CometApiEmulator, RunwayEmulator
from tests.mediagen import make_image, make_video

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "_artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
START_TIMEOUT_S = 60.0
# Emulated renders take this long: long enough to watch the bar move and to reload mid-task.
RENDER_SECONDS = 4.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AppServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def db_path(self) -> Path:
        return self.data_dir / "reenact.db"

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Read the real SQLite store (what the app wrote), as a separate connection."""
        with sqlite3.connect(self.db_path, timeout=30) as conn:
            return list(conn.execute(sql, params))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Media:
    wide: Path  # 16:9, 3.5 s, a face
    long: Path  # 16:9, 20 s at 24 fps: the local engine needs seconds, so the bar visibly moves
    tall: Path  # 9:16, 3.5 s, a face
    face: Path  # 16:9 still with a face


@pytest.fixture(scope="session")
def runway() -> Iterator[RunwayEmulator]:
    with RunwayEmulator(seconds_to_finish=RENDER_SECONDS, queued_seconds=0.5) as emu:
        yield emu


@pytest.fixture(scope="session")
def cometapi() -> Iterator[CometApiEmulator]:
    with CometApiEmulator(seconds_to_finish=RENDER_SECONDS) as emu:
        yield emu


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    d = tmp_path_factory.mktemp("media")
    return Media(
        wide=make_video(d / "performance.mp4", size=(320, 180), seconds=3.5, fps=10),
        long=make_video(d / "long-take.mp4", size=(320, 180), seconds=20.0, fps=24),
        tall=make_video(d / "phone-clip.mp4", size=(180, 320), seconds=3.5, fps=10),
        face=make_image(d / "character.png", size=(640, 360)),
    )


def start_app(
    data_dir: Path,
    extra_env: dict[str, str],
    port: int | None = None,
    *,
    sign_in_metadata_url: str | None = None,
    public_url: bool = True,
) -> AppServer:
    """`streamlit run app.py` on 127.0.0.1 with its own data dir; returns once the page
    server answers and its monitor runs. With `sign_in_metadata_url` (an OpenID provider's
    discovery URL) the app runs from a folder beside the data dir whose secrets.toml turns
    sign-in on, the way an operator does."""
    port = port or _free_port()
    cwd = ROOT
    if sign_in_metadata_url is not None:
        cwd = _signed_in_home(data_dir.parent / f"home-{port}", port, sign_in_metadata_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REENACT_", "RUNWAYML_"))}
    env.update(extra_env)
    env.update(
        {
            "REENACT_DATA_DIR": str(data_dir),
            # Link-only providers (CometAPI) get this app's published copy of an upload.
            "REENACT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "REENACT_ALLOW_PRIVATE_URLS": "1",
            "REENACT_POLL_SCALE": "0.05",
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if not public_url:  # a laptop with no public address (object storage instead)
        env.pop("REENACT_PUBLIC_URL")
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app.py"),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = AppServer(
        url=f"http://127.0.0.1:{port}", data_dir=data_dir, process=proc, log_path=log_path
    )
    try:
        _wait_healthy(server)
    except BaseException:
        stop_app(server)
        raise
    return server


def _signed_in_home(home: Path, port: int, metadata_url: str) -> Path:
    (home / ".streamlit").mkdir(parents=True)
    shutil.copyfile(ROOT / ".streamlit" / "config.toml", home / ".streamlit" / "config.toml")
    (home / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(16)}"\n'
        'client_id = "reenact-test"\n'
        'client_secret = "not-a-real-secret"\n'
        f'server_metadata_url = "{metadata_url}"\n'
    )
    return home


def stop_app(server: AppServer) -> None:
    """SIGTERM: the lifespan stops the monitor after its current tick, like a real restart."""
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def app_server(
    tmp_path_factory: pytest.TempPathFactory, runway: RunwayEmulator, cometapi: CometApiEmulator
) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("data"), {**runway.env(), **cometapi.env()})
    try:
        yield server
    finally:
        stop_app(server)


def _wait_healthy(server: AppServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).json().get("monitor"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)  # polling a condition with a deadline, not synchronising on time
    raise RuntimeError(f"streamlit did not become healthy:\n{server.log_text()}")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: object, app_server: AppServer) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1440, "height": 1000}, base_url=app_server.url
    )
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(autouse=True)
def _clean_emulators(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("runway", "cometapi"):
        if name in request.fixturenames:
            emu = request.getfixturevalue(name)
            emu.clear_faults()
            emu.configure(fail_reason=None, fail_code=None)


_CONTENT_HEIGHT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const block = document.querySelector('[data-testid="stMainBlockContainer"]');
  return Math.max(main ? main.scrollHeight : 0, block ? block.scrollHeight + 120 : 0,
                  document.body.scrollHeight);
}"""


def shot(page: object, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its own container, so the viewport is grown
    to the content's height for the picture and then put back."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size  # type: ignore[attr-defined]
    height = int(page.evaluate(_CONTENT_HEIGHT_JS))  # type: ignore[attr-defined]
    page.set_viewport_size(  # type: ignore[attr-defined]
        {"width": size["width"], "height": max(size["height"], min(height, 6000))}
    )
    try:
        page.screenshot(path=str(path))  # type: ignore[attr-defined]
    finally:
        page.set_viewport_size(size)  # type: ignore[attr-defined]
    return path


# Artifact → docs/screenshots name (README). Refreshed only on request, so an ordinary test
# run leaves the committed pictures alone: REENACT_UPDATE_SCREENSHOTS=1 make test.
PUBLISHED = {
    "create-done": "create",
    "create-fixed": "create-fix",
    "tasks": "tasks",
    "task-detail": "task",
    "compare": "compare",
    "settings": "settings",
}
PUBLISHED_WIDTH = 1200


@pytest.fixture(scope="session", autouse=True)
def _publish_screenshots() -> Iterator[None]:
    yield
    if os.environ.get("REENACT_UPDATE_SCREENSHOTS") != "1":
        return
    from PIL import Image

    out = ROOT / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for artifact, name in PUBLISHED.items():
        src = ARTIFACTS / f"{artifact}.png"
        if not src.is_file():
            continue
        with Image.open(src) as img:
            rgb = img.convert("RGB")
            height = round(rgb.height * PUBLISHED_WIDTH / rgb.width)
            small = rgb.resize((PUBLISHED_WIDTH, height), Image.Resampling.LANCZOS)
            small.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
                out / f"{name}.png", optimize=True
            )
