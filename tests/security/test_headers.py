"""The real server (`streamlit run app.py` on 127.0.0.1): security headers on every HTTP
answer, 404 (and no traceback) for file paths with NUL or invalid bytes, websockets still
upgraded, and Streamlit's metrics not answered once sign-in is configured."""

from __future__ import annotations

import base64
import re
import secrets
import shutil
import socket
from collections.abc import Iterator

import httpx
import pytest

from services.config import load_settings
from services.models import TaskInputs, TaskStatus
from services.publish import public_url_for
from services.store import Store
from tests.e2e.conftest import AppServer, _free_port, start_app, stop_app
from tests.mediagen import make_video

pytestmark = pytest.mark.e2e

EXPECTED = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "frame-ancestors 'self'",
    "referrer-policy": "same-origin",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    server = start_app(tmp_path_factory.mktemp("headers-data"), {})
    try:
        yield server
    finally:
        stop_app(server)


@pytest.fixture(scope="module")
def served(app: AppServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A published upload and a task with an archived result, as the app serves them."""
    clip = make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", size=(64, 36), seconds=0.5)
    settings = load_settings(
        env={"REENACT_DATA_DIR": str(app.data_dir), "REENACT_PUBLIC_URL": app.url}, secrets={}
    )
    published = public_url_for(clip, settings)
    store = Store.open(settings)
    # Published uploads answer only while a task that is not finished uses them.
    digest, name = published.removeprefix(app.url).split("/")[2:4]
    store.create_task(
        "cometapi",
        status=TaskStatus.QUEUED,
        inputs=TaskInputs(video=str(settings.uploads_dir / digest / name)),
    )
    task, _ = store.create_task("runway", status=TaskStatus.DRAFT)
    result = settings.results_dir / task.id / "result.mp4"
    result.parent.mkdir(parents=True)
    shutil.copyfile(clip, result)
    store.update_task(task.id, status=TaskStatus.SUCCEEDED, result_path=str(result))
    store.close()
    return {"media": published.removeprefix(app.url), "task": task.id}


def _assert_headers(response: httpx.Response) -> None:
    got = {name: response.headers.get(name) for name in EXPECTED}
    assert got == EXPECTED, (response.request.url, response.status_code, got)


def test_every_http_answer_carries_the_security_headers(
    app: AppServer, served: dict[str, str]
) -> None:
    page = httpx.get(app.url + "/", timeout=10)
    assert page.status_code == 200
    script = re.search(r'src="\.?/?(static/js/[^"]+\.js)"', page.text)
    assert script, page.text[:500]
    answers = {
        "/": 200,
        "/healthz": 200,
        "/_stcore/health": 200,
        "/_stcore/metrics": 200,  # no sign-in: Streamlit's own answer (loopback only)
        f"/{script.group(1)}": 200,
        served["media"]: 200,
        f"/files/{served['task']}/result.mp4": 200,
        f"/files/{served['task']}/result.mp4?download=1": 200,
        "/files/nosuchtask/result.mp4": 404,
        "/no/such/page/at/all.js": None,  # whatever Streamlit answers, headers included
    }
    for path, status in answers.items():
        r = httpx.get(app.url + path, timeout=10)
        if status is not None:
            assert r.status_code == status, (path, r.status_code, r.text[:200])
        _assert_headers(r)
    head = httpx.head(app.url + served["media"], timeout=10)
    _assert_headers(head)
    posted = httpx.post(app.url + "/hooks/runway/nosuchtask.secret", json={}, timeout=10)
    _assert_headers(posted)


def test_websockets_still_upgrade(app: AppServer) -> None:
    host, port = app.url.removeprefix("http://").split(":")
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (
        f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: streamlit\r\nOrigin: {app.url}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:200]


def test_nul_and_invalid_bytes_in_file_paths_are_404_without_a_traceback(
    app: AppServer, served: dict[str, str]
) -> None:
    digest = served["media"].split("/")[2]
    task = served["task"]
    log_before = len(app.log_text())
    for path in (
        f"/media/{digest}/clip%00.mp4",
        f"/media/{digest}/%00",
        f"/media/{digest}/clip.mp4%00.txt",
        f"/media/{digest}/%ff%fe.mp4",
        f"/media/{digest}/%C0%AE%C0%AE",  # overlong UTF-8 for ".."
        f"/files/{task}/result%00.mp4",
        f"/files/{task}%00/result.mp4",
        "/files/%ff/result.mp4",
        f"/files/{task}/%0d%0aSet-Cookie:%20x=1",
    ):
        r = httpx.get(app.url + path, timeout=10)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        _assert_headers(r)
        assert "set-cookie" not in r.headers
    # The same file without the bad byte is still served.
    assert httpx.get(app.url + served["media"], timeout=10).status_code == 200
    # Anything logged since is not a traceback (the server logs to this file).
    logged = app.log_text()[log_before:]
    assert "Traceback" not in logged and "ValueError" not in logged, logged[-2000:]


# ---- with sign-in configured ---------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_in_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The app with sign-in configured (an [auth] section, the way an operator turns it on).
    Nobody signs in here: only plain HTTP routes are asked, so no provider need answer."""
    data_dir = tmp_path_factory.mktemp("signed-in-home") / "data"
    data_dir.mkdir()
    metadata = f"http://127.0.0.1:{_free_port()}/.well-known/openid-configuration"
    server = start_app(data_dir, {}, sign_in_metadata_url=metadata)
    try:
        yield server
    finally:
        stop_app(server)


def test_metrics_are_not_answered_when_sign_in_is_configured(signed_in_app: AppServer) -> None:
    for method in ("GET", "HEAD", "OPTIONS"):
        for path in ("/_stcore/metrics", "/_stcore/metrics/", "/_stcore/metrics?families=x"):
            r = httpx.request(method, signed_in_app.url + path, timeout=10)
            assert r.status_code == 404, (method, path, r.status_code)
            assert "cache_" not in r.text and "session" not in r.text
            _assert_headers(r)
    health = httpx.get(signed_in_app.url + "/_stcore/health", timeout=10)
    assert health.status_code == 200
    _assert_headers(health)


def test_metrics_stay_available_without_sign_in(app: AppServer) -> None:
    r = httpx.get(app.url + "/_stcore/metrics", timeout=10)
    assert r.status_code == 200 and "# TYPE" in r.text
