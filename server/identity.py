"""Who is asking, for the plain HTTP routes (files, a run's driving clip, exports).

With sign-in configured (`[auth]` in .streamlit/secrets.toml), Streamlit keeps the signed-in
user in a cookie it signs itself; the routes read it with Streamlit's own helpers, so a file
link works exactly for the person whose page made it. Without sign-in the app is the single
local operator's (and listens on 127.0.0.1 only).

These helpers are Streamlit internals; tests/security/test_sign_in.py fails loudly if they
move, rather than letting the routes silently stop checking.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from starlette.requests import Request

log = logging.getLogger("reenact.identity")


@dataclass(frozen=True)
class Requester:
    owner: str | None  # None: not signed in (when sign-in is on)
    admin: bool = False

    def may_see(self, owner: str) -> bool:
        return self.admin or (self.owner is not None and self.owner == owner)


def sign_in_configured() -> bool:
    from streamlit.auth_util import get_secrets_auth_section

    return bool(get_secrets_auth_section())


def requester(request: Request) -> Requester:
    if not sign_in_configured():
        from services.models import LOCAL_OWNER

        return Requester(owner=LOCAL_OWNER, admin=True)
    user = _cookie_user(request)
    if user is None:
        return Requester(owner=None)
    from services.auth import admin_emails, owner_of

    owner = owner_of(user)
    return Requester(owner=owner, admin=owner is not None and owner in admin_emails())


def _cookie_user(request: Request) -> dict[str, object] | None:
    from streamlit.auth_util import get_cookie_with_chunks
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value
    from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

    secret = get_cookie_secret()

    def single(name: str) -> bytes | None:
        raw = request.cookies.get(name)
        if raw is None:
            return None
        return decode_signed_value(secret, name, raw.encode("latin-1"))

    try:
        decoded = get_cookie_with_chunks(single, USER_COOKIE_NAME)
        payload = json.loads(decoded.decode("utf-8")) if decoded else None
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict) or not payload.get("is_logged_in"):
        return None
    # Streamlit binds the cookie to the site that set it (the redirect URI's origin).
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if payload.get("origin") not in (None, origin):
        return None
    return payload
