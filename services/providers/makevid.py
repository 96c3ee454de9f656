"""makevid.ai as a tracker: GET /api/v1/get_runway/{id} follows a Runway task made elsewhere.

makevid's only create route is Gen-3 image-to-video, not performance transfer, so this
provider never creates. Quirks: `progressRatio` is a string (or null), the video is
`artifacts[0].url`, `estimatedTimeToStartSeconds` becomes the ETA while queued.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from services.errors import ConfigError, ErrorKind, ProviderError
from services.models import ProviderCapabilities, ProviderUpdate, TaskStatus
from services.providers.base import CreateRequest
from services.providers.remote import HttpProvider, failed_update, progress_fraction


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Artifact(_Wire):
    url: str | None = None


class MakevidTask(_Wire):
    id: str | None = None
    status: str | None = None
    error: Any = None
    progressText: str | None = None
    progressRatio: str | float | None = None
    estimatedTimeToStartSeconds: float | None = None
    artifacts: list[Artifact] | None = None


class MakevidProvider(HttpProvider):
    id = "makevid"
    name = "makevid"
    default_base_url = "https://makevid.ai"

    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            id=self.id,
            name=self.name,
            can_create=False,
            can_track=True,
            can_cancel=False,
            requires_image=False,
            poll_interval_s=5.0,
            docs="https://makevid.ai",
        )

    def create(self, request: CreateRequest) -> str:
        raise ConfigError(
            "makevid only tracks tasks made elsewhere; use `reenact track --provider makevid "
            "TASK_ID` (or Track on the Tasks page) with the id of a task you started there."
        )

    def poll(self, provider_task_id: str) -> ProviderUpdate:
        body = self.http.call(
            "GET", f"/api/v1/get_runway/{self.task_segment(provider_task_id)}", idempotent=True
        )
        raw_task = body.get("task") if isinstance(body, dict) else None
        if not isinstance(raw_task, dict):
            raise ProviderError(
                ErrorKind.NOT_FOUND,
                f"{self.name} has no task with this id. Check the id.",
                provider=self.id,
            )
        try:
            task = MakevidTask.model_validate(raw_task)
        except ValidationError as exc:
            raise self.unreadable("a task status", str(exc)[:200]) from exc
        return self.normalize(task)

    def normalize(self, task: MakevidTask) -> ProviderUpdate:
        status = (task.status or "").strip().upper()
        raw = task.status
        progress = progress_fraction(task.progressRatio)
        if status in ("PENDING", "THROTTLED"):
            eta = task.estimatedTimeToStartSeconds
            return ProviderUpdate(
                status=TaskStatus.QUEUED,
                progress=0.0,
                raw_status=raw,
                eta_seconds=eta if eta is not None and eta >= 0 else None,
            )
        if status == "RUNNING":
            return ProviderUpdate(status=TaskStatus.RUNNING, progress=progress, raw_status=raw)
        if status == "SUCCEEDED":
            url = next((a.url for a in task.artifacts or [] if a.url), None)
            if url:
                return ProviderUpdate(
                    status=TaskStatus.SUCCEEDED, progress=1.0, result_url=url, raw_status=raw
                )
            return ProviderUpdate(status=TaskStatus.RUNNING, progress=0.99, raw_status=raw)
        if status in ("FAILED", "FAILURE"):
            reason = (
                task.error
                if isinstance(task.error, str)
                else (str(task.error) if task.error else None)
            )
            return failed_update(self.name, reason, raw_status=raw)
        if status in ("CANCELLED", "CANCELED"):
            return ProviderUpdate(
                status=TaskStatus.CANCELED,
                error="The task was canceled.",
                error_kind=ErrorKind.CANCELED,
                raw_status=raw,
            )
        state = TaskStatus.RUNNING if progress else TaskStatus.QUEUED
        return ProviderUpdate(status=state, progress=progress, raw_status=raw or "UNKNOWN")
