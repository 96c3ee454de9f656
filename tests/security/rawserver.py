"""A loopback HTTP server that keeps every request head byte for byte, before any parsing:
what a header injection really put on the wire is visible here, not hidden by a parser."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class RawServer:
    def __init__(self, body: bytes = b"{}", *, status: str = "200 OK", headers: str = "") -> None:
        self.body = body
        self.status = status
        self.headers = headers  # extra "Name: value\r\n" lines
        self.heads: list[bytes] = []
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="raw-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def requests(self) -> list[bytes]:
        with self._lock:
            return list(self.heads)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        # One request per connection ("Connection: close"), so every head is complete here.
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data:
            return
        with self._lock:
            self.heads.append(data.split(b"\r\n\r\n", 1)[0])
        with contextlib.suppress(OSError):
            conn.sendall(
                f"HTTP/1.1 {self.status}\r\nContent-Type: application/json\r\n".encode()
                + f"{self.headers}Connection: close\r\n".encode()
                + f"Content-Length: {len(self.body)}\r\n\r\n".encode()
                + self.body
            )
