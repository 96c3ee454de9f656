"""Archiving a finished task's result into the data dir, so expiring provider links never
matter: `results/<task_id>/result.mp4`, written through a `.part` file and renamed atomically.

HTTP(S) results are streamed by `services.fetch.download` (size and type checked, retries,
expired links → a sentence). The local engine hands over a `file://` URI instead: that file is
copied, and only from inside the data dir, so a task row can never make the app read (and then
serve) an arbitrary file on this machine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from services.config import Settings
from services.errors import (
    DiskFullError,
    ErrorKind,
    InputError,
    ProviderError,
    ensure_free_space,
    is_disk_full,
)
from services.links import is_web_link

RESULT_NAME = "result.mp4"
# Act-Two outputs are at most 30 s; a generous cap still stops a runaway or hostile answer.
MAX_RESULT_BYTES = 2 * 1024 * 1024 * 1024


def result_dest(settings: Settings, task_id: str) -> Path:
    return settings.results_dir / task_id / RESULT_NAME


def fetch_result(url: str, task_id: str, settings: Settings) -> Path:
    """Put the result behind `url` at `result_dest(...)` and return that path.

    Raises ProviderError (retryable or not — an expired link is NOT_FOUND and not retryable),
    InputError (a web page or garbage instead of a video) or DiskFullError (no room: nothing
    is left behind, and it works once space is freed) with the sentence to show.
    """
    dest = result_dest(settings, task_id)
    if url.lower().startswith("file:"):
        return _copy_local(url, dest, settings)
    if not is_web_link(url):
        raise InputError(f"The provider gave a result link this app cannot fetch: {url[:80]}")
    from services.fetch import download  # httpx only when there is something to download

    return download(url, dest, settings, max_bytes=MAX_RESULT_BYTES, expect="video")


def _copy_local(url: str, dest: Path, settings: Settings) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InputError("The result is a file on another machine; it cannot be archived.")
    source = Path(url2pathname(unquote(parts.path)))
    # Only the local engine's work area: a remote provider answering with file:// must not be
    # able to make this app "archive" someone's upload or the database.
    root = settings.work_dir.resolve()
    try:
        real = source.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ProviderError(
            ErrorKind.NOT_FOUND,
            "The local engine's output file is gone, so the result cannot be archived. "
            "Run the task again.",
        ) from exc
    if not real.is_relative_to(root) or not real.is_file():
        raise InputError(
            "The result file is outside the local engine's work folder (outside the data "
            "folder's work area), so it was not archived."
        )
    from services.media.sniff import SNIFF_BYTES, sniff

    with real.open("rb") as fh:
        found = sniff(fh.read(SNIFF_BYTES))
    if found.kind != "video":
        raise InputError(f"The local engine's output is {found.describe()}, not a video.")
    size = real.stat().st_size
    if size > MAX_RESULT_BYTES:
        raise InputError("The local engine's output is too large to archive.")
    part = dest.with_suffix(".part")
    try:
        ensure_free_space(dest.parent, size)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with real.open("rb") as src, part.open("wb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, dest)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError() from exc
        raise
    finally:
        part.unlink(missing_ok=True)
    return dest
