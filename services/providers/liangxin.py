"""LiangXin's unified jobs API, model `runway-act-two`: createTask, polled with recordInfo.

Quirks handled: errors arrive as a body `code` inside HTTP-200 answers (401, 402, 404, 422,
429, 433, 455, 500, 501, 505); `resultJson` is a JSON *string* holding `resultUrls`; there is
no public host, so REENACT_LIANGXIN_BASE_URL must be set.

Cost: a finished record may carry `creditsConsumed`. What a LiangXin credit costs is not
published, so it becomes dollars only with REENACT_LIANGXIN_USD_PER_CREDIT; without it the
task counts its estimate (services/spending.py).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from services.errors import ErrorKind, InputError, ProviderError
from services.models import Availability, ProviderCapabilities, ProviderUpdate, TaskStatus
from services.providers.base import CreateRequest
from services.providers.remote import HttpProvider, failed_update, progress_fraction

if TYPE_CHECKING:
    import httpx

RATIOS = ("1280:720", "720:1280", "960:960", "1104:832", "832:1104", "1584:672")
MODEL = "runway-act-two"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateData(_Wire):
    taskId: str | None = None


class CreateAnswer(_Wire):
    code: int | str | None = None
    msg: str | None = None
    data: CreateData | None = None


class Record(_Wire):
    taskId: str | None = None
    state: str | None = None
    resultJson: Any = None
    failCode: str | int | None = None
    failMsg: str | None = None
    progress: float | int | str | None = None
    creditsConsumed: float | int | str | None = None

    def credits(self) -> float | None:
        """The credits the task consumed, as reported (a number or a numeric string)."""
        try:
            value = float(self.creditsConsumed) if self.creditsConsumed not in (None, "") else None
        except (TypeError, ValueError):
            return None
        return value if value is not None and 0 <= value < float("inf") else None

    def result_url(self) -> tuple[str | None, bool]:
        """(the first result link, whether resultJson was readable)."""
        value = self.resultJson
        if value in (None, "", "{}"):
            return None, True
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return None, False
        if not isinstance(value, dict):
            return None, False
        for key in ("resultUrls", "resultUrl", "videoUrl", "url"):
            found = value.get(key)
            if isinstance(found, list) and found and isinstance(found[0], str):
                return found[0], True
            if isinstance(found, str) and found:
                return found, True
        return None, True


def _code_of(body: Any) -> int | None:
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code)
    return None


class LiangXinProvider(HttpProvider):
    id = "liangxin"
    name = "LiangXin"
    default_base_url = None  # the seed names paths but no host
    known_fields = (
        "input.character.uri",
        "input.reference.uri",
        "input.character",
        "input.reference",
        "input.ratio",
        "input.expression_intensity",
        "input.body_control",
        "input.seed",
        "callBackUrl",
        "model",
        "taskId",
        "ratio",
        "expression_intensity",
        "body_control",
        "seed",
    )
    # 455 = down for maintenance: refused before accepting, like a 503.
    refused_codes = frozenset({429, 503, 455})

    def capabilities(self) -> ProviderCapabilities:
        return ProviderCapabilities(
            id=self.id,
            name=self.name,
            can_cancel=False,
            accepts_character_video=True,
            requires_image=False,
            options=frozenset({"expression_intensity", "body_control", "seed", "ratio"}),
            ratios=RATIOS,
            reference_min_s=3.0,
            reference_max_s=30.0,
            needs_urls=True,
            poll_interval_s=5.0,
        )

    def availability(self) -> Availability:
        if self.config.api_key is not None and not self.base_url:
            return Availability(
                available=False,
                reason=f"{self.name} has no public address: set REENACT_LIANGXIN_BASE_URL to "
                "the API host your LiangXin account uses.",
                key_source=self.config.key_source,
            )
        return super().availability()

    def map_error(self, response: httpx.Response, body: Any) -> ProviderError | None:
        code = _code_of(body)
        if code is None or code == 200:
            return None
        from services.http import parse_retry_after

        retry_after = parse_retry_after(response.headers.get("retry-after"))
        n = self.name
        special: dict[int, tuple[ErrorKind, str, bool]] = {
            433: (
                ErrorKind.INSUFFICIENT_CREDITS,
                f"{n} says this API key has reached its usage limit. Raise the key's limit "
                "or use another key, then submit again.",
                False,
            ),
            455: (ErrorKind.UNAVAILABLE, f"{n} is down for maintenance. Try again later.", True),
            501: (
                ErrorKind.UNEXPECTED,
                f"{n} could not start the generation. Try again; if it keeps failing, try "
                "other inputs.",
                False,
            ),
            505: (
                ErrorKind.UNAVAILABLE,
                f"{n} has this model switched off for the account. Choose another provider "
                "or ask LiangXin to enable it.",
                False,
            ),
        }
        if code in special:
            kind, sentence, retryable = special[code]
            detail = body.get("msg") or body.get("message") if isinstance(body, dict) else None
            return ProviderError(
                kind,
                sentence,
                provider=self.id,
                detail=detail,
                status_code=code,
                retryable=retryable,
                retry_after=retry_after,
            )
        if code >= 400:
            return self.http.map_code(code, body, retry_after=retry_after)
        return None

    # ---- create -------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> str:
        o = request.options
        if o.ratio and o.ratio not in RATIOS:
            raise InputError(
                f"{self.name} cannot make a {o.ratio} video; choose one of {', '.join(RATIOS)}."
            )
        if request.character_video:
            character = {"type": "video", "uri": self.link_for(request.character_video)}
        elif request.image:
            character = {"type": "image", "uri": self.link_for(request.image)}
        else:
            raise InputError(f"{self.name} needs a character image or a character video.")
        inp: dict[str, Any] = {
            "character": character,
            "reference": {"type": "video", "uri": self.link_for(request.video)},
            "ratio": o.ratio or RATIOS[0],
        }
        if o.body_control is not None:
            inp["body_control"] = o.body_control
        if o.expression_intensity is not None:
            inp["expression_intensity"] = o.expression_intensity
        if o.seed is not None:
            inp["seed"] = o.seed
        payload = {"model": MODEL, "callBackUrl": self.callback_for(request), "input": inp}
        body = self.http.call(
            "POST", "/api/v1/jobs/createTask", json_body=payload, idempotent=False
        )
        try:
            answer = CreateAnswer.model_validate(body)
        except ValidationError as exc:
            raise self.unknown_create_outcome(str(exc)[:200]) from exc
        if not answer.data or not answer.data.taskId:
            raise self.unknown_create_outcome(answer.msg)
        return answer.data.taskId

    # ---- poll ---------------------------------------------------------------------------------
    def poll(self, provider_task_id: str) -> ProviderUpdate:
        try:
            body = self.http.call(
                "GET",
                "/api/v1/jobs/recordInfo",
                params={"taskId": self.stored_task_id(provider_task_id)},
                idempotent=True,
            )
        except ProviderError as err:
            if err.status_code == 501:  # "generation failed" describes the task, not the read
                return failed_update(self.name, err.detail, raw_status="501")
            raise
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ProviderError(
                ErrorKind.NOT_FOUND,
                f"{self.name} has no record of this task.",
                provider=self.id,
                detail=body.get("msg") if isinstance(body, dict) else None,
            )
        try:
            record = Record.model_validate(data)
        except ValidationError as exc:
            raise self.unreadable("a task record", str(exc)[:200]) from exc
        return self.normalize(record)

    def normalize(self, record: Record) -> ProviderUpdate:
        update = self._status_update(record)
        credits, rate = record.credits(), self.config.usd_per_credit
        if update.status.terminal and credits is not None and rate is not None:
            update.cost_usd = round(credits * rate, 4)
        return update

    def _status_update(self, record: Record) -> ProviderUpdate:
        state = (record.state or "").strip().lower()
        raw = record.state
        if state == "success":
            url, readable = record.result_url()
            if url:
                return ProviderUpdate(
                    status=TaskStatus.SUCCEEDED, progress=1.0, result_url=url, raw_status=raw
                )
            if not readable:
                return ProviderUpdate(
                    status=TaskStatus.FAILED,
                    raw_status=raw,
                    error_kind=ErrorKind.UNEXPECTED,
                    error=f"{self.name} says the task succeeded, but its result "
                    f"(resultJson: “{str(record.resultJson)[:200]}”) has no link this app can "
                    "read. Check the task on LiangXin's site.",
                )
            return ProviderUpdate(status=TaskStatus.RUNNING, progress=0.99, raw_status=raw)
        if state in ("fail", "failed", "error"):
            code = str(record.failCode) if record.failCode not in (None, "") else None
            reason = record.failMsg or (f"failure code {code}" if code else None)
            if reason and code and code not in reason:
                reason = f"{reason} (code {code})"
            return failed_update(self.name, reason, code=code, raw_status=raw)
        if state in ("waiting", "queuing", "queued", "pending"):
            return ProviderUpdate(status=TaskStatus.QUEUED, progress=0.0, raw_status=raw)
        progress = progress_fraction(record.progress)
        if state in ("generating", "running", "processing"):
            return ProviderUpdate(status=TaskStatus.RUNNING, progress=progress, raw_status=raw)
        status = TaskStatus.RUNNING if progress else TaskStatus.QUEUED
        return ProviderUpdate(status=status, progress=progress, raw_status=raw or "unknown")
