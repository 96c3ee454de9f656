"""Runway's official API, Act-Two: character_performance, tasks, ephemeral uploads.

`X-Runway-Version: 2024-11-06` is required, as on the real API. Uploads: POST /v1/uploads
hands out a slot; the file goes by multipart POST to /_uploads/<id> (no bearer auth, like the
real S3 bucket); the returned `runway://` URI is then valid as an input `uri`.
Provider switches: `throttled=True` (queued phase reports THROTTLED), `fail_code`
(e.g. "SAFETY.INPUT.IMAGE"), `status_override`, `credits` (what a succeeded task costs;
default 25, a 5 s result at 5 credits a second) and `failed_credits` (default 0: refunded).
Cost is reported as Runway does: `estimatedCost` while pending or running, `cost` once done.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from tests.emulators.base import Emulator, EmuTask, Fault, Request, Response

VERSION = "2024-11-06"
RATIOS = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
PUBLIC_FIGURE_THRESHOLDS = ("auto", "low")
DATA_URI_CAPS = {"image": 5 * 1024 * 1024, "video": 16 * 1024 * 1024}
UPLOAD_MIN, UPLOAD_MAX = 512, 200 * 1024 * 1024
TASK_PATH = re.compile(r"^/v1/tasks/([^/]+)$")
DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+);base64,(.*)$", re.S)


class RunwayEmulator(Emulator):
    provider_id = "runway"
    key_prefix = "key"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uploads: dict[str, int | None] = {}  # upload id -> bytes received (None = pending)
        # Header names each bucket upload carried (the key must never go to the bucket).
        self.storage_headers: list[set[str]] = []

    def route_of(self, req: Request) -> str | None:
        if req.method == "POST" and req.path == "/v1/character_performance":
            return "create"
        if req.method == "POST" and req.path == "/v1/uploads":
            return "upload"
        if req.method == "POST" and req.path.startswith("/_uploads/"):
            return "storage"
        if TASK_PATH.match(req.path):
            return {"GET": "poll", "DELETE": "cancel"}.get(req.method)
        return None

    def task_id_of(self, req: Request) -> str | None:
        m = TASK_PATH.match(req.path)
        return m.group(1) if m else None

    def error(self, kind: str, status: int, message: str, fault: Fault | None = None) -> Response:
        if kind == "credits" and not (fault and fault.status):
            status = 400  # Runway answers "not enough credits" as a 400
            message = "You do not have enough credits to run this task."
        return Response.json({"error": message}, status=status)

    def auth_error(self) -> Response:
        return Response.json({"error": "Invalid API key. Check the key and try again."}, 401)

    def handle(self, route: str, req: Request) -> Response:
        if route == "storage":
            return self._store_upload(req)
        if req.headers.get("x-runway-version") != VERSION:
            return self.error("invalid", 400, "Invalid or missing X-Runway-Version header.")
        if route == "create":
            return self._create(req)
        if route == "upload":
            return self._new_upload(req)
        m = TASK_PATH.match(req.path)
        assert m is not None
        return self._poll(m.group(1)) if route == "poll" else self._cancel(m.group(1))

    # ---- create ------------------------------------------------------------------------------
    def _create(self, req: Request) -> Response:
        body = req.json
        if not isinstance(body, dict):
            return self.error("invalid", 400, "The request body must be JSON.")
        if body.get("model") != "act_two":
            return self.error("invalid", 400, "model: Invalid enum value. Expected 'act_two'.")
        for name, kinds in (("character", ("image", "video")), ("reference", ("video",))):
            part = body.get(name)
            if not isinstance(part, dict) or part.get("type") not in kinds:
                return self.error("invalid", 400, f"{name}.type: must be one of {kinds}.")
            problem = self._check_uri(part.get("uri"), part["type"])
            if problem:
                return self.error("invalid", 400, f"{name}.uri: {problem}")
        if body.get("ratio") not in RATIOS:
            return self.error("invalid", 400, f"ratio: must be one of {', '.join(RATIOS)}.")
        ei = body.get("expressionIntensity")
        if ei is not None and (not isinstance(ei, int) or not 1 <= ei <= 5):
            return self.error("invalid", 400, "expressionIntensity: must be an integer 1-5.")
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or not 0 <= seed <= 4294967295):
            return self.error("invalid", 400, "seed: must be an integer 0-4294967295.")
        if "bodyControl" in body and not isinstance(body["bodyControl"], bool):
            return self.error("invalid", 400, "bodyControl: must be a boolean.")
        problem = _moderation_problem(body)
        if problem:
            return self.error("invalid", 400, problem)
        t = self.create_task(req)
        return Response.json({"id": t.id})

    def _check_uri(self, uri: Any, kind: str) -> str | None:
        if not isinstance(uri, str) or not uri:
            return "Required."
        if uri.startswith("data:"):
            m = DATA_URI.match(uri)
            if not m:
                return "Invalid data URI."
            if len(uri) > DATA_URI_CAPS[kind]:
                return f"Data URI exceeds the {DATA_URI_CAPS[kind] // (1024 * 1024)}MB limit."
            try:
                base64.b64decode(m.group(2), validate=True)
            except ValueError:
                return "Invalid base64 in data URI."
            return None
        if uri.startswith("runway://"):
            uid = uri.rsplit("/", 1)[-1]
            with self.lock:
                received = self.uploads.get(uid)
            return None if received else "Unknown or incomplete upload."
        if uri.startswith(("https://", "http://127.0.0.1")):
            return None
        return "Invalid URL: must be an HTTPS URL."

    # ---- uploads -----------------------------------------------------------------------------
    def _new_upload(self, req: Request) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        filename = body.get("filename")
        if not isinstance(filename, str) or not filename or body.get("type") != "ephemeral":
            return self.error("invalid", 400, "filename: Required; type must be 'ephemeral'.")
        uid = str(uuid.uuid4())
        with self.lock:
            self.uploads[uid] = None
        return Response.json(
            {
                "uploadUrl": f"{self.url}/_uploads/{uid}",
                "fields": {
                    "key": f"uploads/{uid}/{filename}",
                    "policy": "eyJleHBpcmF0aW9uIjoi",
                    "x-amz-signature": "0f1e2d3c",
                },
                "runwayUri": f"runway://uploads/{uid}",
            }
        )

    def _store_upload(self, req: Request) -> Response:
        uid = req.path.rsplit("/", 1)[-1]
        with self.lock:
            self.storage_headers.append(set(req.headers))
            known = uid in self.uploads
        if not known:
            return _s3_error(404, "NoSuchUpload", "The upload does not exist.")
        parts = parse_multipart(req.headers.get("content-type", ""), req.body)
        if (
            parts is None
            or "file" not in parts
            or "policy" not in parts
            or not parts.get("key", b"").startswith(f"uploads/{uid}/".encode())
        ):
            return _s3_error(400, "InvalidArgument", "The form fields or the file are missing.")
        size = len(parts["file"])
        if size < UPLOAD_MIN:
            return _s3_error(400, "EntityTooSmall", "Your proposed upload is too small.")
        if size > UPLOAD_MAX:
            return _s3_error(400, "EntityTooLarge", "Your proposed upload is too large.")
        with self.lock:
            self.uploads[uid] = size
        return Response(204)

    # ---- tasks -------------------------------------------------------------------------------
    def _poll(self, task_id: str) -> Response:
        t, phase, progress = self.observe(task_id)
        if t is None:
            return self.error("not_found", 404, "Task not found.")
        return Response.json(self._view(t, phase, progress))

    def _view(self, t: EmuTask, phase: str, progress: float) -> dict[str, Any]:
        status = {
            "queued": "THROTTLED" if t.throttled else "PENDING",
            "running": "RUNNING",
            "succeeded": "SUCCEEDED",
            "failed": "FAILED",
            "canceled": "CANCELLED",
        }[phase]
        out: dict[str, Any] = {
            "id": t.id,
            "createdAt": "2026-11-23T12:00:00.000Z",
            "status": self.config.extra.get("status_override") or status,
        }
        credits = self.config.extra.get("credits", 25)
        if phase == "running":
            out["progress"] = progress
        elif phase == "succeeded":
            out["output"] = [self.result_url(t.id)]
        elif phase == "failed":
            out["failure"] = t.fail_reason
            if t.fail_code:
                out["failureCode"] = t.fail_code
        if phase in ("queued", "running"):
            out["estimatedCost"] = {"credits": credits}
        else:
            charged = {"succeeded": credits, "failed": self.config.extra.get("failed_credits", 0)}
            out["cost"] = {"credits": charged.get(phase, 0)}
        return out

    def _cancel(self, task_id: str) -> Response:
        with self.lock:
            t = self.tasks.get(task_id)
            if t is None or t.deleted:
                return self.error("not_found", 404, "Task not found.")
            if t.finished_at is None:
                t.canceled = True
            else:
                t.deleted = True  # deleting a finished task removes it
        return Response(204)


def _moderation_problem(body: dict[str, Any]) -> str | None:
    """contentModeration as Runway validates it: an object whose only key,
    publicFigureThreshold, is "auto" or "low"."""
    if "contentModeration" not in body:
        return None
    moderation = body["contentModeration"]
    if not isinstance(moderation, dict):
        return "contentModeration: Expected object."
    extra = sorted(set(moderation) - {"publicFigureThreshold"})
    if extra:
        return f"contentModeration: Unrecognized key(s) in object: {', '.join(extra)}."
    threshold = moderation.get("publicFigureThreshold")
    if threshold is not None and threshold not in PUBLIC_FIGURE_THRESHOLDS:
        return (
            "contentModeration.publicFigureThreshold: Invalid enum value. Expected 'auto' | "
            f"'low', received {threshold!r}."
        )
    return None


def parse_multipart(content_type: str, body: bytes) -> dict[str, bytes] | None:
    """name -> value of a multipart/form-data body (enough for the upload form)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m or "multipart/form-data" not in content_type:
        return None
    sep = b"--" + m.group(1).encode()
    out: dict[str, bytes] = {}
    for chunk in body.split(sep)[1:-1]:
        head, _, value = chunk.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name:
            out[name.group(1).decode()] = value[:-2] if value.endswith(b"\r\n") else value
    return out


def _s3_error(status: int, code: str, message: str) -> Response:
    return Response(
        status,
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        f"<Message>{message}</Message></Error>".encode(),
        "application/xml",
    )
