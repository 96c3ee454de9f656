"""The transport under every provider client: polls (bodiless GETs, and POSTs the HTTP base
marks idempotent) go through libcurl via pycurl, everything else through httpx's own
transport.

Why: the monitor asks every in-flight task for news once per interval — 1,000 tasks at 5 s
are 200 polls a second. httpx's default transport (httpcore + h11, pure Python) spends
~0.3 ms of CPU on each small loopback GET; libcurl ~0.1 ms (bench/RESULTS.md). Only
idempotent requests come here, so a connection lost mid-request is just an error the caller
may retry: the "was a create sent?" rules in services/http.py never depend on this module
(creates, uploads and cancels keep httpx's transport).

libcurl keeps its connections alive inside each easy handle. A handle serves one request at
a time, so requests borrow one from a small pool of idle handles (as many as ran at once, up
to `MAX_IDLE`); the threads that poll may come and go without leaving handles behind.

Proxies: services/netconf.py decides which proxy (if any) a URL goes through; each route gets
its own CurlPollTransport over an httpx transport built with the same proxy, and libcurl is
given that proxy explicitly (or told to use none), so a poll and a create to one provider
always take the same road.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import httpx

# A poll answer is a few hundred bytes; anything this large is not one.
MAX_BODY = 16 * 1024 * 1024
MAX_POLL_BODY = 64 * 1024  # a POST that is a poll (CometAPI's feed) sends a task id
# Set by services/http.py on requests that may be repeated (polls): a POST carrying it is a
# read (CometAPI polls with `POST /runway/feed`) and may take the libcurl path.
IDEMPOTENT = "reenact.idempotent"
MAX_IDLE = 16  # idle handles kept (with their open connections); the monitor uses up to 8


class CurlPollTransport(httpx.BaseTransport):
    """`proxy` must be the one `fallback` was built with: the proxy decision is made once
    (services/netconf.py) and given to both paths explicitly."""

    def __init__(
        self,
        fallback: httpx.BaseTransport,
        *,
        ca_file: str | None = None,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        import pycurl  # ~30 ms: paid when a client is first used, not by `reenact providers`

        self._pycurl = pycurl
        self._fallback = fallback
        self._ca_file = ca_file
        self._proxy = proxy
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        payload = self._payload(request)
        if payload is None or self._closed:
            return self._fallback.handle_request(request)
        _refuse_broken_headers(request)
        return self._send(request, payload)

    @staticmethod
    def _payload(request: httpx.Request) -> bytes | None:
        """The body to send when the request is a poll (b"" for none), or None when it
        belongs to httpx's transport."""
        bodiless = "content-length" not in request.headers and (
            "transfer-encoding" not in request.headers
        )
        if request.method == "GET" and bodiless:
            return b""
        if (
            request.method == "POST"
            and request.extensions.get(IDEMPOTENT)
            and isinstance(request.stream, httpx.ByteStream)
        ):
            body = request.read()
            return body if len(body) <= MAX_POLL_BODY else None
        return None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for handle in idle:
            handle.close()
        self._fallback.close()

    # ---- handles --------------------------------------------------------------------------
    def _borrow(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        pycurl = self._pycurl
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: threads are in use
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        # The proxy was chosen already, for this transport and its httpx fallback alike;
        # libcurl must not consult http_proxy/no_proxy itself (its reading differs from
        # httpx's: it ignores HTTP_PROXY, say), or polls and creates could take different
        # routes. "" means "no proxy" and "no exceptions", whatever the environment holds.
        handle.setopt(pycurl.NOPROXY, "")
        proxy = self._proxy
        if proxy is None:
            handle.setopt(pycurl.PROXY, "")
        else:
            handle.setopt(pycurl.PROXY, str(proxy.url))
            if proxy.auth is not None:
                handle.setopt(pycurl.PROXYUSERNAME, proxy.auth[0])
                handle.setopt(pycurl.PROXYPASSWORD, proxy.auth[1])
            if self._ca_file:
                handle.setopt(pycurl.PROXY_CAINFO, self._ca_file)  # an https:// proxy
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        if self._ca_file:
            handle.setopt(pycurl.CAINFO, self._ca_file)
        return handle

    def _give_back(self, handle: Any) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE:
                self._idle.append(handle)
                return
        handle.close()

    # ---- one poll -------------------------------------------------------------------------
    def _send(self, request: httpx.Request, payload: bytes) -> httpx.Response:
        pycurl = self._pycurl
        curl = self._borrow()
        if request.method == "POST":
            curl.setopt(pycurl.POSTFIELDS, payload)  # copied by pycurl; sets the method
        else:
            curl.setopt(pycurl.HTTPGET, 1)  # the handle may have posted last time
        # Plain buffers, not Python callbacks: no bytecode runs inside perform(), so a Ctrl-C
        # arrives as KeyboardInterrupt after it returns — a callback would have it raised
        # inside libcurl, where pycurl reports it as a failed transfer and it is lost.
        body, head = io.BytesIO(), io.BytesIO()
        timeout = request.extensions.get("timeout", {})
        curl.setopt(pycurl.URL, str(request.url))
        # httpx's headers exactly (incl. Content-Length and Content-Type for a body); an empty
        # "Expect:" keeps libcurl from asking for a 100-continue first.
        curl.setopt(
            pycurl.HTTPHEADER,
            [f"{k.decode('latin-1')}: {v.decode('latin-1')}" for k, v in request.headers.raw]
            + ["Expect:"],
        )
        curl.setopt(pycurl.WRITEDATA, body)
        curl.setopt(pycurl.WRITEHEADER, head)
        curl.setopt(pycurl.MAXFILESIZE_LARGE, MAX_BODY)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, _ms(timeout.get("connect")))
        # httpx's read timeout bounds each wait for data; a poll's answer is one small read,
        # so it bounds the whole exchange here (a trickling server cannot hold a poll forever).
        curl.setopt(pycurl.TIMEOUT_MS, _ms(timeout.get("read")))
        try:
            curl.perform()
            code = curl.getinfo(pycurl.RESPONSE_CODE)
        except pycurl.error as exc:
            raise self._error(exc, request) from exc
        finally:
            self._give_back(curl)
        return httpx.Response(
            code,
            headers=_final_headers(head.getvalue()),
            stream=httpx.ByteStream(body.getvalue()),
            extensions={"http_version": b"HTTP/1.1"},
            request=request,
        )

    def _error(self, exc: Any, request: httpx.Request) -> httpx.TransportError:
        pycurl = self._pycurl
        code = exc.args[0] if exc.args else 0
        message = str(exc.args[1]) if len(exc.args) > 1 else "transfer failed"
        if code == pycurl.E_FILESIZE_EXCEEDED:
            return httpx.ReadError(f"answer larger than {MAX_BODY} bytes", request=request)
        if code in (pycurl.E_UNSUPPORTED_PROTOCOL, pycurl.E_URL_MALFORMAT):
            return httpx.UnsupportedProtocol(message, request=request)
        if message.startswith("CONNECT tunnel failed"):
            # The proxy would not open the tunnel: nothing reached the provider (httpx's
            # path raises the same ProxyError).
            return httpx.ProxyError(message, request=request)
        if code == pycurl.E_OPERATION_TIMEDOUT:
            # libcurl words a timeout before the connection stood as "Connection/Resolving
            # timed out", one after it as "Operation timed out".
            if message.startswith(("Connection timed out", "Resolving timed out")):
                return httpx.ConnectTimeout(message, request=request)
            return httpx.ReadTimeout(message, request=request)
        connect_failures = {
            pycurl.E_COULDNT_RESOLVE_HOST,
            pycurl.E_COULDNT_RESOLVE_PROXY,
            pycurl.E_COULDNT_CONNECT,
            pycurl.E_SSL_CONNECT_ERROR,
            pycurl.E_PEER_FAILED_VERIFICATION,
        }
        if code in connect_failures:
            return httpx.ConnectError(message, request=request)
        if code in (pycurl.E_GOT_NOTHING, pycurl.E_PARTIAL_FILE):
            return httpx.RemoteProtocolError(message, request=request)
        return httpx.ReadError(message, request=request)


def _refuse_broken_headers(request: httpx.Request) -> None:
    """libcurl writes header lines as given: a CR or LF inside one would end it and start a
    header of the caller's choosing (a key pasted with a line break, say). h11 refuses such a
    header on httpx's own path; refuse it here the same way, before anything is sent."""
    for name, value in request.headers.raw:
        if any(c in name or c in value for c in (b"\r", b"\n", b"\0")):
            raise httpx.LocalProtocolError(
                f"Illegal header value for {name.decode('latin-1')!r}", request=request
            )


def _final_headers(raw: bytes) -> list[tuple[bytes, bytes]]:
    """The last response's header lines (after any 1xx), as (name, value) pairs."""
    headers: list[tuple[bytes, bytes]] = []
    for line in raw.split(b"\r\n"):
        if line.startswith(b"HTTP/"):
            headers.clear()
            continue
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return headers


def _ms(seconds: float | None) -> int:
    """libcurl's milliseconds; 0 means no limit there, as None does in httpx."""
    return 0 if seconds is None else max(1, int(seconds * 1000))
