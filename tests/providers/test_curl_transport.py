"""The libcurl transport under the provider clients, against a real loopback server: what
httpx's own transport would have returned, for the polls it takes; everything else is
left to httpx's transport."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services import curl_transport
from services.curl_transport import IDEMPOTENT, CurlPollTransport


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes; no 40 ms ACK stall
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.seen.append(("GET", url.path, dict(self.headers)))
        self.server.client_ports.add(self.client_address[1])
        if url.path == "/json":
            body = json.dumps({"n": query.get("n"), "auth": self.headers["Authorization"]})
            self._send(200, body.encode(), ("Content-Type", "application/json"))
        elif url.path == "/cookies":
            self._send(200, b"{}", ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"))
        elif url.path == "/gzip":
            self._send(200, gzip.compress(b'{"zipped": true}'), ("Content-Encoding", "gzip"))
        elif url.path == "/close":
            self.close_connection = True
            self._send(200, b'{"closed": true}', ("Connection", "close"))
        elif url.path == "/big":
            self._send(200, b"x" * int(query["size"]))
        elif url.path == "/slow":
            time.sleep(float(query["s"]))
            self._send(200, b"{}")
        else:
            self._send(404, b'{"error": "no such thing"}')

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(("POST", self.path, dict(self.headers)))
        self._send(201, body, ("Content-Type", "application/json"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.client_ports: set[int] = set()  # one per TCP connection the client opened

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up on an oversized answer is what one test wants


class _CountingTransport(httpx.HTTPTransport):
    """httpx's own transport, counting what it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.handled: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.handled.append(request.method)
        return super().handle_request(request)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def fallback() -> _CountingTransport:
    return _CountingTransport()


@pytest.fixture
def client(server: _Server, fallback: _CountingTransport) -> Iterator[httpx.Client]:
    host, port = server.server_address[:2]
    with httpx.Client(
        base_url=f"http://{host}:{port}",
        transport=CurlPollTransport(fallback),
        headers={"Authorization": "Bearer k-123"},
        timeout=httpx.Timeout(2.0),
    ) as c:
        yield c


def test_a_get_answers_like_httpx_and_never_touches_the_fallback(
    client: httpx.Client, server: _Server, fallback: _CountingTransport
) -> None:
    response = client.get("/json", params={"n": "7"})
    assert response.status_code == 200
    assert response.json() == {"n": "7", "auth": "Bearer k-123"}
    assert response.headers["content-type"] == "application/json"
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no such thing"}
    assert fallback.handled == []
    # The request's own headers went out once each (libcurl added no second Accept).
    _, _, headers = server.seen[0]
    assert headers["Authorization"] == "Bearer k-123"
    assert headers["Accept"] == "*/*"  # httpx's default, not a curl addition


def test_requests_with_a_body_go_through_httpx(
    client: httpx.Client, server: _Server, fallback: _CountingTransport
) -> None:
    response = client.post("/create", json={"prompt": "wave"})
    assert response.status_code == 201
    assert response.json() == {"prompt": "wave"}
    assert fallback.handled == ["POST"]


def test_repeated_headers_and_compressed_bodies_survive(client: httpx.Client) -> None:
    cookies = client.get("/cookies")
    assert cookies.headers.get_list("set-cookie") == ["a=1", "b=2"]
    zipped = client.get("/gzip")
    assert zipped.json() == {"zipped": True}


def test_a_server_closing_the_connection_between_polls_costs_nothing(
    client: httpx.Client,
) -> None:
    for _ in range(3):
        assert client.get("/close").json() == {"closed": True}
        assert client.get("/json", params={"n": "1"}).status_code == 200


def test_an_oversized_answer_is_a_read_error(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curl_transport, "MAX_BODY", 10_000)
    assert len(client.get("/big", params={"size": "9000"}).content) == 9000
    with pytest.raises(httpx.ReadError, match="larger than"):
        client.get("/big", params={"size": "50000"})


def test_a_slow_answer_is_a_read_timeout(client: httpx.Client) -> None:
    with pytest.raises(httpx.ReadTimeout):
        client.get("/slow", params={"s": "1.0"}, timeout=httpx.Timeout(2.0, read=0.2))
    # The handle is still good afterwards.
    assert client.get("/json", params={"n": "2"}).json()["n"] == "2"


def test_a_closed_port_is_a_connect_error(fallback: _CountingTransport) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once it is closed
    with (
        httpx.Client(transport=CurlPollTransport(fallback), timeout=2.0) as c,
        pytest.raises(httpx.ConnectError),
    ):
        c.get(f"http://127.0.0.1:{port}/json")


def test_polling_threads_each_get_their_own_answers(client: httpx.Client) -> None:
    def poll(n: int) -> str | None:
        return client.get("/json", params={"n": str(n)}).json()["n"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(poll, range(200)))
    assert answers == [str(n) for n in range(200)]


def test_threads_that_come_and_go_reuse_one_connection(
    client: httpx.Client, server: _Server
) -> None:
    """A Streamlit page runs each rerun on a new thread: its occasional GETs must not leave a
    handle (and an open connection) behind per thread."""
    answers: list[str | None] = []
    for n in range(20):
        thread = threading.Thread(
            target=lambda n=n: answers.append(client.get("/json", params={"n": n}).json()["n"])
        )
        thread.start()
        thread.join()
    assert answers == [str(n) for n in range(20)]
    assert len(server.client_ports) == 1


class _Interrupted(Exception):
    pass


def test_a_signal_during_a_poll_reaches_the_caller(
    client: httpx.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while `reenact ... --wait` polls: the interrupt must surface (exit 3), not be
    raised inside libcurl, swallowed as a failed transfer and printed as a traceback."""

    def interrupt(*_: object) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)  # arrives while the answer is awaited
        with pytest.raises(_Interrupted):
            client.get("/slow", params={"s": "0.5"})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert "Traceback" not in capfd.readouterr().err


def test_a_poll_sent_as_a_post_takes_libcurl_only_when_marked_idempotent(
    client: httpx.Client, server: _Server, fallback: _CountingTransport
) -> None:
    marked = client.post("/feed", json={"task_id": "t-1"}, extensions={IDEMPOTENT: True})
    assert marked.status_code == 201
    assert marked.json() == {"task_id": "t-1"}
    assert fallback.handled == []
    method, _, headers = server.seen[-1]
    assert method == "POST"
    assert headers["Content-Type"] == "application/json"
    assert "Expect" not in headers
    # The same handle goes back to GET afterwards.
    assert client.get("/json", params={"n": "3"}).json()["n"] == "3"
    assert server.seen[-1][0] == "GET"
    # A create is never marked: httpx's transport sends it.
    client.post("/create", json={"prompt": "wave"})
    assert fallback.handled == ["POST"]
