"""Links for providers that only take URLs: local files served by this app, and callbacks.

A published file lives at `uploads/<sha256>/<safe name>` and is served by the app at
`{REENACT_PUBLIC_URL}/media/<sha256>/<safe name>` (server/routes.py). Content addressing
makes the link stable and safe to hand out: the same bytes always get the same URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

from services.config import Settings
from services.errors import InputError

# Hosts under `.invalid` can never resolve (RFC 2606): results are never posted to a stranger.
INVALID_CALLBACK_BASE = "https://callbacks.reenact.invalid/hooks"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    stem, dot, ext = Path(name).name.rpartition(".")
    if not dot:
        stem, ext = ext, ""
    stem = _UNSAFE.sub("-", stem).strip(".-")[:100] or "file"
    ext = _UNSAFE.sub("", ext)[:10].lower()
    return f"{stem}.{ext}" if ext else stem


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def public_url_for(path: Path, settings: Settings, *, provider_name: str = "This provider") -> str:
    """A public link to a local file, for a provider that only accepts links.

    Raises InputError (with what to do) when this app has no public address to serve from.
    """
    if not settings.public_url:
        raise InputError(
            f"{provider_name} only accepts links: paste a URL for the video and image, or set "
            "REENACT_PUBLIC_URL so this app can serve your uploads."
        )
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The file was not found: {path}")
    digest = sha256_of(path)
    name = safe_name(path.name)
    folder = settings.uploads_dir / digest
    target = folder / name
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        # Link or copy under a temporary name, then rename: a reader never sees half a file.
        tmp = folder / f".{uuid.uuid4().hex}.part"
        try:
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    base = settings.public_url.rstrip("/")
    return f"{base}/media/{digest}/{quote(name)}"


def new_hook_secret() -> str:
    """A task's callback secret: the hook URL carries it, so only the provider that was given
    the URL can nudge the task (server/routes.py compares it in constant time)."""
    import secrets

    return secrets.token_urlsafe(24)


def callback_url_for(provider_id: str, token: str, settings: Settings) -> str:
    """Where a provider may POST its result: this app's hook route, or a `.invalid` address
    that goes nowhere when the app has no public URL (polling still finds the result).
    `token` is "<task id>.<hook secret>"."""
    tail = f"{quote(provider_id, safe='')}/{quote(token, safe='')}"
    if settings.public_url:
        return f"{settings.public_url.rstrip('/')}/hooks/{tail}"
    return f"{INVALID_CALLBACK_BASE}/{tail}"
