"""A small forward proxy on 127.0.0.1 for the proxy tests, recording every request it gets.

Absolute-URI requests (`GET http://127.0.0.1:8000/x HTTP/1.1`, how a client sends a plain-http
request through a proxy) are forwarded; `CONNECT host:port` opens a tunnel (how an https
request goes through one). It only ever dials 127.0.0.1: a request for any other host is
recorded and answered 403 without a connection, so a test can never reach further than this
machine, whatever a client under test gets wrong.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Only these names are dialled, and only as 127.0.0.1.
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})
# Headers about one connection, not the request: never passed on (RFC 9110 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


@dataclass(frozen=True)
class Seen:
    """One request the proxy received: `target` is the absolute URI, or host:port for CONNECT."""

    method: str
    target: str
    headers: dict[str, str]
    client_port: int
    refused: bool


@dataclass
class _State:
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def handle(self) -> None:
        # A client that hangs up between requests is not news.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def _record(self, refused: bool) -> None:
        seen = Seen(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            self.client_address[1],
            refused,
        )
        with self.server.state.lock:
            self.server.state.seen.append(seen)

    def _refuse(self, why: str) -> None:
        self._record(refused=True)
        body = why.encode()
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        if host.strip("[]") not in _LOOPBACK_NAMES or not port.isdigit():
            self._refuse("this test proxy only tunnels to 127.0.0.1")
            return
        self._record(refused=False)
        try:
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        except OSError:
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with upstream:
            _pipe(self.connection, upstream)

    def _forward(self) -> None:
        url = urlsplit(self.path)
        if url.scheme != "http" or (url.hostname or "") not in _LOOPBACK_NAMES:
            self._refuse("this test proxy only forwards plain http to 127.0.0.1")
            return
        self._record(refused=False)
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", url.port or 80, timeout=30)
        try:
            path = url.path or "/"
            upstream.request(
                self.command, f"{path}?{url.query}" if url.query else path, body, headers
            )
            answer = upstream.getresponse()
            data = answer.read()
        except OSError:
            self.send_response(502)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        finally:
            upstream.close()
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

    def _body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    while True:
        readable, _, broken = select.select(sockets, [], sockets, 30)
        if broken or not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if sock is a else a).sendall(data)


class ForwardProxy:
    """`with ForwardProxy() as proxy:` → `proxy.url`, and `proxy.seen` afterwards."""

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ForwardProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.state = self._state
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start the proxy first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def seen(self) -> list[Seen]:
        with self._state.lock:
            return list(self._state.seen)

    def targets(self) -> list[str]:
        return [f"{s.method} {s.target}" for s in self.seen]

    def clear(self) -> None:
        with self._state.lock:
            self._state.seen.clear()
