"""CometAPI's Runway "reverse format": POST /runway/pro/act_one + POST /runway/feed.

Provider switches (`configure(...)`):
  feed_shape      "envelope" (default, {"code":"success","data":{...}}) | "flat" (seed page)
  progress_style  "percent" ("42%", default) | "number" (42) | "fraction" (0.42)
  result_field    "result_url" (default) | "video_url" | "output" | "artifacts"
  create_code     200 (default, numeric) | "success" (string)
  status_override any word: every poll reports it (an unknown status)
and `not_exist_seconds` / `not_exist_polls`: task_not_exist right after create.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.emulators.base import Emulator, EmuTask, Fault, Request, Response

WORDS = {
    "queued": "QUEUED",
    "running": "IN_PROGRESS",
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
    "canceled": "FAILURE",
}
UPSTREAM = {
    "queued": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "canceled": "CANCELLED",
}


class CometApiEmulator(Emulator):
    provider_id = "cometapi"
    key_prefix = "sk-comet"

    def route_of(self, req: Request) -> str | None:
        if req.method == "POST" and req.path == "/runway/pro/act_one":
            return "create"
        if req.method == "POST" and req.path == "/runway/feed":
            return "poll"
        return None

    def task_id_of(self, req: Request) -> str | None:
        body = req.json
        return str(body.get("task_id")) if isinstance(body, dict) else None

    def error(self, kind: str, status: int, message: str, fault: Fault | None = None) -> Response:
        if kind == "not_found":
            return self.task_not_exist()
        code: Any = fault.code if fault and fault.code is not None else ""
        if kind == "credits":
            status = fault.status if fault and fault.status else 403
            code = code or "insufficient_user_quota"
        if kind == "invalid":
            code = code or "invalid_request"
        rid = secrets.token_hex(8)
        return Response.json(
            {
                "error": {
                    "message": f"{message} (request id: {rid})",
                    "type": "comet_api_error",
                    "param": "",
                    "code": code,
                }
            },
            status=status,
        )

    def auth_error(self) -> Response:
        return self.error("auth", 401, "Invalid token")

    @staticmethod
    def task_not_exist() -> Response:
        return Response.json(
            {"code": "task_not_exist", "message": "task_not_exist", "data": None}, status=400
        )

    def handle(self, route: str, req: Request) -> Response:
        return self._create(req) if route == "create" else self._feed(req)

    def _create(self, req: Request) -> Response:
        body = req.json
        if not isinstance(body, dict):
            return self.error("invalid", 400, "request body must be JSON")
        for name in ("video", "image", "callback_url"):
            value = body.get(name)
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                return self.error("invalid", 400, f"{name} is required and must be a URL")
        for name in ("video", "image"):
            problem = self.fetch_input(body[name], name)
            if problem:
                return self.error("invalid", 400, f"{name}: {problem}")
        t = self.create_task(req)
        code = self.config.extra.get("create_code", 200)
        return Response.json(
            {
                "code": code,
                "msg": "success",
                "message": "",
                "data": {"task_id": t.id},
                "exec_time": 0.031,
            }
        )

    def _feed(self, req: Request) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        t, phase, progress = self.observe(str(body.get("task_id", "")))
        if t is None or phase == "hidden":
            return self.task_not_exist()
        data = self._task_view(t, phase, progress)
        if self.config.extra.get("feed_shape", "envelope") == "flat":
            return Response.json(data)
        return Response.json({"code": "success", "message": "", "data": data})

    def _task_view(self, t: EmuTask, phase: str, progress: float) -> dict[str, Any]:
        x = self.config.extra
        style = x.get("progress_style", "percent")
        pct = round(progress * 100)
        shown: Any = {"percent": f"{pct}%", "number": pct, "fraction": progress}[style]
        now = int(time.time())
        upstream: dict[str, Any] = {
            "id": t.id,
            "status": UPSTREAM.get(phase, "PENDING"),
            "createdAt": "2026-11-23T12:00:00.000Z",
        }
        if phase == "queued" and t.throttled:
            upstream["status"] = "THROTTLED"
        if phase == "running":
            upstream["progress"] = progress
        data: dict[str, Any] = {
            "task_id": t.id,
            "action": "act_one",
            "status": x.get("status_override") or WORDS.get(phase, "UNKNOWN"),
            "fail_reason": "",
            "result_url": "",
            "submit_time": now - 5,
            "start_time": now if phase != "queued" else 0,
            "finish_time": 0,
            "progress": shown,
            "data": upstream,
        }
        if phase == "succeeded":
            url = self.result_url(t.id)
            field = x.get("result_field", "result_url")
            data["finish_time"] = now
            if field in ("result_url", "video_url"):
                data[field] = url
            elif field == "output":
                upstream["output"] = [url]
            else:
                upstream["artifacts"] = [{"url": url, "fileSize": "6069"}]
        elif phase == "failed":
            data["fail_reason"] = t.fail_reason or ""
            upstream["failure"] = t.fail_reason
            if t.fail_code:
                upstream["failureCode"] = t.fail_code
        return data
