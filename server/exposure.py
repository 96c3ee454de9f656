"""Without sign-in the studio is one person's, on this computer: any request that does not
come from this machine is refused with a sentence. Published inputs (/media/…, fetched by
URL-only providers) and provider callbacks (/hooks/…) stay reachable: they are how providers
talk to a deployment that has a public address, and neither reveals or changes anything
beyond what it was made for.

Exposing the studio to others is a choice: configure sign-in (README, "Deploying it for
others"), then listen on another address (`make run HOST=0.0.0.0`).
"""

from __future__ import annotations

import ipaddress

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.identity import sign_in_configured

PUBLIC_PREFIXES = ("/media/", "/hooks/", "/healthz")
REFUSED = (
    "This studio has no sign-in configured, so it only answers the computer it runs on. "
    "To share it, set up sign-in first (README: Deploying it for others)."
)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class LocalOnlyWithoutSignIn:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            path = scope.get("path", "")
            if (
                not _loopback(client[0] if client else None)
                and not path.startswith(PUBLIC_PREFIXES)
                and not sign_in_configured()
            ):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await PlainTextResponse(REFUSED, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
