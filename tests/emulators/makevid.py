"""makevid.ai task lookup: GET /api/v1/get_runway/{id} -> {"task": {...}} (seed 004).

makevid has no performance-transfer create route: tasks are made elsewhere. Add one with
`add_task()` (or POST /_control {"action": "add_task"}) and track it by its id.
Provider switches: `throttled=True`, `status_override`, `null_progress=True` (progressRatio
stays null until done).
"""

from __future__ import annotations

import re
from typing import Any

from tests.emulators.base import Emulator, EmuTask, Fault, Request, Response

TASK_PATH = re.compile(r"^/api/v1/get_runway/([^/]+)$")


class MakevidEmulator(Emulator):
    provider_id = "makevid"
    key_prefix = "mv"

    def route_of(self, req: Request) -> str | None:
        if req.method == "GET" and TASK_PATH.match(req.path):
            return "poll"
        return None

    def task_id_of(self, req: Request) -> str | None:
        m = TASK_PATH.match(req.path)
        return m.group(1) if m else None

    def error(self, kind: str, status: int, message: str, fault: Fault | None = None) -> Response:
        return Response.json({"error": message, "statusCode": status}, status=status)

    def auth_error(self) -> Response:
        return self.error("auth", 401, "Unauthorized")

    def handle(self, route: str, req: Request) -> Response:
        m = TASK_PATH.match(req.path)
        assert m is not None
        t, phase, progress = self.observe(m.group(1))
        if t is None:
            return self.error("not_found", 404, "Task not found")
        return Response.json({"task": self._view(t, phase, progress)})

    def _view(self, t: EmuTask, phase: str, progress: float) -> dict[str, Any]:
        x = self.config.extra
        status = {
            "queued": "THROTTLED" if t.throttled else "PENDING",
            "running": "RUNNING",
            "succeeded": "SUCCEEDED",
            "failed": "FAILED",
            "canceled": "FAILED",
        }[phase]
        ratio: str | None = None
        if phase == "running" and not x.get("null_progress"):
            ratio = f"{progress:.3f}".rstrip("0").rstrip(".")
        elif phase == "succeeded":
            ratio = "1"
        task: dict[str, Any] = {
            "id": t.id,
            "name": None,
            "image": None,
            "createdAt": "2026-11-23T12:00:00.123Z",
            "updatedAt": "2026-11-23T12:00:20.338Z",
            "taskType": "act_two",
            "options": {"seconds": 5},
            "status": x.get("status_override") or status,
            "error": t.fail_reason if phase in ("failed", "canceled") else None,
            "progressText": "Generating" if phase == "running" else None,
            "progressRatio": ratio,
            "estimatedTimeToStartSeconds": 12 if phase == "queued" else 0,
            "artifacts": [],
            "sharedAsset": None,
        }
        if phase == "succeeded":
            task["artifacts"] = [
                {
                    "id": f"{t.id}-a",
                    "taskId": t.id,
                    "filename": ".mp4",
                    "url": self.result_url(t.id),
                    "fileSize": "6069",
                    "previewUrls": [],
                    "metadata": {
                        "frameRate": 12,
                        "duration": 1.0,
                        "dimensions": [160, 90],
                        "size": {"width": 160, "height": 90},
                    },
                }
            ]
        return task
