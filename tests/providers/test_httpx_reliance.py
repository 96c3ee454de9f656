"""What we still rely on in httpx beyond the calls its documentation promises, each checked so
that an httpx change fails here, loudly, instead of quietly costing time or correctness:

* `services.cli._skip_httpx_cli` stands in for `httpx._main` (httpx's own command line);
* `services.http._Client` overrides the public `Client.cookies` property, and counts on httpx
  reading the jar through it for every response.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.http import HttpClient, _Cookies

ROOT = Path(__file__).resolve().parents[2]


def _imports(code: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def test_httpx_still_imports_its_command_line_from_httpx_main() -> None:
    """Without the stand-in, `import httpx` tries `httpx._main`, which loads click (and here
    fails on the missing rich, after paying for click and pygments). If httpx stops trying,
    the stand-in is dead code; if it imports its CLI from elsewhere, the stand-in no longer
    stands in for it. Either way it must change."""
    report = "import json, sys; print(json.dumps('click' in sys.modules))"
    assert _imports(f"import httpx; {report}") is True, (
        "httpx no longer imports its command line: remove _skip_httpx_cli from "
        "services/cli.py and the <0.29 pin on httpx in pyproject.toml"
    )
    stubbed = _imports(
        "from services.cli import _skip_httpx_cli; _skip_httpx_cli(); import httpx, sys; "
        "assert httpx.main is sys.modules['httpx._main'].main; " + report
    )
    assert stubbed is False, "httpx imports its command line from somewhere else now"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.cookie_headers.append(self.headers.get("Cookie"))  # type: ignore[attr-defined]
        self.send_response(200)
        if self.path == "/set":
            self.send_header("Set-Cookie", "session=abc; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.cookie_headers = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_answers_without_cookies_skip_urllibs_adaptation_and_cookies_are_still_kept(
    server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapted: list[str] = []
    original = urllib.request.Request.__init__

    def counting(self: urllib.request.Request, *args: Any, **kwargs: Any) -> None:
        adapted.append(str(kwargs.get("url", args[0] if args else "")))
        original(self, *args, **kwargs)

    # httpx adapts a response for urllib's cookie jar by building a urllib Request.
    monkeypatch.setattr(urllib.request.Request, "__init__", counting)
    port = server.server_address[1]
    http = HttpClient(
        provider_id="emu",
        provider_name="Emu",
        base_url=f"http://127.0.0.1:{port}",
        api_key=None,
    )
    try:
        for _ in range(3):
            http.call("GET", "/plain", idempotent=True)
        assert adapted == [], "httpx no longer reads its jar through Client.cookies"
        http.call("GET", "/set", idempotent=True)
        assert adapted, "a Set-Cookie answer must still reach the jar"
        assert http.client.cookies.get("session") == "abc"
        http.call("GET", "/plain", idempotent=True)
    finally:
        http.close()
    assert server.cookie_headers[-1] == "session=abc"  # type: ignore[attr-defined]


def test_a_jar_set_through_the_public_property_keeps_the_saving() -> None:
    http = HttpClient(provider_id="emu", provider_name="Emu", base_url="http://x", api_key=None)
    try:
        http.client.cookies = httpx.Cookies({"a": "1"})
        assert http.client.cookies.get("a") == "1"
        assert type(http.client.cookies) is _Cookies
    finally:
        http.close()
