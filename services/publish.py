"""Links for providers that only take URLs: local files served by this app, and callbacks.

How a local file reaches a provider is one rule, `input_route`: a provider that takes files
itself (Runway's uploads or a data URI, the local engine) gets the file; a URL-only one gets a
presigned link from the S3 bucket when REENACT_S3_BUCKET is set (services/storage.py), else a
link under REENACT_PUBLIC_URL; with neither, `no_route_sentence` says what to set up.

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
from enum import StrEnum
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


class InputRoute(StrEnum):
    """How a provider gets a local file, in order of preference."""

    PROVIDER = "provider"  # it takes the file itself (uploads, a data URI, this machine)
    BUCKET = "bucket"  # a presigned link from the S3 bucket
    PUBLIC_URL = "public_url"  # a link this app serves under REENACT_PUBLIC_URL
    NONE = "none"  # only pasted links


def input_route(needs_urls: bool, settings: Settings) -> InputRoute:
    """The first route that satisfies a provider's input rules (`needs_urls`: links only)."""
    if not needs_urls:
        return InputRoute.PROVIDER
    if settings.s3 is not None:
        return InputRoute.BUCKET
    if settings.public_url:
        return InputRoute.PUBLIC_URL
    return InputRoute.NONE


def route_sentence(route: InputRoute, settings: Settings, provider_name: str) -> str:
    """What Settings says about a provider's route."""
    if route is InputRoute.PROVIDER:
        return f"{provider_name} takes your files directly; no link is needed."
    if route is InputRoute.BUCKET:
        assert settings.s3 is not None
        if settings.s3.public_base_url:
            return (
                f"Your files are uploaded to bucket {settings.s3.bucket} and {provider_name} "
                f"fetches them from {settings.s3.public_base_url} until its task ends."
            )
        hours = settings.s3.presign_expiry_s / 3600
        return (
            f"Your files are uploaded to bucket {settings.s3.bucket} and {provider_name} gets "
            f"a private link that expires after {hours:g} h."
        )
    if route is InputRoute.PUBLIC_URL:
        return f"{provider_name} fetches your files from this app at {settings.public_url}."
    return no_route_sentence(provider_name)


def no_route_sentence(provider_name: str) -> str:
    return (
        f"{provider_name} only accepts links: paste a URL for the video and image, or set "
        "REENACT_S3_BUCKET (with REENACT_S3_ENDPOINT_URL for R2 or MinIO, and "
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) so your uploads are handed over as "
        "private links, or REENACT_PUBLIC_URL so this app serves them."
    )


def link_for_file(path: Path, settings: Settings, *, provider_name: str = "This provider") -> str:
    """A link a URL-only provider can fetch for a local file, by `input_route`'s rule.

    Raises InputError (with what to do) when there is no route, StorageError when the bucket
    cannot take the file.
    """
    route = input_route(True, settings)
    if route is InputRoute.NONE:
        raise InputError(no_route_sentence(provider_name))
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The file was not found: {path}")
    if route is InputRoute.BUCKET:
        from services.storage import bucket_for

        bucket = bucket_for(settings)
        assert bucket is not None
        return bucket.input_link(path, settings)
    return public_url_for(path, settings)


def public_url_for(path: Path, settings: Settings) -> str:
    """A link to a local file under REENACT_PUBLIC_URL (served by /media/<sha256>/<name>)."""
    assert settings.public_url
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
