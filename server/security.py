"""Outermost middleware: what every HTTP answer carries, and what is never answered.

- Every HTTP response gets `X-Content-Type-Options: nosniff` (an upload is never run as a
  script or page because of its bytes), `Content-Security-Policy: frame-ancestors 'self'` (no
  other site can frame the studio and trick a click on Submit or Delete) and
  `Referrer-Policy: same-origin` (task and run ids in URLs do not leak to other sites). The
  policy is only frame-ancestors: Streamlit's pages need inline scripts and styles.
- A path whose bytes are not valid UTF-8 or hold a NUL or another control character names
  no file and no page: 404, before any route turns it into a file name.
- With sign-in configured the studio is exposed to others, so Streamlit's `/_stcore/metrics`
  (sessions, memory, cache use) is not answered at all — not even to loopback, which is where
  a reverse proxy's requests come from.

Websockets and the lifespan pass through untouched.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.identity import sign_in_configured

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "frame-ancestors 'self'",
    "Referrer-Policy": "same-origin",
}
METRICS_SUFFIX = "/_stcore/metrics"


def readable_path(scope: Scope) -> bool:
    """Whether the request path, percent-decoded, is UTF-8 without control characters."""
    raw = scope.get("raw_path")
    try:
        text = unquote_to_bytes(raw).decode("utf-8") if raw else str(scope.get("path", ""))
    except UnicodeDecodeError:
        return False
    return not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text)


def _hidden_metrics(path: str) -> bool:
    return path.rstrip("/").endswith(METRICS_SUFFIX) and sign_in_configured()


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name == "Content-Security-Policy" and name in headers:
                        if "frame-ancestors" not in headers[name]:
                            headers.append(name, value)  # policies add up: both apply
                    elif name not in headers:
                        headers[name] = value
            await send(message)

        if not readable_path(scope) or _hidden_metrics(scope.get("path", "")):
            response = PlainTextResponse("Not Found", status_code=404)
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
