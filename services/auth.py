"""Owners: who a signed-in person is to the store, and who may see everyone's work.

A task, run (and so its votes) belongs to the signed-in user who made it — their e-mail
address, lowercased (the OpenID subject when the provider gives no e-mail) — or to "local":
the operator on this machine, the CLI, and everything made without sign-in. Admins, listed
in `REENACT_ADMIN_EMAILS` (comma-separated; environment or secrets.toml), see everyone's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from services.config import load_secrets

MAX_OWNER_LEN = 320  # the longest e-mail address


def owner_of(user: Mapping[str, object]) -> str | None:
    """The owner id for a signed-in user's claims (None when they carry no usable id)."""
    for claim in ("email", "sub"):
        value = user.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()[:MAX_OWNER_LEN]
    return None


def admin_emails() -> frozenset[str]:
    raw = os.environ.get("REENACT_ADMIN_EMAILS") or load_secrets().get("REENACT_ADMIN_EMAILS")
    if not raw:
        return frozenset()
    parts = raw if isinstance(raw, list) else str(raw).split(",")
    return frozenset(str(p).strip().lower() for p in parts if str(p).strip())
