"""Fixtures for the media, fetch and netguard tests: generated media and a loopback server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services.config import ProviderSettings, Settings
from tests import mediagen


def make_settings(data_dir: Path, *, allow_private: bool) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'reenact.db'}",
        allow_private_urls=allow_private,
        providers={"local": ProviderSettings(key_variable="")},
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Loopback allowed: the test server lives on 127.0.0.1."""
    return make_settings(tmp_path / "data", allow_private=True)


@pytest.fixture
def strict_settings(tmp_path: Path) -> Settings:
    """The production default: private addresses refused."""
    return make_settings(tmp_path / "data", allow_private=False)


# ------------------------------------------------------------------ loopback HTTP server


@dataclass
class Route:
    status: int = 200
    body: bytes | Callable[[], bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Answers served in order before settling on this route's own answer (e.g. 503, 503, 200).
    before: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    send_length: bool = True  # False: no Content-Length, the body ends when the socket closes
    delay_s: float = 0.0  # stall before the body (for timeout tests)


class MediaServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        # Set at close so a stalled handler ends at once instead of sleeping out its delay.
        self.stalled = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                path = self.path
                with server._lock:
                    server.hits[path] = server.hits.get(path, 0) + 1
                    route = server.routes.get(path)
                    staged = route.before.pop(0) if route and route.before else None
                if route is None:
                    status, headers, body = 404, {"Content-Type": "text/html"}, b"<h1>nope</h1>"
                elif staged is not None:
                    status, headers, body = staged
                else:
                    body = route.body() if callable(route.body) else route.body
                    status, headers = route.status, route.headers
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if route is not None and not route.send_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                elif "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if route is not None and route.delay_s and staged is None:
                        server.stalled.wait(route.delay_s)
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on purpose (size cap)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, **kwargs: object) -> str:
        self.routes[path] = Route(**kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def close(self) -> None:
        self.stalled.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[MediaServer]:
    srv = MediaServer()
    yield srv
    srv.close()


# ------------------------------------------------------------------ generated media


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def media(media_dir: Path) -> dict[str, Path]:
    """Every clip and still the media tests need, generated once per session (~1 s)."""
    d = media_dir
    v = mediagen.make_video
    i = mediagen.make_image
    return {
        "v16x9": v(d / "v16x9.mp4", size=(320, 180), seconds=4.0, audio=True),
        "v16x9_silent": v(d / "v16x9_silent.mp4", size=(320, 180), seconds=4.0),
        "v9x16": v(d / "v9x16.mp4", size=(180, 320), seconds=4.0, audio=True),
        "v4x3": v(d / "v4x3.mp4", size=(240, 180), seconds=4.0, face_pos=(0.35, 0.5)),
        "phone": v(d / "phone.mp4", size=(180, 320), seconds=4.0, rotation=90),
        "short2s": v(d / "short2s.mp4", size=(320, 180), seconds=2.0),
        "long45s": v(d / "long45s.mp4", size=(320, 180), seconds=45.0, audio=True),
        "noface": v(d / "noface.mp4", size=(320, 180), seconds=4.0, face=False),
        "twofaces": v(d / "twofaces.mp4", size=(320, 180), seconds=4.0, faces=2, face_scale=0.6),
        # At 1280x720 the face is ~8% of the height: too small to see at analysis size.
        "tinyface": v(
            d / "tinyface.mp4", size=(1280, 720), seconds=2.0, face_scale=0.2, face_pos=(0.3, 0.4)
        ),
        "mpeg4": v(d / "mpeg4.mp4", size=(320, 180), seconds=3.0, codec="mpeg4"),
        "vp9": v(d / "vp9.webm", size=(320, 180), seconds=3.0, codec="libvpx-vp9"),
        "cut": v(d / "cut.mp4", size=(320, 180), seconds=6.0, cut_at=3.0),
        "i16x9": i(d / "i16x9.png", size=(640, 360)),
        "i4x3": i(d / "i4x3.jpg", size=(480, 360), face_pos=(0.4, 0.5)),
        "i9x16_exif": i(d / "i9x16_exif.jpg", size=(360, 640), exif_orientation=6),
        "i_noface": i(d / "i_noface.png", size=(640, 360), face=False),
        "i_twofaces": i(d / "i_twofaces.png", size=(640, 360), faces=2, face_scale=0.6),
    }


@pytest.fixture(scope="session")
def weird_clip(media_dir: Path) -> Path:
    return mediagen.make_weird_name_clip(media_dir / "weird")


@pytest.fixture(scope="session")
def bad_files(media_dir: Path) -> dict[str, Path]:
    return mediagen.make_bad_corpus(media_dir / "bad")
