"""What uploads may cost and how long they stay: a quota per owner (bytes and files), a file
the checks cannot read is deleted at once, and an upload no task uses is deleted after the
retention period (the monitor sweeps hourly). Uploads live as uploads/<sha256>/<name>
(components/uploads.py); the `uploads` table says whose they are."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from services.config import Settings
from services.errors import InputError
from services.store import Store

log = logging.getLogger("reenact.uploads")

_DIGEST_LEN = 64
# Leftovers of an upload or fetch that died mid-way (".upload-….part", ".ingest-….part").
_PART_MAX_AGE_S = 24 * 3600


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def check_quota(store: Store, settings: Settings, owner: str, size_bytes: int) -> None:
    """Refuse (a sentence) a new upload of `size_bytes` that would cross `owner`'s quota."""
    used, files = store.upload_usage(owner)
    if files + 1 > settings.upload_quota_files:
        raise InputError(
            f"You have {files} uploads, the most this studio keeps per person: delete tasks "
            "you no longer need (their unused uploads are removed after "
            f"{settings.upload_retention_days:g} days) or ask the operator for more room."
        )
    if used + size_bytes > settings.upload_quota_bytes:
        left = max(0, settings.upload_quota_bytes - used)
        raise InputError(
            f"This file ({_human(size_bytes)}) does not fit in your upload space: "
            f"{_human(left)} of {_human(settings.upload_quota_bytes)} is left. Delete tasks "
            "you no longer need, or ask the operator for more room."
        )


def remember(store: Store, owner: str, path: Path) -> None:
    """Count a stored upload (uploads/<digest>/<name>) against its owner."""
    try:
        size = path.stat().st_size
    except OSError:
        return
    store.record_upload(owner, str(path), path.parent.name, size)


def discard(store: Store, settings: Settings, path: Path) -> None:
    """Delete an upload the checks refused — unless a task already uses the same file."""
    folder = path.parent
    if folder.parent != settings.uploads_dir or len(folder.name) != _DIGEST_LEN:
        return
    if store.upload_referenced(folder.name):
        return
    shutil.rmtree(folder, ignore_errors=True)
    store.forget_upload(folder.name)


def sweep(store: Store, settings: Settings) -> int:
    """Delete uploads no task uses that are older than the retention period, fixes' work
    files as old, and day-old partial files. Returns how many uploads went."""
    root = settings.uploads_dir
    if not root.is_dir():
        return 0
    cutoff = time.time() - settings.upload_retention_days * 86400
    part_cutoff = time.time() - _PART_MAX_AGE_S
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.is_dir() and len(entry.name) == _DIGEST_LEN and entry.name.isalnum():
                if _last_used(store, entry) < cutoff and not store.upload_referenced(entry.name):
                    shutil.rmtree(entry, ignore_errors=True)
                    store.forget_upload(entry.name)
                    removed += 1
            elif entry.name == "fixed" and entry.is_dir():
                for made in entry.iterdir():
                    if made.is_file() and made.stat().st_mtime < cutoff:
                        made.unlink(missing_ok=True)
            elif entry.suffix == ".part" and entry.stat().st_mtime < part_cutoff:
                entry.unlink(missing_ok=True)
        except OSError:
            log.info("Could not clean up %s; trying again at the next sweep", entry.name)
    if removed:
        days = settings.upload_retention_days
        log.info("Removed %d upload(s) no task used for %g days", removed, days)
    return removed


def _last_used(store: Store, folder: Path) -> float:
    """When the upload was last stored or chosen (its newest owner record, else its files)."""
    newest = store.upload_last_used(folder.name)
    if newest is not None:
        return newest.timestamp()
    return max((f.stat().st_mtime for f in folder.iterdir()), default=folder.stat().st_mtime)
