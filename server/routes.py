"""Plain HTTP routes beside the UI (mounted by app.py).

Files are streamed from disk by Starlette (Range requests included), so a large result is
never loaded into a session's memory. Only files under the data dir's results/uploads
folders are served, whatever the URL says.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from services.config import Settings
    from services.runtime import Runtime
    from services.store import Store

from server.identity import Requester, requester

log = logging.getLogger("reenact.routes")

_TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
NUDGE_HORIZON_S = 120.0
_PUBLISHED = re.compile(r"^/media/([0-9a-f]{64})/([^/]{1,255})$")


# The process's one runtime (services/runtime.py), imported on first use: the page server
# should not wait for pydantic models and SQLAlchemy to load before its first answer.
def _runtime() -> Runtime:
    from services.runtime import process_runtime

    return process_runtime()


def _settings() -> Settings:
    return _runtime().settings


def _store() -> Store:
    return _runtime().store


def _inside(path: Path, folder: Path) -> Path | None:
    """The real file if `path` resolves to a regular file inside `folder`, else None."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # ValueError: a NUL in the name
        return None
    root = folder.resolve()
    if root not in real.parents or not real.is_file():
        return None
    return real


def _wants_download(request: Request) -> bool:
    """`?download=1`: serve the file as an attachment rather than inline."""
    return request.query_params.get("download") in {"1", "true", "yes"}


def _not_found(sentence: str) -> Response:
    return PlainTextResponse(sentence, status_code=404)


async def download_result(request: Request) -> Response:
    """GET /files/{task_id}/{filename}[?download=1] — a task's archived result."""
    task_id = request.path_params["task_id"]
    if not _TASK_ID.match(task_id):
        return _not_found("No such task.")
    task = await run_in_threadpool(_store().get_task, task_id)
    if task is None or not task.result_path or not requester(request).may_see(task.owner):
        return _not_found("This task has no archived result.")
    attachment = _wants_download(request)
    filename = f"reenact-{task.provider}-{task.id}{Path(task.result_path).suffix}"
    real = _inside(Path(task.result_path), _settings().results_dir)
    if real is None:
        # The local copy is a cache: another replica archived it, or it was cleared.
        return await _from_bucket(request, task.id, Path(task.result_path).name, filename)
    media_type = mimetypes.guess_type(real.name)[0] or "application/octet-stream"
    return FileResponse(
        real,
        media_type=media_type,
        filename=filename,
        content_disposition_type="attachment" if attachment else "inline",
    )


_RANGE = re.compile(r"^bytes=\d*-\d*$")


async def _from_bucket(request: Request, task_id: str, name: str, filename: str) -> Response:
    """A result streamed from the bucket (services/storage.py), one Range honoured like
    FileResponse does, so the player can seek."""
    from urllib.parse import quote

    from starlette.responses import StreamingResponse

    from services.storage import StorageError, bucket_for

    bucket = bucket_for(_settings())
    if bucket is None:
        return _not_found("The result file is missing from the data folder.")
    wanted = request.headers.get("range", "").replace(" ", "")
    byte_range = wanted if _RANGE.match(wanted) and wanted != "bytes=-" else None
    try:
        found = await run_in_threadpool(bucket.open, bucket.result_key(task_id, name), byte_range)
    except StorageError as err:
        if not err.retryable and "range" in str(err):
            return PlainTextResponse(str(err), status_code=416)
        log.warning("Result of task %s not read from the bucket: %s", task_id, err)
        return PlainTextResponse(
            "The result is kept in object storage, which cannot be reached right now; "
            "try again shortly.",
            status_code=503,
        )
    if found is None:
        return _not_found("The result file is missing from the data folder and the bucket.")
    attachment = _wants_download(request)
    disposition = "attachment" if attachment else "inline"
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(found.length),
        "Content-Disposition": f"{disposition}; filename*=utf-8''{quote(filename)}",
    }
    if found.content_range:
        headers["Content-Range"] = found.content_range
    media_type = found.content_type
    if not media_type.startswith(("video/", "image/")):
        media_type = "application/octet-stream"  # never answered as a page
    if request.method == "HEAD":
        found.body.close()
        return Response(status_code=found.status, headers=headers, media_type=media_type)
    return StreamingResponse(
        found.chunks(), status_code=found.status, headers=headers, media_type=media_type
    )


