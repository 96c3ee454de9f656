"""LiangXin unified jobs API, model runway-act-two: createTask + recordInfo.

Errors arrive as a body `code` with HTTP 200 by default (`errors_in_200=True`); set
`configure(errors_in_200=False)` to send the real HTTP status as well.
Provider switches: `status_override` (every poll reports that state word),
`progress_field` (default True: "progress" 0–1 while generating), `credits_consumed`
(reported with a finished record's `costTime`; default 30, None leaves it out).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from tests.emulators.base import Emulator, EmuTask, Fault, Request, Response

RATIOS = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
CODES = {"auth": 401, "credits": 402, "not_found": 404, "invalid": 422, "rate_limit": 429}


class LiangXinEmulator(Emulator):
    provider_id = "liangxin"
    key_prefix = "lx"

    def route_of(self, req: Request) -> str | None:
        if req.method == "POST" and req.path == "/api/v1/jobs/createTask":
            return "create"
        if req.method == "GET" and req.path == "/api/v1/jobs/recordInfo":
            return "poll"
        return None

    def task_id_of(self, req: Request) -> str | None:
        return req.query.get("taskId")

    def error(self, kind: str, status: int, message: str, fault: Fault | None = None) -> Response:
        code: Any = CODES.get(kind, status)
        if fault is not None and fault.code is not None:
            code = fault.code
        http = (
            200
            if self.config.extra.get("errors_in_200", True)
            else (int(code) if str(code).isdigit() and 400 <= int(code) < 600 else status)
        )
        return Response.json({"code": code, "msg": message, "data": None}, status=http)

    def auth_error(self) -> Response:
        return self.error("auth", 401, "You do not have access permissions")

    def handle(self, route: str, req: Request) -> Response:
        return self._create(req) if route == "create" else self._record(req)

    def _create(self, req: Request) -> Response:
        body = req.json
        if not isinstance(body, dict):
            return self.error("invalid", 422, "Request body must be JSON")
        if body.get("model") != "runway-act-two":
            return self.error("invalid", 422, "model is not supported")
        inp = body.get("input")
        if not isinstance(inp, dict):
            return self.error("invalid", 422, "input is required")
        char, ref = inp.get("character") or {}, inp.get("reference") or {}
        if char.get("type") not in ("image", "video") or not char.get("uri"):
            return self.error("invalid", 422, "input.character.uri is required")
        if ref.get("type") != "video" or not ref.get("uri"):
            return self.error("invalid", 422, "input.reference.uri is required")
        if "ratio" in inp and inp["ratio"] not in RATIOS:
            return self.error("invalid", 422, f"input.ratio must be one of {', '.join(RATIOS)}")
        for name, part in (("character", char), ("reference", ref)):
            problem = self.fetch_input(str(part["uri"]), str(part["type"]))
            if problem:
                return self.error("invalid", 422, f"input.{name}.uri: {problem}")
        ei = inp.get("expression_intensity")
        if ei is not None and (not isinstance(ei, int) or not 1 <= ei <= 5):
            return self.error("invalid", 422, "input.expression_intensity must be 1-5")
        t = self.create_task(req)
        return Response.json({"code": 200, "msg": "success", "data": {"taskId": t.id}})

    def new_task_id(self) -> str:
        return f"task_runway_act_two_{int(time.time() * 1000)}{secrets.token_hex(4)}"

    def _record(self, req: Request) -> Response:
        tid = req.query.get("taskId")
        if not tid:
            return self.error("invalid", 422, "taskId is required")
        t, phase, progress = self.observe(tid)
        if t is None or phase == "hidden":
            return self.error("not_found", 404, "recordInfo is null")
        return Response.json(
            {"code": 200, "message": "success", "data": self._view(t, phase, progress)}
        )

    def _view(self, t: EmuTask, phase: str, progress: float) -> dict[str, Any]:
        x = self.config.extra
        state = {
            "queued": "waiting" if t.polls <= 1 else "queuing",
            "running": "generating",
            "succeeded": "success",
            "failed": "fail",
            "canceled": "fail",
        }[phase]
        now = int(time.time() * 1000)
        data: dict[str, Any] = {
            "taskId": t.id,
            "model": "runway-act-two",
            "state": x.get("status_override") or state,
            "param": json.dumps(t.body or {}),
            "resultJson": "",
            "failCode": "",
            "failMsg": "",
            "costTime": None,
            "completeTime": None,
            "createTime": now - 5000,
            "updateTime": now,
        }
        if phase == "running" and x.get("progress_field", True):
            data["progress"] = progress
        if phase == "succeeded":
            data["resultJson"] = json.dumps({"resultUrls": [self.result_url(t.id)]})
            data["completeTime"], data["costTime"] = now, 12
            credits = x.get("credits_consumed", 30)
            if credits is not None:
                data["creditsConsumed"] = credits
        elif phase in ("failed", "canceled"):
            data["failCode"] = t.fail_code or "501"
            data["failMsg"] = t.fail_reason or "canceled"
            data["completeTime"] = now
        return data
