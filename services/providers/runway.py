"""Runway's official API, Act-Two: POST /v1/character_performance, GET/DELETE /v1/tasks/{id}.

Local files go as a data URI when they fit its caps (image 5 MB, video 16 MB), else through
the ephemeral uploads API (POST /v1/uploads, multipart POST to the returned bucket, then the
`runway://` URI). THROTTLED means queued (over the account's concurrency), not an error;
SAFETY.* failures are moderation: explained, never retried. The API has no idempotency key:
one create per task is the studio's job.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from services.errors import ErrorKind, InputError, ProviderError
from services.links import is_web_link
from services.models import ProviderCapabilities, ProviderUpdate, SizeCaps, TaskStatus
from services.providers.base import UUID_TASK_ID, CreateRequest
from services.providers.remote import HttpProvider, failed_update, progress_fraction
from services.publish import safe_name

if TYPE_CHECKING:
    import httpx

VERSION = "2024-11-06"
RATIOS = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
MB = 1024 * 1024
CAPS = SizeCaps(
    url_image=16 * MB,
    url_video=32 * MB,
    data_uri_image=5 * MB,
    data_uri_video=16 * MB,
    upload_min=512,
    upload_max=200 * MB,
)
# Uploads get time in proportion to their size (at least the usual deadline).
UPLOAD_BYTES_PER_S = 512 * 1024
# Runway sells credits at one US cent each (5 credits per second of output).
USD_PER_CREDIT = 0.01
FIELD_LABELS = {
    "reference": "the driving video",
    "character": "the character image or video",
    "ratio": "the output ratio",
    "expressionIntensity": "the expression intensity",
    "bodyControl": "body control",
    "seed": "the seed",
    "contentModeration": "the public-figure moderation setting",
}


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateAnswer(_Wire):
    id: str | None = None


class UploadSlot(_Wire):
    uploadUrl: str
    fields: dict[str, str]
    runwayUri: str


class Credits(_Wire):
    credits: float | None = None


class RunwayTask(_Wire):
    id: str | None = None
    status: str | None = None
    progress: float | str | None = None
    output: list[Any] | None = None
    failure: str | None = None
    failureCode: str | None = None
    # What a finished task really cost (SUCCEEDED, FAILED, CANCELLED; 0 when refunded).
    cost: Credits | None = None

    def first_output(self) -> str | None:
        for item in self.output or []:
            if isinstance(item, str) and item:
                return item
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                return item["url"]
        return None


def _failure_kind(code: str | None) -> ErrorKind | None:
    code = (code or "").upper()
    if code.startswith("SAFETY"):
        return ErrorKind.MODERATION
    if code.startswith("ASSET"):
        return ErrorKind.INVALID_INPUT
    if code.startswith("INTERNAL.BAD_OUTPUT"):
        return ErrorKind.UNEXPECTED
    if code.startswith("INTERNAL"):
        return ErrorKind.UNAVAILABLE
    return None


class RunwayProvider(HttpProvider):
    id = "runway"
    name = "Runway"
    default_base_url = "https://api.dev.runwayml.com"
    task_id_format = UUID_TASK_ID
    task_id_words = "UUIDs such as 1b6a6b1e-6a2c-4f8e-9d61-2d3c4b5a6f70"
    known_fields = (
        "character.uri",
        "reference.uri",
        "character.type",
        "reference.type",
        "character",
        "reference",
        "ratio",
        "expressionIntensity",
        "bodyControl",
        "seed",
        "contentModeration.publicFigureThreshold",
        "contentModeration",
        "model",
        "filename",
    )

    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            id=self.id,
            name=self.name,
            can_cancel=True,
            accepts_character_video=True,
            requires_image=False,
            options=frozenset(
                {"expression_intensity", "body_control", "seed", "ratio", "public_figure_threshold"}
            ),
            ratios=RATIOS,
            reference_min_s=3.0,
            reference_max_s=30.0,
            needs_urls=False,
            size_caps=CAPS,
            cost_per_second_usd=0.05,
            poll_interval_s=6.0,
            docs="https://docs.dev.runwayml.com/api/",
        )

    def default_headers(self) -> dict[str, str]:
        return {"X-Runway-Version": VERSION}

    def map_error(self, response: httpx.Response, body: Any) -> ProviderError | None:
        if response.is_success:
            return None
        text = body.get("error") if isinstance(body, dict) else None
        text = text if isinstance(text, str) else ""
        if response.status_code in (400, 402) and "credit" in text.lower():
            return self.http.map_code(402, body)
        if response.status_code in (400, 422) and isinstance(body, dict):
            err = self.http.map_code(response.status_code, body)
            if err.field:
                label = FIELD_LABELS.get(err.field.split(".")[0])
                if label:
                    err.sentence = (
                        f"{self.name} refused {label} (field '{err.field}'). Check it against "
                        f"Runway's limits and try again. (The provider said: {text[:300]})"
                    )
                    err.args = (err.sentence,)
            return err
        if body is None and "xml" in response.headers.get("content-type", ""):
            # The upload bucket answers like S3.
            code = re.search(r"<Code>([^<]*)</Code>", response.text)
            message = re.search(r"<Message>([^<]*)</Message>", response.text)
            return ProviderError(
                ErrorKind.INVALID_INPUT if response.status_code < 500 else ErrorKind.UNAVAILABLE,
                f"{self.name}'s upload storage refused the file.",
                provider=self.id,
                status_code=response.status_code,
                detail=" ".join(m.group(1) for m in (code, message) if m) or None,
                retryable=response.status_code >= 500,
            )
        return None

    # ---- create -------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> str:
        o = request.options
        if o.ratio and o.ratio not in RATIOS:
            raise InputError(
                f"{self.name} cannot make a {o.ratio} video; choose one of {', '.join(RATIOS)}."
            )
        if request.character_video:
            character = {"type": "video", "uri": self.uri_for(request.character_video, "video")}
        elif request.image:
            character = {"type": "image", "uri": self.uri_for(request.image, "image")}
        else:
            raise InputError(f"{self.name} needs a character image or a character video.")
        payload: dict[str, Any] = {
            "model": "act_two",
            "character": character,
            "reference": {"type": "video", "uri": self.uri_for(request.video, "video")},
            "ratio": o.ratio or RATIOS[0],
        }
        if o.body_control is not None:
            payload["bodyControl"] = o.body_control
        if o.expression_intensity is not None:
            payload["expressionIntensity"] = o.expression_intensity
        if o.seed is not None:
            payload["seed"] = o.seed
        if o.public_figure_threshold is not None:
            payload["contentModeration"] = {"publicFigureThreshold": o.public_figure_threshold}
        body = self.http.call(
            "POST", "/v1/character_performance", json_body=payload, idempotent=False
        )
        try:
            answer = CreateAnswer.model_validate(body)
        except ValidationError as exc:
            raise self.unknown_create_outcome(str(exc)[:200]) from exc
        if not answer.id:
            raise self.unknown_create_outcome()
        return answer.id

    def uri_for(self, value: str, kind: str) -> str:
        """A URL passes through; a local file becomes a data URI or an ephemeral upload."""
        if is_web_link(value):
            return value
        path = Path(value)
        if not path.is_file():
            raise InputError(f"The file was not found: {value}")
        size = path.stat().st_size
        mime = mimetypes.guess_type(path.name)[0] or (
            "video/mp4" if kind == "video" else "image/png"
        )
        prefix = f"data:{mime};base64,"
        encoded_len = len(prefix) + 4 * ((size + 2) // 3)
        cap = CAPS.data_uri_video if kind == "video" else CAPS.data_uri_image
        assert cap is not None
        if encoded_len <= cap:
            return prefix + base64.b64encode(path.read_bytes()).decode("ascii")
        return self.upload(path, mime)

    def upload(self, path: Path, mime: str) -> str:
        size = path.stat().st_size
        assert CAPS.upload_max is not None
        if size > CAPS.upload_max:
            raise InputError(
                f"{path.name} is {size / MB:.0f} MB; {self.name} accepts files up to "
                f"{CAPS.upload_max // MB} MB. Trim or compress it first."
            )
        name = safe_name(path.name)
        slot_body = self.http.call(
            "POST",
            "/v1/uploads",
            json_body={"filename": name, "type": "ephemeral"},
            idempotent=True,  # an unused upload slot costs nothing
        )
        try:
            slot = UploadSlot.model_validate(slot_body)
        except ValidationError as exc:
            raise self.unreadable("an upload slot", str(exc)[:200]) from exc
        deadline = max(self.http_options.deadline, size / UPLOAD_BYTES_PER_S)
        with path.open("rb") as fh:
            # The bucket is a third party's storage: never send it the API key.
            self.http.call(
                "POST",
                slot.uploadUrl,
                data=slot.fields,
                files={"file": (name, fh, mime)},
                idempotent=True,
                authenticated=False,
                expect_json=False,
                deadline=deadline,
            )
        return slot.runwayUri

    # ---- poll and cancel ----------------------------------------------------------------------
    def poll(self, provider_task_id: str) -> ProviderUpdate:
        body = self.http.call(
            "GET", f"/v1/tasks/{self.task_segment(provider_task_id)}", idempotent=True
        )
        try:
            task = RunwayTask.model_validate(body)
        except ValidationError as exc:
            raise self.unreadable("a task status", str(exc)[:200]) from exc
        return self.normalize(task)

    def normalize(self, task: RunwayTask) -> ProviderUpdate:
        update = self._status_update(task)
        credits = task.cost.credits if task.cost is not None else None
        if update.status.terminal and credits is not None and credits >= 0:
            rate = self.config.usd_per_credit or USD_PER_CREDIT
            update.cost_usd = round(credits * rate, 4)
        return update

    def _status_update(self, task: RunwayTask) -> ProviderUpdate:
        status = (task.status or "").strip().upper()
        raw = task.status
        if status in ("PENDING", "THROTTLED"):
            return ProviderUpdate(status=TaskStatus.QUEUED, progress=0.0, raw_status=raw)
        if status == "RUNNING":
            return ProviderUpdate(
                status=TaskStatus.RUNNING,
                progress=progress_fraction(task.progress),
                raw_status=raw,
            )
        if status == "SUCCEEDED":
            url = task.first_output()
            if url:
                return ProviderUpdate(
                    status=TaskStatus.SUCCEEDED, progress=1.0, result_url=url, raw_status=raw
                )
            return ProviderUpdate(status=TaskStatus.RUNNING, progress=0.99, raw_status=raw)
        if status == "FAILED":
            reason = task.failure
            if task.failureCode and task.failureCode not in (reason or ""):
                reason = f"{reason} [{task.failureCode}]" if reason else task.failureCode
            return failed_update(
                self.name,
                reason,
                code=task.failureCode,
                raw_status=raw,
                kind=_failure_kind(task.failureCode),
            )
        if status in ("CANCELLED", "CANCELED"):
            return ProviderUpdate(
                status=TaskStatus.CANCELED,
                error="The task was canceled.",
                error_kind=ErrorKind.CANCELED,
                raw_status=raw,
            )
        progress = progress_fraction(task.progress)
        state = TaskStatus.RUNNING if progress else TaskStatus.QUEUED
        return ProviderUpdate(status=state, progress=progress, raw_status=raw or "UNKNOWN")

    def cancel(self, provider_task_id: str) -> None:
        self.http.call(
            "DELETE",
            f"/v1/tasks/{self.task_segment(provider_task_id)}",
            idempotent=True,
            expect_json=False,
        )