_DIGEST = re.compile(r"^[0-9a-f]{64}$")


async def stream_upload(request: Request) -> Response:
    """GET /uploads/{digest}/{filename} — one of the requester's own uploads or fix results
    (the Create page's preview player), streamed from disk with Range support. Unlike
    /media/…, which providers fetch, this answers only the person who stored the file."""
    digest, name = request.path_params["digest"], request.path_params["filename"]
    if not _DIGEST.match(digest):
        return _not_found("No such file.")
    folder = _settings().uploads_dir
    real = _inside(folder / digest / name, folder)
    if real is None or real.parent.name != digest:
        return _not_found("No such file.")
    who = requester(request)
    if not who.admin:
        if who.owner is None:
            return _not_found("No such file.")
        if not await run_in_threadpool(_store().upload_owned, who.owner, digest, name):
            return _not_found("No such file.")
    guessed = mimetypes.guess_type(real.name)[0] or ""
    # Only media types: whatever the name says, the file is never answered as a page.
    media_type = guessed if guessed.startswith(("video/", "image/")) else "application/octet-stream"
    return FileResponse(real, media_type=media_type)


async def run_reference(request: Request) -> Response:
    """GET /runs/{run_id}/reference — the driving clip a comparison run was made from (the
    Compare page's reference tile). Only the file the run itself names, and only a video."""
    run_id = request.path_params["run_id"]
    if not _TASK_ID.match(run_id):
        return _not_found("No such run.")
    real = await run_in_threadpool(_reference_file, run_id, requester(request))
    if real is None:
        return _not_found("The driving clip of this run is not on this machine.")
    return FileResponse(real, media_type=mimetypes.guess_type(real.name)[0] or "video/mp4")


def _reference_file(run_id: str, who: Requester) -> Path | None:
    from services.compare.analysis import local_input
    from services.media.sniff import SNIFF_BYTES, sniff

    run = _store().get_run(run_id)
    if run is None or not who.may_see(run.owner):
        return None
    path = local_input(run.inputs.video, _settings())
    if path is None:
        return None
    try:
        real = path.resolve(strict=True)
        with real.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return None
    return real if real.is_file() and sniff(head).kind == "video" else None


async def run_export(request: Request) -> Response:
    """GET /exports/{run_id}/{name}[?download=1] — a run's side-by-side video or ZIP, made
    on the Compare page (services.compare.bundle), streamed from disk."""
    from services.compare.bundle import video_name, zip_name

    run_id, name = request.path_params["run_id"], request.path_params["filename"]
    if not _TASK_ID.match(run_id) or name not in (video_name(run_id), zip_name(run_id)):
        return _not_found("No such export.")
    run = await run_in_threadpool(_store().get_run, run_id)
    if run is None or not requester(request).may_see(run.owner):
        return _not_found("No such export.")
    folder = _settings().data_dir / "exports"
    real = _inside(folder / run_id / name, folder)
    if real is None:
        return _not_found("This export has not been made yet; make it on the Compare page.")
    attachment = _wants_download(request)
    return FileResponse(
        real,
        media_type="application/zip" if name.endswith(".zip") else "video/mp4",
        filename=f"reenact-{name}",
        content_disposition_type="attachment" if attachment else "inline",
    )


