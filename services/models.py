"""Typed models shared by every layer (pydantic v2 at every boundary)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.errors import ErrorKind


def utcnow() -> datetime:
    return datetime.now(UTC)


# The owner of everything made without sign-in: the operator on this machine, the CLI.
LOCAL_OWNER = "local"


class TaskStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    # A create call whose outcome cannot be known (crash or timeout mid-request).
    # Shown to the user; never re-submitted on its own (that could charge twice).
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def pollable(self) -> bool:
        return self in (TaskStatus.QUEUED, TaskStatus.RUNNING)


TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED})


class ArchiveState(StrEnum):
    """Where saving a succeeded task's result stands (see services/lifecycle.py)."""

    PENDING = "pending"
    DONE = "done"
    GAVE_UP = "gave_up"  # a dead link or not a video: only the creator can try again
    BLOCKED = "blocked"  # a full disk: tried again now and then, and at once when asked


class MediaRole(StrEnum):
    DRIVING_VIDEO = "driving_video"
    CHARACTER_IMAGE = "character_image"
    CHARACTER_VIDEO = "character_video"


class TaskInputs(BaseModel):
    """What a task was made from: local paths (absolute) or http(s) URLs."""

    model_config = ConfigDict(extra="ignore")

    video: str
    image: str | None = None
    character_video: str | None = None

    def items(self) -> list[tuple[MediaRole, str]]:
        out = [(MediaRole.DRIVING_VIDEO, self.video)]
        if self.image:
            out.append((MediaRole.CHARACTER_IMAGE, self.image))
        if self.character_video:
            out.append((MediaRole.CHARACTER_VIDEO, self.character_video))
        return out


class TaskOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    expression_intensity: int | None = Field(default=None, ge=1, le=5)
    body_control: bool | None = None
    seed: int | None = Field(default=None, ge=0, le=4294967295)
    ratio: str | None = None
    # Runway's contentModeration.publicFigureThreshold: "low" is less strict about
    # recognisable public figures; "auto" is Runway's standard.
    public_figure_threshold: Literal["auto", "low"] | None = None

    @field_validator("ratio")
    @classmethod
    def _ratio_shape(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = v.split(":")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError("ratio must look like W:H, for example 1280:720")
        return v


def known_error_kind(value: Any) -> ErrorKind | None:
    """An error kind as stored or reported; a word this version does not know (a newer
    version's, an engine's) reads as unexpected rather than failing the whole task."""
    if value is None or value == "":
        return None
    try:
        return ErrorKind(value)
    except ValueError:
        return ErrorKind.UNEXPECTED


# Task.meta entries that never leave the server (the callback secret is the hook's password).
PRIVATE_META = frozenset({"hook_secret"})


class Task(BaseModel):
    """A task as stored and as printed by `reenact ... --json` (the task JSON contract)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    provider: str
    provider_task_id: str | None = None
    status: TaskStatus = TaskStatus.DRAFT
    progress: float = 0.0
    error: str | None = None
    error_kind: ErrorKind | None = None
    result_url: str | None = None
    result_path: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    run_id: str | None = None
    inputs: TaskInputs | None = None
    options: TaskOptions = Field(default_factory=TaskOptions)
    tracked: bool = False  # made elsewhere; followed here by its provider task id
    retry_of: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_poll_at: datetime | None = None  # when the next poll (or archive attempt) is due
    poll_failures: int = 0
    lease_owner: str | None = None  # who is polling or downloading it right now
    lease_until: datetime | None = None
    archive_state: ArchiveState | None = None
    cost_estimate: float | None = None  # US dollars, where the provider's price is known
    cost_usd: float | None = None  # US dollars the provider said it charged (None: said nothing)
    meta: dict[str, Any] = Field(default_factory=dict)
    owner: str = LOCAL_OWNER  # who may see and act on it (see services.store)

    @field_validator("error_kind", mode="before")
    @classmethod
    def _known_kind(cls, v: Any) -> Any:
        return known_error_kind(v)

    def public_json(self) -> dict[str, Any]:
        data = self.model_dump(
            mode="json",
            exclude={"next_poll_at", "poll_failures", "lease_owner", "lease_until"},
            exclude_none=False,
        )
        data["meta"] = {k: v for k, v in self.meta.items() if k not in PRIVATE_META}
        return data


def shown_progress(task: Task) -> float | None:
    """The progress every view shows for `task` (card, table, CLI, comparison), None for none.

    A task that ended without a result has no progress to show: the last number polled
    (a failure at 60 %) would read as work still done or to come. Done is always 100 %.
    """
    if task.status is TaskStatus.SUCCEEDED:
        return 1.0
    if task.status.terminal or task.status is TaskStatus.UNKNOWN:
        return None
    return max(0.0, min(1.0, task.progress or 0.0))


class TaskEvent(BaseModel):
    task_id: str
    at: datetime
    status: TaskStatus | None = None
    progress: float | None = None
    message: str


class Run(BaseModel):
    """The tasks of one submission (one per chosen provider), kept together for comparison."""

    id: str
    created_at: datetime
    inputs: TaskInputs
    options: TaskOptions = Field(default_factory=TaskOptions)
    providers: list[str] = Field(default_factory=list)
    owner: str = LOCAL_OWNER


class ProviderUpdate(BaseModel):
    """One poll's answer, normalized."""

    status: TaskStatus
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    result_url: str | None = None
    error: str | None = None  # the sentence to show, including the provider's own words
    error_kind: ErrorKind | None = None
    eta_seconds: float | None = None
    # What the provider says this task cost, in US dollars, where it reports one.
    cost_usd: float | None = Field(default=None, ge=0.0)
    raw_status: str | None = None  # the provider's own status word, for the event history

    @field_validator("error_kind", mode="before")
    @classmethod
    def _known_kind(cls, v: Any) -> Any:
        return known_error_kind(v)


class SizeCaps(BaseModel):
    """Byte limits per way of handing a file to a provider (None = no stated limit)."""

    url_image: int | None = None
    url_video: int | None = None
    data_uri_image: int | None = None
    data_uri_video: int | None = None
    upload_min: int | None = None
    upload_max: int | None = None


class ProviderCapabilities(BaseModel):
    """What a provider accepts and can do; media checks and the UI read this."""

    id: str
    name: str
    can_create: bool = True
    can_track: bool = True
    can_cancel: bool = False
    accepts_character_video: bool = False
    requires_image: bool = True
    options: frozenset[str] = frozenset()  # subset of TaskOptions field names
    ratios: tuple[str, ...] = ()  # allowed output ratios, W:H
    required_aspect: str | None = None  # e.g. "16:9": inputs must have this shape
    aspect_tolerance: float = 0.02
    reference_min_s: float | None = None
    reference_max_s: float | None = None
    needs_urls: bool = False  # only accepts http(s) URLs (or a served public URL)
    size_caps: SizeCaps = Field(default_factory=SizeCaps)
    cost_per_second_usd: float | None = None
    poll_interval_s: float = 5.0
    # A freshly created id may be unknown to the provider for a while (CometAPI's
    # task_not_exist): NOT_FOUND within this many seconds of creation means "still queued".
    not_found_grace_s: float = 0.0
    docs: str | None = None


class Availability(BaseModel):
    """Whether a provider can be used now, and if not, the sentence saying why."""

    available: bool
    reason: str | None = None
    key_source: str | None = None  # "env" | "secrets" | None: where the key came from


class OutputFacts(BaseModel):
    """What an archived result file really is (probed from it, not taken from the provider)."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration_s: float | None = None
    size_bytes: int | None = None
    has_audio: bool | None = None
    codec: str | None = None


class TaskAnalysis(BaseModel):
    """The app's own measurements of one task's result (see services.compare.analysis)."""

    task_id: str
    state: str  # running | done | failed
    result_path: str | None = None
    output: OutputFacts | None = None
    fidelity: dict[str, Any] | None = None  # services.compare.fidelity.Fidelity, dumped
    error: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Vote(BaseModel):
    """A judgement on a comparison run: the winner beat every other contender."""

    run_id: str
    winner: str
    contenders: list[str] = Field(default_factory=list)
    note: str | None = None
    blind: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class BatchLine(BaseModel):
    """One row of a batch: its inputs at its providers, which become one run (services/batch)."""

    model_config = ConfigDict(extra="ignore")

    row: int  # as the creator numbers it: the CSV's line (the header is line 1), or the page's
    video: str  # an absolute path or an http(s) link (as given, when it could not be read)
    image: str | None = None
    providers: list[str] = Field(default_factory=list)
    options: TaskOptions = Field(default_factory=TaskOptions)
    problems: list[str] = Field(default_factory=list)  # why it is not sent; empty: it can go
    notes: list[str] = Field(default_factory=list)  # warnings: shown, never blocking
    estimates: dict[str, float | None] = Field(default_factory=dict)  # USD per provider


class Batch(BaseModel):
    """Many rows submitted and confirmed once; each row that passed its checks is a run."""

    id: str
    created_at: datetime
    owner: str = LOCAL_OWNER
    name: str
    lines: list[BatchLine] = Field(default_factory=list)
    estimate_usd: float | None = None  # the priced part of the total shown at confirmation
