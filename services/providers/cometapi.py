"""CometAPI's Runway "reverse format": POST /runway/pro/act_one, polled with POST /runway/feed.

Quirks handled: a numeric or string `code`; the feed answer enveloped or flat; `progress` as
"42%" or a number; the result link in one of four places; `task_not_exist` for a while right
after create (NOT_FOUND here; the monitor's grace period keeps it queued); 16:9 inputs only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from services.errors import ErrorKind, InputError, ProviderError
from services.models import ProviderCapabilities, ProviderUpdate, TaskStatus
from services.providers.base import CreateRequest
from services.providers.remote import HttpProvider, failed_update, progress_fraction

if TYPE_CHECKING:
    import httpx

RUNWAY_VERSION = "2024-11-06"
QUEUED_WORDS = {"NOT_START", "SUBMITTED", "QUEUED", "PENDING", "THROTTLED", "WAITING"}
RUNNING_WORDS = {"IN_PROGRESS", "RUNNING", "PROCESSING", "GENERATING"}
SUCCESS_WORDS = {"SUCCESS", "SUCCEEDED", "COMPLETED"}
FAILURE_WORDS = {"FAILURE", "FAILED", "FAIL", "ERROR"}
CANCEL_WORDS = {"CANCELLED", "CANCELED"}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateData(_Wire):
    task_id: str | None = None
    id: str | None = None


class CreateAnswer(_Wire):
    code: int | str | None = None
    msg: str | None = None
    message: str | None = None
    data: CreateData | None = None
    task_id: str | None = None


class Artifact(_Wire):
    url: str | None = None


class Upstream(_Wire):
    """The Runway task inside `data.data`."""

    status: str | None = None
    progress: float | str | None = None
    output: list[str] | None = None
    artifacts: list[Artifact] | None = None
    failure: str | None = None
    failureCode: str | None = None


class FeedTask(_Wire):
    task_id: str | None = None
    status: str | None = None
    fail_reason: str | None = None
    result_url: str | None = None
    video_url: str | None = None
    progress: float | int | str | None = None
    data: Any = None

    def upstream(self) -> Upstream | None:
        if not isinstance(self.data, dict):
            return None
        try:
            return Upstream.model_validate(self.data)
        except ValidationError:
            return None

    def result(self, up: Upstream | None) -> str | None:
        for url in (self.result_url, self.video_url):
            if url:
                return url
        if up is not None:
            if up.output and up.output[0]:
                return up.output[0]
            if up.artifacts and up.artifacts[0].url:
                return up.artifacts[0].url
        return None


def _is_not_exist(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    err = body.get("error")
    texts = [body.get("code"), body.get("message"), body.get("msg")]
    if isinstance(err, dict):
        texts += [err.get("code"), err.get("message")]
    return any(isinstance(t, str) and "task_not_exist" in t for t in texts)


class CometApiProvider(HttpProvider):
    id = "cometapi"
    name = "CometAPI"
    default_base_url = "https://api.cometapi.com"
    known_fields = ("callback_url", "video", "image")

    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            id=self.id,
            name=self.name,
            can_cancel=False,
            accepts_character_video=False,
            requires_image=True,
            required_aspect="16:9",
            needs_urls=True,
            cost_per_second_usd=None,
            poll_interval_s=5.0,
            not_found_grace_s=60.0,
            docs="https://apidoc.cometapi.com",
        )

    def default_headers(self) -> dict[str, str]:
        return {"X-Runway-Version": RUNWAY_VERSION}

    def map_error(self, response: httpx.Response, body: Any) -> ProviderError | None:
        if _is_not_exist(body):
            return ProviderError(
                ErrorKind.NOT_FOUND,
                f"{self.name} does not know this task (yet): it answered task_not_exist.",
                provider=self.id,
                status_code=response.status_code,
            )
        if not isinstance(body, dict):
            return None
        err = body.get("error")
        words = " ".join(
            str(v) for v in ((err or {}).values() if isinstance(err, dict) else [err]) if v
        ).lower()
        if response.status_code in (402, 403) and (
            "quota" in words or "balance" in words or "credit" in words
        ):
            return self.http.map_code(402, body)
        # A 200 whose numeric code is an error (gateways of this family do that).
        code = body.get("code")
        if response.status_code == 200 and isinstance(code, int) and code >= 400:
            return self.http.map_code(code, body)
        return None

    # ---- create -------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> str:
        if not request.image:
            raise InputError(f"{self.name} needs a character image (a link to a picture).")
        if request.character_video:
            raise InputError(
                f"{self.name} takes a character image only; remove the character video or "
                "choose Runway or LiangXin."
            )
        payload = {
            "video": self.link_for(request.video),
            "image": self.link_for(request.image),
            "callback_url": self.callback_for(request),
        }
        body = self.http.call("POST", "/runway/pro/act_one", json_body=payload, idempotent=False)
        try:
            answer = CreateAnswer.model_validate(body)
        except ValidationError as exc:
            raise self.unknown_create_outcome(str(exc)[:200]) from exc
        task_id = (answer.data.task_id or answer.data.id) if answer.data else answer.task_id
        if not task_id:
            raise self.unknown_create_outcome(answer.msg or answer.message)
        return task_id

    # ---- poll ---------------------------------------------------------------------------------
    def poll(self, provider_task_id: str) -> ProviderUpdate:
        body = self.http.call(
            "POST",
            "/runway/feed",
            json_body={"task_id": self.stored_task_id(provider_task_id)},
            idempotent=True,
        )
        if not isinstance(body, dict):
            raise self.unreadable("a task status")
        # The documented envelope wraps the task in `data`; the seed page shows it flat (and
        # then `data` is the upstream Runway task, so look at the top level first).
        flat = "status" in body or "task_id" in body
        raw = body if flat or not isinstance(body.get("data"), dict) else body["data"]
        try:
            task = FeedTask.model_validate(raw)
        except ValidationError as exc:
            raise self.unreadable("a task status", str(exc)[:200]) from exc
        return self.normalize(task)

    def normalize(self, task: FeedTask) -> ProviderUpdate:
        up = task.upstream()
        outer = (task.status or "").strip().upper()
        inner = (up.status or "").strip().upper() if up else ""
        raw = f"{outer}/{inner}" if inner else outer or None
        progress = progress_fraction(task.progress)
        if progress is None and up is not None:
            progress = progress_fraction(up.progress)
        url = task.result(up)
        if outer in SUCCESS_WORDS or inner in SUCCESS_WORDS:
            if url:
                return ProviderUpdate(
                    status=TaskStatus.SUCCEEDED, progress=1.0, result_url=url, raw_status=raw
                )
            # The seed says to keep polling until a usable link appears.
            return ProviderUpdate(status=TaskStatus.RUNNING, progress=0.99, raw_status=raw)
        if outer in FAILURE_WORDS or inner in FAILURE_WORDS:
            reason = task.fail_reason or (up.failure if up else None)
            return failed_update(
                self.name, reason, code=up.failureCode if up else None, raw_status=raw
            )
        if inner in CANCEL_WORDS or outer in CANCEL_WORDS:
            return ProviderUpdate(
                status=TaskStatus.CANCELED,
                error="The task was canceled at the provider.",
                error_kind=ErrorKind.CANCELED,
                raw_status=raw,
            )
        if inner in QUEUED_WORDS or (outer in QUEUED_WORDS and inner not in RUNNING_WORDS):
            return ProviderUpdate(status=TaskStatus.QUEUED, progress=0.0, raw_status=raw)
        if inner in RUNNING_WORDS or outer in RUNNING_WORDS:
            return ProviderUpdate(status=TaskStatus.RUNNING, progress=progress, raw_status=raw)
        # An unknown word (UNKNOWN included) is never terminal: keep following the task.
        status = TaskStatus.RUNNING if progress else TaskStatus.QUEUED
        return ProviderUpdate(status=status, progress=progress, raw_status=raw or "UNKNOWN")