async def batch_export(request: Request) -> Response:
    """GET /batches/{batch_id}/{name}[?download=1] — a batch's ZIP of results or its CSV,
    made on the Create page's Batch tab (services.batch.export), streamed from disk."""
    from services.batch import csv_name, exports_dir, zip_name

    batch_id, name = request.path_params["batch_id"], request.path_params["filename"]
    if not _TASK_ID.match(batch_id) or name not in (zip_name(batch_id), csv_name(batch_id)):
        return _not_found("No such export.")
    batch = await run_in_threadpool(_store().get_batch, batch_id)
    if batch is None or not requester(request).may_see(batch.owner):
        return _not_found("No such export.")
    folder = exports_dir(_settings(), batch_id)
    real = _inside(folder / name, folder)
    if real is None:
        return _not_found("This export has not been made yet; make it on the batch's page.")
    attachment = _wants_download(request)
    return FileResponse(
        real,
        media_type="application/zip" if name.endswith(".zip") else "text/csv",
        filename=f"reenact-{name}",
        content_disposition_type="attachment" if attachment else "inline",
    )


_HOOK_TOKEN = re.compile(r"^([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{16,64})$")
# When each task's hook last brought a poll forward (this process): at most one extra poll
# per provider interval, however many times the hook is called.
_last_nudge: dict[str, float] = {}
_NUDGE_MEMORY = 10_000
_nudge_lock = threading.Lock()


async def provider_hook(request: Request) -> Response:
    """POST /hooks/{provider}/{task id}.{secret} — a provider says something happened.

    The payload is never trusted (anyone can POST here): a valid hook only moves the task up
    the monitor's queue, and the monitor asks the provider itself. Every hook, valid or not,
    gets the same answer before anything is looked up, so neither the answer nor its timing
    tells a stranger whether a task or secret exists.
    """
    provider, token = request.path_params["provider"], request.path_params["token"]
    return JSONResponse({"ok": True}, background=BackgroundTask(_hook, provider, token))


async def _hook(provider: str, token: str) -> None:
    from services.config import PROVIDER_IDS

    match = _HOOK_TOKEN.match(token)
    if provider in PROVIDER_IDS and match:
        await run_in_threadpool(_nudge, provider, *match.groups())


def _nudge(provider: str, task_id: str, secret: str) -> None:
    import hmac

    from services import lifecycle
    from services.models import utcnow

    store = _store()
    task = store.get_task(task_id)
    if task is None or task.provider != provider or not task.status.pollable:
        return
    expected = task.meta.get("hook_secret")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, secret):
        return
    monitor = _runtime().monitor
    interval = monitor.interval(provider)
    with _nudge_lock:  # hooks arrive on many threads at once
        now_s = time.monotonic()
        if now_s - _last_nudge.get(task_id, -interval) < interval:
            return
        if len(_last_nudge) > _NUDGE_MEMORY:
            _last_nudge.clear()
        _last_nudge[task_id] = now_s
    change = lifecycle.nudged(task, utcnow(), NUDGE_HORIZON_S)
    if change is not None:
        store.apply(change)  # compare-and-set: a claim made meanwhile wins
    monitor.wake()


async def health(_request: Request) -> Response:
    return JSONResponse({"ok": True, "monitor": _runtime().monitor_running()})


class PublishedUploadsMiddleware:
    """Serves GET /media/<sha256>/<name> from the uploads folder (services.publish).

    Streamlit reserves the /media/ prefix for its own in-memory files (one path segment),
    so this answers only the two-segment content-addressed form and passes the rest on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _PUBLISHED.match(scope["path"])
            if match:
                digest, name = match.groups()
                folder = _settings().uploads_dir
                real = _inside(folder / digest / name, folder)
                # Published only while a task that is not finished uses it: the link given
                # to a provider stops working once the provider no longer needs it.
                live = real is not None and await run_in_threadpool(_store().upload_in_use, digest)
                if real is None or real.parent.name != digest or not live:
                    response: Response = _not_found("No such file.")
                else:
                    response = FileResponse(
                        real, media_type=mimetypes.guess_type(real.name)[0] or None
                    )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
