"""The durable store: tasks, runs (one submission's tasks) and each task's event history.

SQLAlchemy over any URL; the default is a SQLite file in WAL mode so the app, its monitor and
CLI processes can read and write the same file at once. Every write commits before returning:
callers persist *before* acting on a provider.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from services import schema
from services.config import Settings
from services.lifecycle import Change, QuietPoll
from services.models import (
    LOCAL_OWNER,
    TERMINAL,
    ArchiveState,
    Batch,
    BatchLine,
    OutputFacts,
    Run,
    Task,
    TaskAnalysis,
    TaskEvent,
    TaskInputs,
    TaskOptions,
    TaskStatus,
    Vote,
    known_error_kind,
    utcnow,
)


def new_id() -> str:
    return uuid.uuid4().hex[:12]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the backend keeps (SQLite keeps naive)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    providers: Mapped[list[str]] = mapped_column(JSON, default=list)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    owner: Mapped[str] = mapped_column(String(320), default=LOCAL_OWNER, index=True)
    # A batch's row becomes a run: which batch, and which of its rows (services/batch.py).
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="SET NULL", name="fk_runs_batch_id")
    )
    batch_row: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_runs_batch", "batch_id", "batch_row"),)


class BatchRow(Base):
    """Many rows submitted and confirmed once (services/batch.py). `lines` keeps every row as
    planned, with the sentences that kept a row back; the runs say what was sent."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    owner: Mapped[str] = mapped_column(String(320), default=LOCAL_OWNER)
    name: Mapped[str] = mapped_column(String(200))
    # The same batch sent again finds this row: nothing is sent twice.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    estimate_usd: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_batches_owner_created", "owner", "created_at"),)


# Pollable: a provider is following the task. The claim's index is partial on exactly this,
# and the claim repeats it with literal statuses (bound values would hide from either
# planner that the index applies).
_POLLABLE_SQL = "status IN ('queued', 'running') AND provider_task_id IS NOT NULL"


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_task_id: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    result_url: Mapped[str | None] = mapped_column(Text)
    result_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    poll_failures: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tracked: Mapped[int] = mapped_column(Integer, default=0)
    retry_of: Mapped[str | None] = mapped_column(String(32))
    cost_estimate: Mapped[float | None] = mapped_column(Float)
    # What the provider said it charged (US dollars); NULL where it said nothing.
    cost_usd: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # One submission intent = one task: a repeated click or rerun finds the same row.
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    # Who may list, play, download, cancel, retry or delete it (a signed-in user's email;
    # "local" for the operator on this machine, the CLI and everything before sign-in).
    owner: Mapped[str] = mapped_column(String(320), default=LOCAL_OWNER)
    # Who holds a poll or archive claim on it, and until when (then anyone may take it).
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # NULL while no result is expected; then pending, done, gave_up or blocked.
    archive_state: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_tasks_created", "created_at"),
        Index("ix_tasks_status_poll", "status", "next_poll_at"),
        Index("ix_tasks_provider_ptid", "provider", "provider_task_id"),
        Index("ix_tasks_run", "run_id"),
        Index("ix_tasks_owner_created", "owner", "created_at"),
        Index("ix_tasks_archive", "archive_state", "lease_until"),
        # The monitor's claim (services/migrations/versions/0005_claim_index.py).
        Index(
            "ix_tasks_due",
            "next_poll_at",
            postgresql_where=text(_POLLABLE_SQL),
            sqlite_where=text(_POLLABLE_SQL),
        ),
    )


class AnalysisRow(Base):
    """What the app measured of a task's archived result (its specs and motion fidelity).
    Computed in the background once the result is on disk, never on a page render."""

    __tablename__ = "task_analyses"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))  # running | done | failed
    result_path: Mapped[str | None] = mapped_column(Text)  # the file it describes
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    fidelity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VoteRow(Base):
    """A creator's judgement on one run: which provider's result won (one vote per run; a
    new vote replaces it)."""

    __tablename__ = "votes"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    winner: Mapped[str] = mapped_column(String(32))
    # The providers the winner was judged against (those with a result at voting time).
    contenders: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)
    blind: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UploadRow(Base):
    """An owner's upload or fetched link (uploads/<digest>/<name>), for quotas and cleanup.
    The same file uploaded by two people is stored once and counted for each."""

    __tablename__ = "uploads"

    owner: Mapped[str] = mapped_column(String(320), primary_key=True)
    path: Mapped[str] = mapped_column(String(600), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PreferenceRow(Base):
    """Small creator settings kept with the data (e.g. their price per second per provider)."""

    __tablename__ = "preferences"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventRow(Base):
    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str | None] = mapped_column(String(16))
    progress: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)


class RenderJobRow(Base):
    """A local-engine render waiting for, or taken by, a `reenact worker` (external render
    workers; services/engine/render_queue.py). Leased like tasks: lease_owner/lease_until."""

    __tablename__ = "render_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int | None] = mapped_column(Integer)
    render_fps: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(32))
    result: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_render_jobs_status", "status", "lease_until"),)


_TASK_FIELDS = frozenset(Task.model_fields) - {"inputs", "options", "tracked"}


def _to_task(row: TaskRow) -> Task:
    return Task(
        id=row.id,
        provider=row.provider,
        provider_task_id=row.provider_task_id,
        status=TaskStatus(row.status),
        progress=row.progress or 0.0,
        error=row.error,
        error_kind=known_error_kind(row.error_kind),
        result_url=row.result_url,
        result_path=row.result_path,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        next_poll_at=row.next_poll_at,
        poll_failures=row.poll_failures or 0,
        run_id=row.run_id,
        inputs=TaskInputs.model_validate(row.inputs) if row.inputs else None,
        options=TaskOptions.model_validate(row.options or {}),
        tracked=bool(row.tracked),
        retry_of=row.retry_of,
        cost_estimate=row.cost_estimate,
        cost_usd=row.cost_usd,
        meta=row.meta or {},
        owner=row.owner or LOCAL_OWNER,
        lease_owner=row.lease_owner,
        lease_until=row.lease_until,
        archive_state=ArchiveState(row.archive_state) if row.archive_state else None,
    )


def _light_task(row: RowMapping) -> Task:
    """A task from a core row that carries no inputs/options (see Store.claim_due)."""
    return Task(
        **{k: v for k, v in row.items() if k in _LIGHT_FIELDS and v is not None},
        tracked=bool(row["tracked"]),
    )


_LIGHT_FIELDS = frozenset(Task.model_fields) - {"inputs", "options", "tracked"}


