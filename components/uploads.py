"""Uploaded files go to the data dir, chunk by chunk, and leave the session.

Streamlit keeps an UploadedFile in memory for as long as its widget holds it; the caller
copies it here and then gives the widget a new key, which lets Streamlit drop the bytes.
A file is stored as `uploads/<sha256>/<name>` — the layout `services.publish` serves from —
so the same clip uploaded twice is stored once, keeps its own name in every check sentence,
and needs no second copy when a link-only provider is handed a public URL.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from services.errors import DISK_FULL_UPLOAD, DiskFullError, ensure_free_space, is_disk_full
from services.publish import safe_name, sha256_of

CHUNK = 1024 * 1024


@contextmanager
def _disk_full_sentence() -> Iterator[None]:
    """ENOSPC/EDQUOT while storing a file becomes the sentence, not an OSError."""
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(DISK_FULL_UPLOAD) from exc
        raise


def save_stream(source: BinaryIO, filename: str, folder: Path) -> Path:
    """Store an upload; no room → DiskFullError, with nothing partial left behind."""
    tmp = folder / f".upload-{uuid.uuid4().hex}.part"
    hasher = hashlib.sha256()
    with _disk_full_sentence():
        try:
            size = source.seek(0, os.SEEK_END)
            source.seek(0)
            ensure_free_space(folder, size, DISK_FULL_UPLOAD)
            folder.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as out:
                while chunk := source.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            return _place(tmp, folder / hasher.hexdigest() / safe_name(filename))
        finally:
            tmp.unlink(missing_ok=True)


def named_link(stored: Path, filename: str, folder: Path) -> Path:
    """Give a fetched file (stored by content hash) its own name, without copying bytes."""
    target = folder / sha256_of(stored) / safe_name(filename)
    if target.is_file():
        return target
    tmp = folder / f".link-{uuid.uuid4().hex}.part"
    with _disk_full_sentence():
        try:
            try:
                os.link(stored, tmp)
            except OSError:
                shutil.copyfile(stored, tmp)
            return _place(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def _place(tmp: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file():
        os.replace(tmp, target)
    return target


def display_name(filename: str, limit: int = 48) -> str:
    name = Path(filename).name or "file"
    return name if len(name) <= limit else name[: limit - 1] + "…"


def release_memory(uploaded: object) -> None:
    """Drop the server's in-memory copy of an upload once it is on disk. Streamlit keeps every
    uploaded file's bytes for the session until the browser deletes it, which a widget that
    is simply replaced never does (a 300 MB upload stayed ~410 MB of RSS); then freed heap is
    handed back to the system (glibc keeps freed arenas mapped)."""
    import ctypes
    import ctypes.util

    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    file_id = getattr(uploaded, "file_id", None)
    remove = getattr(ctx.uploaded_file_mgr, "remove_file", None) if ctx is not None else None
    if ctx is not None and remove is not None and file_id:
        remove(session_id=ctx.session_id, file_id=file_id)
    del uploaded

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except OSError:
        pass