def _to_run(row: RunRow) -> Run:
    return Run(
        id=row.id,
        created_at=row.created_at,
        inputs=TaskInputs.model_validate(row.inputs),
        options=TaskOptions.model_validate(row.options or {}),
        providers=list(row.providers or []),
        owner=row.owner or LOCAL_OWNER,
    )


def _to_batch(row: BatchRow) -> Batch:
    return Batch(
        id=row.id,
        created_at=row.created_at,
        owner=row.owner or LOCAL_OWNER,
        name=row.name,
        lines=[BatchLine.model_validate(line) for line in row.lines or []],
        estimate_usd=row.estimate_usd,
    )


def _status_values(status: TaskStatus | Iterable[TaskStatus] | None) -> list[str] | None:
    if status is None:
        return None
    if isinstance(status, TaskStatus):
        return [status.value]
    return [TaskStatus(s).value for s in status]


class Store:
    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 5) -> None:
        self.url = url
        self.engine = _make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        schema.upgrade(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        # PostgreSQL takes due tasks with FOR UPDATE SKIP LOCKED in one statement (see
        # _CLAIM_SKIP_LOCKED); SQLite, whose writers queue on one lock, picks then updates.
        self._skip_locked = self.engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, settings: Settings) -> Store:
        settings.ensure_dirs()
        return cls(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )

    def close(self) -> None:
        self.engine.dispose()

    # ---- runs ------------------------------------------------------------------------------
    def create_run(
        self,
        inputs: TaskInputs,
        options: TaskOptions,
        providers: Sequence[str],
        *,
        idempotency_key: str | None = None,
        owner: str = LOCAL_OWNER,
        batch_id: str | None = None,
        batch_row: int | None = None,
    ) -> tuple[Run, bool]:
        """Return (run, created). With a key already used, the earlier run comes back."""
        row = RunRow(
            id=new_id(),
            created_at=utcnow(),
            inputs=inputs.model_dump(mode="json"),
            options=options.model_dump(mode="json"),
            providers=list(providers),
            idempotency_key=idempotency_key,
            owner=owner,
            batch_id=batch_id,
            batch_row=batch_row,
        )
        with self._session() as s:
            s.add(row)
            try:
                s.commit()
                return _to_run(row), True
            except IntegrityError:
                s.rollback()
        existing = self.run_by_key(idempotency_key)
        assert existing is not None
        return existing, False

    def run_by_key(self, key: str | None) -> Run | None:
        with self._session() as s:
            row = s.scalar(select(RunRow).where(RunRow.idempotency_key == key))
            return _to_run(row) if row else None

    def get_run(self, run_id: str) -> Run | None:
        with self._session() as s:
            row = s.get(RunRow, run_id)
            return _to_run(row) if row else None

    def list_runs(self, limit: int = 50, offset: int = 0) -> list[Run]:
        with self._session() as s:
            rows = s.scalars(
                select(RunRow).order_by(RunRow.created_at.desc()).limit(limit).offset(offset)
            )
            return [_to_run(r) for r in rows]

    @staticmethod
    def _comparisons(stmt: Any, provider: str | None, owner: str | None) -> Any:
        """Runs sent to two or more providers (a comparison), optionally one that included
        `provider`, optionally only `owner`'s."""
        stmt = stmt.where(func.json_array_length(RunRow.providers) >= 2)
        if owner is not None:
            stmt = stmt.where(RunRow.owner == owner)
        if provider:
            stmt = stmt.where(
                RunRow.id.in_(select(TaskRow.run_id).where(TaskRow.provider == provider))
            )
        return stmt

    def list_comparisons(
        self,
        *,
        provider: str | None = None,
        owner: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[Run]:
        """Comparison runs, newest first (`owner`: only theirs; None: everyone's)."""
        with self._session() as s:
            stmt = self._comparisons(select(RunRow), provider, owner)
            stmt = stmt.order_by(RunRow.created_at.desc(), RunRow.id).limit(limit).offset(offset)
            return [_to_run(r) for r in s.scalars(stmt)]

    def count_comparisons(self, *, provider: str | None = None, owner: str | None = None) -> int:
        with self._session() as s:
            stmt = self._comparisons(select(func.count()).select_from(RunRow), provider, owner)
            return int(s.scalar(stmt) or 0)

    def run_tasks(self, run_id: str) -> list[Task]:
        """A run's tasks (retries included): in the order its providers were chosen, then
        oldest first."""
        with self._session() as s:
            run = s.get(RunRow, run_id)
            rows = s.scalars(
                select(TaskRow)
                .where(TaskRow.run_id == run_id)
                .order_by(TaskRow.created_at, TaskRow.id)
            )
            tasks = [_to_task(r) for r in rows]
        order = {p: i for i, p in enumerate(run.providers if run else [])}
        return sorted(tasks, key=lambda t: order.get(t.provider, len(order)))

    # ---- batches ---------------------------------------------------------------------------
    def create_batch(
        self,
        name: str,
        lines: Sequence[BatchLine],
        *,
        idempotency_key: str,
        estimate_usd: float | None = None,
        owner: str = LOCAL_OWNER,
    ) -> tuple[Batch, bool]:
        """Return (batch, created). With a key already used, the earlier batch comes back
        with its rows as planned now (a row fixed since may go this time)."""
        row = BatchRow(
            id=new_id(),
            created_at=utcnow(),
            owner=owner,
            name=name[:200],
            idempotency_key=idempotency_key,
            lines=[line.model_dump(mode="json") for line in lines],
            estimate_usd=estimate_usd,
        )
        with self._session() as s:
            s.add(row)
            try:
                s.commit()
                return _to_batch(row), True
            except IntegrityError:
                s.rollback()
            existing = s.scalar(select(BatchRow).where(BatchRow.idempotency_key == idempotency_key))
            assert existing is not None
            existing.lines = [line.model_dump(mode="json") for line in lines]
            existing.estimate_usd = estimate_usd
            s.commit()
            return _to_batch(existing), False

    def batch_by_key(self, idempotency_key: str) -> Batch | None:
        with self._session() as s:
            row = s.scalar(select(BatchRow).where(BatchRow.idempotency_key == idempotency_key))
            return _to_batch(row) if row else None

    def get_batch(self, batch_id: str) -> Batch | None:
        with self._session() as s:
            row = s.get(BatchRow, batch_id)
            return _to_batch(row) if row else None

    def set_batch_lines(self, batch_id: str, lines: Sequence[BatchLine]) -> None:
        with self._session() as s:
            s.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id)
                .values(lines=[line.model_dump(mode="json") for line in lines])
            )
            s.commit()

    def list_batches(
        self, *, owner: str | None = None, limit: int = 20, offset: int = 0
    ) -> list[Batch]:
        """Newest first (`owner`: only theirs; None: everyone's)."""
        with self._session() as s:
            stmt = select(BatchRow)
            if owner is not None:
                stmt = stmt.where(BatchRow.owner == owner)
            stmt = stmt.order_by(BatchRow.created_at.desc(), BatchRow.id).limit(limit)
            return [_to_batch(r) for r in s.scalars(stmt.offset(offset))]

    def batch_runs(self, batch_id: str) -> dict[int, Run]:
        """The run each sent row became, by row number."""
        with self._session() as s:
            rows = s.scalars(select(RunRow).where(RunRow.batch_id == batch_id))
            return {r.batch_row: _to_run(r) for r in rows if r.batch_row is not None}

    def batch_tasks(self, batch_id: str) -> list[tuple[int, Task]]:
        """(row number, task) for every task of the batch's runs (retries included), in one
        read: rows in order, then the order tasks were made. Loaded without inputs/options
        (the batch's row says them): a running batch's view reads this every second."""
        runs = typing.cast(Table, RunRow.__table__)  # declarative tables are Tables
        stmt = (
            select(runs.c.batch_row, *_LIGHT_COLUMNS)
            .join(runs, _T.c.run_id == runs.c.id)
            .where(runs.c.batch_id == batch_id)
            .order_by(runs.c.batch_row, _T.c.created_at, _T.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [(int(r["batch_row"]), _light_task(r)) for r in rows if r["batch_row"] is not None]

    def recent_durations(
        self, providers: Sequence[str], *, per_provider: int = 20
    ) -> dict[str, list[float]]:
        """Seconds from submit to done of each provider's latest successes (newest first):
        what the batch view's ETA expects of a task still to come."""
        out: dict[str, list[float]] = {}
        with self._session() as s:
            for provider in dict.fromkeys(providers):
                rows = s.execute(
                    select(TaskRow.created_at, TaskRow.finished_at)
                    .where(
                        TaskRow.provider == provider,
                        TaskRow.status == TaskStatus.SUCCEEDED.value,
                        TaskRow.finished_at.is_not(None),
                    )
                    .order_by(TaskRow.finished_at.desc())
                    .limit(per_provider)
                )
                out[provider] = [
                    max(0.0, (done - made).total_seconds()) for made, done in rows if done
                ]
        return out

    # ---- what the app measured of results ---------------------------------------------------
    def claim_analysis(self, task_id: str, result_path: str, *, lease_s: float) -> bool:
        """Take the analysis of this result unless it is done (for this very file) or another
        process holds a live lease on it. True = the caller computes it now."""
        now = utcnow()
        until = now + timedelta(seconds=lease_s)
        a = _ANALYSES
        with self.engine.connect() as conn:
            try:
                conn.execute(
                    insert(a).values(
                        task_id=task_id,
                        state="running",
                        result_path=result_path,
                        lease_until=until,
                        updated_at=now,
                    )
                )
                conn.commit()
                return True
            except IntegrityError:
                conn.rollback()
            except Exception:
                conn.rollback()
                raise
            taken = conn.execute(
                update(a)
                .where(
                    a.c.task_id == task_id,
                    or_(
                        a.c.result_path.is_(None),
                        a.c.result_path != result_path,
                        a.c.state != "done",
                    ),
                    or_(a.c.lease_until.is_(None), a.c.lease_until < now),
                )
                .values(state="running", result_path=result_path, lease_until=until, updated_at=now)
            ).rowcount
            conn.commit()
            return taken == 1

    def save_analysis(self, analysis: TaskAnalysis) -> None:
        a = _ANALYSES
        values = {
            "state": analysis.state,
            "result_path": analysis.result_path,
            "output": analysis.output.model_dump(mode="json") if analysis.output else None,
            "fidelity": analysis.fidelity,
            "error": analysis.error,
            "lease_until": None,
            "updated_at": utcnow(),
        }
        with self.engine.connect() as conn:
            done = conn.execute(
                update(a).where(a.c.task_id == analysis.task_id).values(**values)
            ).rowcount
            if not done:
                conn.execute(insert(a).values(task_id=analysis.task_id, **values))
            conn.commit()

    def analyses(self, task_ids: Sequence[str]) -> dict[str, TaskAnalysis]:
        if not task_ids:
            return {}
        with self._session() as s:
            rows = s.scalars(select(AnalysisRow).where(AnalysisRow.task_id.in_(task_ids)))
            return {
                r.task_id: TaskAnalysis(
                    task_id=r.task_id,
                    state=r.state,
                    result_path=r.result_path,
                    output=OutputFacts.model_validate(r.output) if r.output else None,
                    fidelity=r.fidelity,
                    error=r.error,
                    updated_at=r.updated_at,
                )
                for r in rows
            }

    def unanalysed(self, limit: int = 50) -> list[Task]:
        """Archived successes with no finished analysis of their current file (and no live
        lease): the monitor's backlog after a restart."""
        now = utcnow()
        with self._session() as s:
            stmt = (
                select(TaskRow)
                .outerjoin(AnalysisRow, AnalysisRow.task_id == TaskRow.id)
                .where(
                    TaskRow.status == TaskStatus.SUCCEEDED.value,
                    TaskRow.result_path.is_not(None),
                    or_(
                        AnalysisRow.task_id.is_(None),
                        and_(
                            AnalysisRow.state == "running",
                            or_(AnalysisRow.lease_until.is_(None), AnalysisRow.lease_until < now),
                        ),
                        and_(
                            AnalysisRow.state != "running",
                            AnalysisRow.result_path != TaskRow.result_path,
                        ),
                    ),
                )
                .order_by(TaskRow.finished_at)
                .limit(limit)
            )
            return [_to_task(r) for r in s.scalars(stmt)]

    def first_status_at(self, task_ids: Sequence[str], status: TaskStatus) -> dict[str, datetime]:
        """When each task first entered `status` (from its event history)."""
        if not task_ids:
            return {}
        with self._session() as s:
            rows = s.execute(
                select(EventRow.task_id, func.min(EventRow.at))
                .where(EventRow.task_id.in_(task_ids), EventRow.status == status.value)
                .group_by(EventRow.task_id)
            )
            return {
                tid: at.replace(tzinfo=UTC) if at.tzinfo is None else at
                for tid, at in rows
                if at is not None
            }

    # ---- votes -----------------------------------------------------------------------------
    def save_vote(self, vote: Vote) -> Vote:
        """One vote per run: a new one replaces the old."""
        with self._session() as s:
            s.execute(delete(VoteRow).where(VoteRow.run_id == vote.run_id))
            s.add(
                VoteRow(
                    run_id=vote.run_id,
                    winner=vote.winner,
                    contenders=list(vote.contenders),
                    note=vote.note,
                    blind=int(vote.blind),
                    created_at=vote.created_at,
                )
            )
            s.commit()
        return vote

    def votes(
        self, run_ids: Sequence[str] | None = None, *, owner: str | None = None
    ) -> list[Vote]:
        """Votes, oldest first (`owner`: only on their runs)."""
        with self._session() as s:
            stmt = select(VoteRow).order_by(VoteRow.created_at)
            if run_ids is not None:
                stmt = stmt.where(VoteRow.run_id.in_(run_ids))
            if owner is not None:
                stmt = stmt.where(
                    VoteRow.run_id.in_(select(RunRow.id).where(RunRow.owner == owner))
                )
            return [
                Vote(
                    run_id=r.run_id,
                    winner=r.winner,
                    contenders=list(r.contenders or []),
                    note=r.note,
                    blind=bool(r.blind),
                    created_at=r.created_at,
                )
                for r in s.scalars(stmt)
            ]

    # ---- preferences -----------------------------------------------------------------------
    def get_pref(self, key: str, default: Any = None) -> Any:
        with self._session() as s:
            row = s.get(PreferenceRow, key)
            return default if row is None else row.value

    def set_pref(self, key: str, value: Any) -> None:
        with self._session() as s:
            row = s.get(PreferenceRow, key)
            if value is None:
                if row is not None:
                    s.delete(row)
            elif row is None:
                s.add(PreferenceRow(key=key, value=value, updated_at=utcnow()))
            else:
                row.value = value
                row.updated_at = utcnow()
            s.commit()

    # ---- tasks -----------------------------------------------------------------------------
    def create_task(
        self,
        provider: str,
        *,
        status: TaskStatus = TaskStatus.DRAFT,
        inputs: TaskInputs | None = None,
        options: TaskOptions | None = None,
        run_id: str | None = None,
        provider_task_id: str | None = None,
        tracked: bool = False,
        retry_of: str | None = None,
        cost_estimate: float | None = None,
        idempotency_key: str | None = None,
        meta: dict[str, Any] | None = None,
        message: str | None = None,
        owner: str = LOCAL_OWNER,
    ) -> tuple[Task, bool]:
        """Insert a task and its first event. Return (task, created). A tracked task (made
        elsewhere, `queued` with its provider id) is due for its first poll at once.

        With an idempotency key that already exists, nothing is written and the earlier task
        comes back with created=False: only the caller that created the row may submit it.
        """
        now = utcnow()
        polled = tracked and status is TaskStatus.QUEUED
        row = TaskRow(
            id=new_id(),
            provider=provider,
            provider_task_id=provider_task_id,
            status=status.value,
            progress=0.0,
            created_at=now,
            updated_at=now,
            started_at=now if polled else None,
            next_poll_at=now if polled else None,
            run_id=run_id,
            inputs=inputs.model_dump(mode="json") if inputs else None,
            options=(options or TaskOptions()).model_dump(mode="json"),
            tracked=int(tracked),
            retry_of=retry_of,
            cost_estimate=cost_estimate,
            idempotency_key=idempotency_key,
            meta=meta or {},
            owner=owner,
        )
        with self._session() as s:
            s.add(row)
            try:
                s.flush()
                s.add(
                    EventRow(
                        task_id=row.id,
                        at=now,
                        status=status.value,
                        progress=0.0,
                        message=message or f"Task created ({status.value}).",
                    )
                )
                s.commit()
                return _to_task(row), True
            except IntegrityError:
                s.rollback()
                if idempotency_key is None:
                    raise  # not a repeated submit: the database's own reason says what
        existing = self.task_by_key(idempotency_key)
        assert existing is not None
        return existing, False

    def task_by_key(self, key: str) -> Task | None:
        with self._session() as s:
            row = s.scalar(select(TaskRow).where(TaskRow.idempotency_key == key))
            return _to_task(row) if row else None

    def get_task(self, task_id: str) -> Task | None:
        with self._session() as s:
            row = s.get(TaskRow, task_id)
            return _to_task(row) if row else None

    def get_tasks(self, task_ids: Sequence[str]) -> list[Task]:
        """Several tasks in one read (a page's cards), in the order asked."""
        if not task_ids:
            return []
        with self._session() as s:
            rows = {r.id: r for r in s.scalars(select(TaskRow).where(TaskRow.id.in_(task_ids)))}
        return [_to_task(rows[i]) for i in task_ids if i in rows]

    def find_task(self, provider: str, provider_task_id: str) -> Task | None:
        with self._session() as s:
            row = s.scalar(
                select(TaskRow)
                .where(TaskRow.provider == provider, TaskRow.provider_task_id == provider_task_id)
                .order_by(TaskRow.created_at)
                .limit(1)
            )
            return _to_task(row) if row else None

    def update_task(
        self,
        task_id: str,
        *,
        message: str | None = None,
        expect_status: TaskStatus | Iterable[TaskStatus] | None = None,
        expect: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Task | None:
        """Write fields (and an event when the status changes or a message is given).

        Status, schedule, lease and archive columns are the lifecycle's: the app moves them
        only through `apply(change)` with a Change from services/lifecycle.py. Called
        directly, this is for other fields and for tests that set a task up in some state.

        With `expect_status`, the write only happens if the row is still in one of those states
        (compare-and-set, so two pollers cannot both move a task); returns None if it was not.
        `expect` adds more compare-and-set columns ({"result_path": None, "next_poll_at": t}).
        """
        unknown = set(fields) - _TASK_FIELDS - {"meta"}
        if unknown:
            raise ValueError(f"unknown task fields: {sorted(unknown)}")
        now = utcnow()
        values: dict[str, Any] = {"updated_at": now}
        for k, v in fields.items():
            values[k] = v.value if isinstance(v, TaskStatus) else v
        with self._session() as s:
            stmt = update(TaskRow).where(TaskRow.id == task_id)
            allowed = _status_values(expect_status)
            if allowed is not None:
                stmt = stmt.where(TaskRow.status.in_(allowed))
            for name, value in (expect or {}).items():
                column = getattr(TaskRow, name)
                stmt = stmt.where(column.is_(None) if value is None else column == value)
            old = s.scalar(select(TaskRow.status).where(TaskRow.id == task_id))
            if old is None:
                return None
            result = s.execute(stmt.values(**values))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                s.rollback()
                return None
            new_status = values.get("status")
            if message or (new_status and new_status != old):
                s.add(
                    EventRow(
                        task_id=task_id,
                        at=now,
                        status=new_status or old,
                        progress=values.get("progress"),
                        message=message or f"{old} → {new_status}",
                    )
                )
            s.commit()
            row = s.get(TaskRow, task_id, populate_existing=True)
            return _to_task(row) if row else None

    def apply(self, change: Change) -> Task | None:
        """One lifecycle change, compare-and-set (services/lifecycle.py makes them): the task
        as written, or None if it had moved on meanwhile."""
        return self.update_task(
            change.task_id,
            message=change.message,
            expect_status=change.expect_status,
            expect=change.expect,
            **change.fields,
        )

    def apply_changes(
        self, changes: Sequence[Change], polls: Sequence[QuietPoll] = ()
    ) -> list[bool]:
        """Many lifecycle changes (each with its event), then `polls` (record_polls), in one
        transaction: a monitor pass's writes, one commit. Returns, per change, whether it
        applied."""
        if not changes and not polls:
            return []
        with self.engine.connect() as conn:
            applied = self._apply_changes_on(conn, changes, utcnow()) if changes else []
            if polls:
                self._record_polls_on(conn, polls)
            conn.commit()
        return applied

    def _apply_changes_on(
        self, conn: Connection, changes: Sequence[Change], now: datetime
    ) -> list[bool]:
        if self._skip_locked:
            # PostgreSQL: all the changes and their events in one statement (an UPDATE per
            # change and an INSERT per event cost a round trip each: 3 ms a pass instead
            # of 1). Changes to one task follow each other in separate statements, so a
            # later one sees the earlier one's write, as one by one.
            applied = [False] * len(changes)
            for run in _runs_of_distinct_tasks(changes):
                stmt, arrays = _pg_changes(run, now)
                for index in conn.scalars(stmt, arrays):
                    applied[index] = True
            return applied
        t, e = _T, _EVENTS
        done: list[bool] = []
        for ch in changes:
            values = _change_values(ch, now)
            stmt = update(t).where(t.c.id == ch.task_id)
            allowed = _status_values(ch.expect_status)
            if allowed is not None:
                stmt = stmt.where(t.c.status.in_(allowed))
            for name, value in (ch.expect or {}).items():
                col = t.c[name]
                stmt = stmt.where(col.is_(None) if value is None else col == value)
            ok = conn.execute(stmt.values(**values)).rowcount == 1
            done.append(ok)
            if ok and ch.message:
                conn.execute(
                    insert(e).values(
                        task_id=ch.task_id,
                        at=now,
                        status=_event_status(ch, values),
                        progress=values.get("progress"),
                        message=ch.message,
                    )
                )
        return done

    def add_event(self, task_id: str, message: str) -> None:
        with self._session() as s:
            s.add(EventRow(task_id=task_id, at=utcnow(), message=message))
            s.commit()

    def events(self, task_id: str) -> list[TaskEvent]:
        with self._session() as s:
            rows = s.scalars(
                select(EventRow).where(EventRow.task_id == task_id).order_by(EventRow.id)
            )
            return [
                TaskEvent(
                    task_id=r.task_id,
                    at=r.at,
                    status=TaskStatus(r.status) if r.status else None,
                    progress=r.progress,
                    message=r.message,
                )
                for r in rows
            ]

    def _filtered(
        self,
        stmt: Any,
        provider: str | Sequence[str] | None,
        status: Any,
        owner: str | None = None,
    ) -> Any:
        if owner is not None:
            stmt = stmt.where(TaskRow.owner == owner)
        if provider:
            providers = [provider] if isinstance(provider, str) else list(provider)
            stmt = stmt.where(TaskRow.provider.in_(providers))
        statuses = _status_values(status)
        if statuses is not None:
            stmt = stmt.where(TaskRow.status.in_(statuses))
        return stmt

    def list_tasks(
        self,
        *,
        provider: str | Sequence[str] | None = None,
        status: TaskStatus | Iterable[TaskStatus] | None = None,
        owner: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Task]:
        """Newest first (`owner`: only theirs; None: everyone's)."""
        with self._session() as s:
            stmt = self._filtered(select(TaskRow), provider, status, owner)
            stmt = stmt.order_by(TaskRow.created_at.desc(), TaskRow.id).limit(limit).offset(offset)
            return [_to_task(r) for r in s.scalars(stmt)]

    def count_tasks(
        self,
        *,
        provider: str | Sequence[str] | None = None,
        status: TaskStatus | Iterable[TaskStatus] | None = None,
        owner: str | None = None,
    ) -> int:
        with self._session() as s:
            stmt = self._filtered(
                select(func.count()).select_from(TaskRow), provider, status, owner
            )
            return int(s.scalar(stmt) or 0)

    def active_tasks(self) -> list[Task]:
        """Every task that is not terminal (including submitting/unknown)."""
        with self._session() as s:
            stmt = select(TaskRow).where(TaskRow.status.not_in([t.value for t in TERMINAL]))
            return [_to_task(r) for r in s.scalars(stmt.order_by(TaskRow.created_at))]

    def claim_due(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        holder: str,
        limit: int = 1000,
        task_ids: Sequence[str] | None = None,
    ) -> list[Task]:
        """Atomically take the due pollable tasks under a lease (`lease_owner`/`lease_until`),
        so another monitor on the same database (the app's and a CLI's) skips them meanwhile;
        a holder that dies loses them when the lease runs out. The returned tasks are this
        caller's alone to poll, in no particular order (with `limit`, the most overdue are
        the ones taken). They are loaded without `inputs`/`options`: polling never
        needs them, and this runs for every task every interval."""
        if task_ids is not None and not task_ids:
            return []
        params: dict[str, Any] = {"now": now, "limit": limit}
        if self._skip_locked:
            return self._claim_skip_locked(params, lease_until, holder, task_ids)
        pick = _PICK_DUE
        if task_ids is not None:
            pick, params["among"] = _PICK_DUE_AMONG, list(task_ids)
        with self.engine.connect() as conn:
            # A read first keeps the common idle tick free of write transactions.
            ids = list(conn.scalars(pick, params))
            if not ids:
                return []
            # The due conditions are repeated in the UPDATE: whoever writes first wins a row.
            rows = (
                conn.execute(
                    _CLAIM,
                    {"ids": ids, "now": now, "lease_until": lease_until, "holder": holder},
                )
                .mappings()
                .all()
            )
            conn.commit()
        return [_light_task(r) for r in rows]

    def _claim_skip_locked(
        self,
        params: dict[str, Any],
        lease_until: datetime,
        holder: str,
        task_ids: Sequence[str] | None,
    ) -> list[Task]:
        """One statement: rows another monitor is claiming right now are skipped rather than
        waited for, so replicas claiming at once take disjoint shares instead of queueing."""
        stmt = _CLAIM_SKIP_LOCKED
        params |= {"lease_until": lease_until, "holder": holder}
        if task_ids is not None:
            stmt, params["among"] = _CLAIM_SKIP_LOCKED_AMONG, list(task_ids)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt, params).mappings().all()
            conn.commit()
        return [_light_task(r) for r in rows]

    def record_polls(self, polls: Sequence[QuietPoll]) -> None:
        """Write many polls that did not change a status, in one transaction (the monitor's
        common case), releasing their leases. A poll is skipped if its task moved meanwhile
        or its lease was taken over."""
        self.apply_changes((), polls)

    def _record_polls_on(self, conn: Connection, polls: Sequence[QuietPoll]) -> None:
        if self._skip_locked:
            # PostgreSQL: one statement over arrays; an executemany of 25 UPDATEs costs a
            # round trip each (7 ms a pass instead of 1).
            def naive(at: datetime) -> datetime:  # the column's own form (UTCDateTime)
                return at.astimezone(UTC).replace(tzinfo=None)

            arrays: dict[str, list[Any]] = {
                "id": [p.task_id for p in polls],
                "status": [p.status.value for p in polls],
                "holder": [p.holder for p in polls],
                "progress": [p.progress for p in polls],
                "next_poll_at": [naive(p.next_poll_at) for p in polls],
                "poll_failures": [p.poll_failures for p in polls],
                "error": [p.error for p in polls],
                "error_kind": [str(p.error_kind) if p.error_kind else None for p in polls],
                "updated_at": [naive(p.updated_at) for p in polls],
            }
            conn.execute(_RECORD_POLLS_PG, arrays)
            return
        params = [
            {
                "b_id": p.task_id,
                "b_status": p.status.value,
                "b_holder": p.holder,
                "b_progress": p.progress,
                "b_next_poll_at": p.next_poll_at,
                "b_poll_failures": p.poll_failures,
                "b_error": p.error,
                "b_error_kind": p.error_kind,
                "b_updated_at": p.updated_at,
            }
            for p in polls
        ]
        conn.execute(_RECORD_POLL, params)

    def next_due_at(self) -> datetime | None:
        """When the earliest pollable task is next due (the monitor sleeps until then)."""
        with self.engine.connect() as conn:
            return conn.scalar(_NEXT_DUE)

    def archives_due(
        self,
        now: datetime,
        *,
        task_ids: Sequence[str] | None = None,
        taken_over: Callable[[str], bool] | None = None,
    ) -> list[Task]:
        """Succeeded tasks whose result is not on disk yet and whose next archive attempt is
        due (a crash, a failed download, a full disk), light (no inputs/options). Whether a
        live holder still has one is for `lifecycle.claim_archive` to say; with `taken_over`
        (asked once per holder, not per task), claims that have not run out are left out
        unless it says their holder's may be taken: in a burst, the thousands that live
        replicas are archiving are not loaded at every sweep."""
        t = _T
        due = [
            t.c.status == TaskStatus.SUCCEEDED.value,
            t.c.result_path.is_(None),
            or_(
                t.c.archive_state.is_(None),
                t.c.archive_state.in_([ArchiveState.PENDING.value, ArchiveState.BLOCKED.value]),
            ),
            or_(t.c.next_poll_at.is_(None), t.c.next_poll_at <= now),
        ]
        if task_ids is not None:
            due.append(t.c.id.in_(list(task_ids)))
        with self.engine.connect() as conn:
            if taken_over is not None:
                free = or_(t.c.lease_until.is_(None), t.c.lease_until <= now)
                holders = conn.scalars(
                    select(t.c.lease_owner)
                    .distinct()
                    .where(*due, ~free, t.c.lease_owner.isnot(None))
                )
                gone = [h for h in holders if taken_over(h)]
                due.append(or_(free, t.c.lease_owner.in_(gone)) if gone else free)
            rows = conn.execute(select(*_LIGHT_COLUMNS).where(*due)).mappings()
            return [_light_task(r) for r in rows]

    # ---- uploads ---------------------------------------------------------------------------
    def record_upload(self, owner: str, path: str, digest: str, size_bytes: int) -> None:
        with self._session() as s:
            row = s.get(UploadRow, (owner, path))
            if row is None:
                s.add(
                    UploadRow(
                        owner=owner,
                        path=path,
                        digest=digest,
                        size_bytes=size_bytes,
                        created_at=utcnow(),
                    )
                )
            else:
                row.created_at = utcnow()  # used again: kept longer
            s.commit()

    def upload_usage(self, owner: str) -> tuple[int, int]:
        """(bytes, files) of `owner`'s uploads."""
        with self._session() as s:
            size, count = s.execute(
                select(func.coalesce(func.sum(UploadRow.size_bytes), 0), func.count()).where(
                    UploadRow.owner == owner
                )
            ).one()
            return int(size), int(count)

    def upload_last_used(self, digest: str) -> datetime | None:
        with self._session() as s:
            return s.scalar(
                select(func.max(UploadRow.created_at)).where(UploadRow.digest == digest)
            )

    def forget_upload(self, digest: str) -> None:
        with self._session() as s:
            s.execute(delete(UploadRow).where(UploadRow.digest == digest))
            s.commit()

    def upload_referenced(self, digest: str) -> bool:
        """Whether any task (in any state) names the upload stored under `digest`."""
        if not digest.isalnum():
            return True  # never delete what cannot be looked up safely
        with self.engine.connect() as conn:
            found = conn.scalar(
                select(TaskRow.id).where(cast(TaskRow.inputs, Text).like(f"%/{digest}/%")).limit(1)
            )
        return found is not None

    def upload_in_use(self, digest: str) -> bool:
        """Whether a task that is not finished names the content stored under `digest`: an
        upload (uploads/<digest>/…) among its inputs, or a bucket copy of any file
        (…/inputs/<digest>/…, `meta["bucket_inputs"]`): only then is it published to
        providers."""
        if not digest.isalnum():
            return False
        live = [TaskStatus.SUBMITTING.value, TaskStatus.QUEUED.value, TaskStatus.RUNNING.value]
        pattern = f"%/{digest}/%"
        with self.engine.connect() as conn:
            found = conn.scalar(
                select(TaskRow.id)
                .where(
                    TaskRow.status.in_(live),
                    or_(
                        cast(TaskRow.inputs, Text).like(pattern),
                        cast(TaskRow.meta, Text).like(pattern),
                    ),
                )
                .limit(1)
            )
        return found is not None

    def upload_owned(self, owner: str, digest: str, name: str) -> bool:
        """Whether `owner` stored (uploaded, fetched or fixed) uploads/<digest>/<name>."""
        with self._session() as s:
            paths = s.scalars(
                select(UploadRow.path).where(UploadRow.owner == owner, UploadRow.digest == digest)
            )
            return any(Path(p).name == name for p in paths)

    def delete_task(self, task_id: str) -> bool:
        with self._session() as s:
            s.execute(delete(EventRow).where(EventRow.task_id == task_id))
            result = s.execute(delete(TaskRow).where(TaskRow.id == task_id))
            s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]


# The monitor's per-pass statements, built once: each pass then only binds values (building
# and coercing the statements, with an IN of literal ids, cost more than running them).
_T = typing.cast(Table, TaskRow.__table__)  # declarative tables are Tables
_EVENTS = typing.cast(Table, EventRow.__table__)  # declarative tables are Tables
_ANALYSES = typing.cast(Table, AnalysisRow.__table__)  # declarative tables are Tables
_POLLABLE = (text(_POLLABLE_SQL),)
_DUE = (
    *_POLLABLE,
    or_(_T.c.next_poll_at.is_(None), _T.c.next_poll_at <= bindparam("now", type_=UTCDateTime())),
    or_(_T.c.lease_until.is_(None), _T.c.lease_until <= bindparam("now", type_=UTCDateTime())),
)
_PICK_DUE = select(_T.c.id).where(*_DUE).order_by(_T.c.next_poll_at).limit(bindparam("limit"))
_PICK_DUE_AMONG = (
    select(_T.c.id)
    .where(*_DUE, _T.c.id.in_(bindparam("among", expanding=True)))
    .order_by(_T.c.next_poll_at)
    .limit(bindparam("limit"))
)
# A task's columns but its inputs and options (see _light_task): what polls and views need.
_LIGHT_COLUMNS = [c for c in _T.c if c.name not in ("inputs", "options", "idempotency_key")]
_CLAIM = (
    update(_T)
    .where(_T.c.id.in_(bindparam("ids", expanding=True)), *_DUE)
    .values(
        lease_owner=bindparam("holder"),
        lease_until=bindparam("lease_until", type_=UTCDateTime()),
    )
    .returning(*_LIGHT_COLUMNS)
)


def _claim_skip_locked(among: bool) -> Any:
    """Never-polled tasks (no schedule) first, then the most overdue: two walks of the
    claim's index (ix_tasks_due), its NULLs and its start, each stopping at the limit, so a
    claim reads about `limit` rows however many are in flight. (One ORDER BY … NULLS FIRST
    would need the index in that order, which SQLite cannot declare: one index definition
    serves both engines.)"""
    now = bindparam("now", type_=UTCDateTime())
    free = or_(_T.c.lease_until.is_(None), _T.c.lease_until <= now)

    def walk(schedule: Any, ordered: bool) -> Any:
        pick = select(_T.c.id).where(*_POLLABLE, schedule, free)
        if among:
            pick = pick.where(_T.c.id.in_(bindparam("among", expanding=True)))
        if ordered:
            pick = pick.order_by(_T.c.next_poll_at)
        locked = pick.limit(bindparam("limit")).with_for_update(skip_locked=True).subquery()
        return select(locked.c.id)

    pick = union_all(
        walk(_T.c.next_poll_at.is_(None), ordered=False),
        walk(_T.c.next_poll_at <= now, ordered=True),
    ).limit(bindparam("limit"))
    return (
        update(_T)
        .where(_T.c.id.in_(pick.scalar_subquery()))
        .values(
            lease_owner=bindparam("holder"),
            lease_until=bindparam("lease_until", type_=UTCDateTime()),
        )
        .returning(*_LIGHT_COLUMNS)
    )


_CLAIM_SKIP_LOCKED = _claim_skip_locked(among=False)
_CLAIM_SKIP_LOCKED_AMONG = _claim_skip_locked(among=True)
_RECORD_POLL = (
    update(_T)
    .where(
        _T.c.id == bindparam("b_id"),
        _T.c.status == bindparam("b_status"),
        _T.c.lease_owner == bindparam("b_holder"),
    )
    .values(
        progress=bindparam("b_progress"),
        next_poll_at=bindparam("b_next_poll_at", type_=UTCDateTime()),
        poll_failures=bindparam("b_poll_failures"),
        error=bindparam("b_error"),
        error_kind=bindparam("b_error_kind"),
        updated_at=bindparam("b_updated_at", type_=UTCDateTime()),
        lease_owner=None,
        lease_until=None,
    )
)
# _RECORD_POLL for PostgreSQL, all polls at once: each column's values as one array.
_PG_POLL_ARRAYS = {
    "id": "text",
    "status": "text",
    "holder": "text",
    "progress": "float8",
    "next_poll_at": "timestamp",
    "poll_failures": "int",
    "error": "text",
    "error_kind": "text",
    "updated_at": "timestamp",
}
_RECORD_POLLS_PG = text(
    "UPDATE tasks SET progress = v.progress, next_poll_at = v.next_poll_at, "
    "poll_failures = v.poll_failures, error = v.error, error_kind = v.error_kind, "
    "updated_at = v.updated_at, lease_owner = NULL, lease_until = NULL "
    "FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _PG_POLL_ARRAYS.items())
    + ") AS v("
    + ", ".join(_PG_POLL_ARRAYS)
    + ") WHERE tasks.id = v.id AND tasks.status = v.status AND tasks.lease_owner = v.holder"
)


def _change_values(ch: Change, now: datetime) -> dict[str, Any]:
    """The columns a change writes, as stored (`updated_at` unless it sets its own)."""
    values: dict[str, Any] = {"updated_at": now}
    for k, v in ch.fields.items():
        values[k] = v.value if isinstance(v, TaskStatus) else v
    return values


def _event_status(ch: Change, values: Mapping[str, Any]) -> str | None:
    """The status a change's event records: the new one, else the one it expected."""
    if values.get("status"):
        return str(values["status"])
    return ch.expect_status.value if isinstance(ch.expect_status, TaskStatus) else None


def _runs_of_distinct_tasks(changes: Sequence[Change]) -> list[list[tuple[int, Change]]]:
    """Consecutive runs (with each change's index) in which no task appears twice: one
    UPDATE … FROM may join a row only once, and a second change to a task must see the
    first's write."""
    runs: list[list[tuple[int, Change]]] = [[]]
    seen: set[str] = set()
    for index, ch in enumerate(changes):
        if ch.task_id in seen:
            runs.append([])
            seen = set()
        seen.add(ch.task_id)
        runs[-1].append((index, ch))
    return runs


_PG = postgresql.dialect()


def _task_column_type(name: str) -> Any:
    if name not in _T.c:
        raise ValueError(f"unknown task column: {name}")
    return _T.c[name].type


def _pg_type(name: str) -> str:
    """A tasks column's type to cast a text value to (strings as text, so a value too long
    for its column is refused by the assignment rather than cut by the cast)."""
    kind = _task_column_type(name)
    base = kind.impl_instance if isinstance(kind, TypeDecorator) else kind
    return "text" if isinstance(base, String) else str(base.compile(dialect=_PG))


def _pg_text(name: str, value: Any) -> str | None:
    """A value for a tasks column as PostgreSQL reads it from text (the statement casts)."""
    kind = _task_column_type(name)
    if isinstance(kind, JSON):
        return json.dumps(value)  # None is JSON null, as the JSON type writes it
    if value is None:
        return None
    if isinstance(kind, TypeDecorator):
        value = kind.process_bind_param(value, _PG)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@functools.lru_cache(maxsize=64)
def _pg_changes_sql(setting: tuple[str, ...], checking: tuple[str, ...]) -> Any:
    """One statement for changes writing `setting` and comparing `checking`: each change is
    a row of arrays (`set_c` whether it writes c, `chk_c` 0 no check, 1 IS NULL, 2 equal),
    the UPDATE returns the applied ones and the INSERT writes their events."""
    tasks, events = _T.name, _EVENTS.name
    arrays = [
        ("ord", "int"),
        ("id", "text"),
        ("allowed", "text"),
        ("ev_status", "text"),
        ("ev_progress", "text"),
        ("message", "text"),
    ]
    assign, where = [], [f"{tasks}.id = v.id"]
    where.append(f"(v.allowed IS NULL OR {tasks}.status = ANY(string_to_array(v.allowed, ',')))")
    for i, name in enumerate(setting):
        arrays += [(f"set_{i}", "bool"), (f"val_{i}", "text")]
        new = f"CAST(v.val_{i} AS {_pg_type(name)})"
        assign.append(f"{name} = CASE WHEN v.set_{i} THEN {new} ELSE {tasks}.{name} END")
    for i, name in enumerate(checking):
        arrays += [(f"chk_{i}", "int"), (f"exp_{i}", "text")]
        old, want = f"{tasks}.{name}", f"CAST(v.exp_{i} AS {_pg_type(name)})"
        where.append(
            f"CASE v.chk_{i} WHEN 0 THEN true WHEN 1 THEN {old} IS NULL ELSE {old} = {want} END"
        )
    unnest = ", ".join(f"CAST(:{a} AS {kind}[])" for a, kind in arrays)
    return text(
        f"WITH v AS (SELECT * FROM unnest({unnest}) AS v({', '.join(a for a, _ in arrays)})), "
        f"u AS (UPDATE {tasks} SET {', '.join(assign)} FROM v WHERE {' AND '.join(where)} "
        "RETURNING v.ord, v.id, v.ev_status, v.ev_progress, v.message), "
        f"ins AS (INSERT INTO {events} (task_id, at, status, progress, message) "
        "SELECT id, CAST(:now AS timestamp), ev_status, CAST(ev_progress AS float8), message "
        "FROM u WHERE message IS NOT NULL ORDER BY ord) "
        "SELECT ord FROM u"
    )


def _pg_changes(run: Sequence[tuple[int, Change]], now: datetime) -> tuple[Any, dict[str, Any]]:
    """The statement and its arrays for a run of changes to distinct tasks."""
    values = [_change_values(ch, now) for _, ch in run]
    setting = tuple(sorted({name for v in values for name in v}))
    checking = tuple(sorted({name for _, ch in run for name in ch.expect or {}}))
    arrays: dict[str, Any] = {
        "now": _pg_text("updated_at", now),
        "ord": [index for index, _ in run],
        "id": [ch.task_id for _, ch in run],
        "allowed": [
            None if (allowed := _status_values(ch.expect_status)) is None else ",".join(allowed)
            for _, ch in run
        ],
        "ev_status": [_event_status(ch, v) for (_, ch), v in zip(run, values, strict=True)],
        "ev_progress": [_pg_text("progress", v.get("progress")) for v in values],
        "message": [ch.message or None for _, ch in run],
    }
    for i, name in enumerate(setting):
        arrays[f"set_{i}"] = [name in v for v in values]
        arrays[f"val_{i}"] = [_pg_text(name, v[name]) if name in v else None for v in values]
    for i, name in enumerate(checking):
        expects = [ch.expect or {} for _, ch in run]
        arrays[f"chk_{i}"] = [0 if name not in x else 1 if x[name] is None else 2 for x in expects]
        arrays[f"exp_{i}"] = [_pg_text(name, x.get(name)) for x in expects]
    return _pg_changes_sql(setting, checking), arrays


# A leased task is next due when its lease runs out (its holder may have died), else at its
# schedule; leases are cleared by every write that ends a poll.
_NEXT_DUE = select(func.min(func.coalesce(_T.c.lease_until, _T.c.next_poll_at))).where(*_POLLABLE)


def _switch_to_wal(cur: Any) -> None:
    """WAL mode (persistent in the file). Switching an older file needs an exclusive lock,
    and SQLite answers "locked" at once, without waiting, while another process holds the
    write lock (another process migrating that file): wait for it, bounded."""
    deadline = time.monotonic() + 30
    pause = 0.01
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def _make_engine(url: str, *, pool_size: int, max_overflow: int) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            _switch_to_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # pre_ping: a replica outlives database restarts and idle connections cut by a proxy;
    # recycle: and hands back connections before a server-side idle timeout would.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_timeout=30,
    )
