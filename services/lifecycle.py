"""The task lifecycle: the one place that says how a task moves.

The states are `TaskStatus`; `TRANSITIONS` is the table of every allowed move. Each event
(a provider accepted a create, a poll answered, the user canceled, a result was archived…)
is a pure function here that returns a `Change`; nothing in this module touches the database
or the network. The store applies a Change compare-and-set (`Store.apply`): only if the task
is still in the state — and, for the monitor, still under the lease — it was computed from,
so two processes can never both move one task.

Who moves a task, and through which function:

| move                                     | who                            | function      |
|------------------------------------------|--------------------------------|---------------|
| (new) → submitting, or queued (tracked)  | Studio.submit, Studio.track    | create_task   |
| submitting, unknown → queued             | Studio.submit: accepted        | accepted      |
| submitting → failed                      | Studio.submit: refused         | create_failed |
| submitting → unknown                     | Studio.submit, recover sweep   | outcome_…     |
| queued ⇄ running → succeeded/failed/…    | the monitor, from a poll       | polled        |
| queued, running → failed (not found)     | the monitor, after the grace   | not_found     |
| draft, queued, running, unknown → cancel | Studio.cancel (page, CLI)      | canceled      |

After `succeeded` the result is archived; `archive_state` says where that stands:
pending → done (`archived`), → pending again later (`archive_retry`), → gave_up (a dead link,
`archive_gave_up`), → blocked (a full disk, `archive_blocked`); gave_up/blocked → pending
when the creator asks (`retry_download`).

Three columns, three meanings: `next_poll_at` is the schedule (when the next poll — or the
next archive attempt — is due); `lease_owner`/`lease_until` say who is working on the task
right now (a poll in flight, a download); `archive_state` is the archive's progress.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.errors import ErrorKind
from services.models import ArchiveState, ProviderUpdate, Task, TaskStatus

S = TaskStatus

# Every allowed move; anything else is a bug and raises IllegalTransition.
TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    S.DRAFT: frozenset({S.SUBMITTING, S.CANCELED}),
    S.SUBMITTING: frozenset({S.QUEUED, S.FAILED, S.UNKNOWN}),
    # A create that came back after a sweep gave up on it is still the provider's task.
    S.UNKNOWN: frozenset({S.QUEUED, S.CANCELED}),
    S.QUEUED: frozenset({S.RUNNING, S.SUCCEEDED, S.FAILED, S.CANCELED}),
    S.RUNNING: frozenset({S.QUEUED, S.SUCCEEDED, S.FAILED, S.CANCELED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A move the table does not allow: a bug in the caller, never a user's doing."""


@dataclass(frozen=True)
class Change:
    """One compare-and-set write: `fields` apply only while the task is in `expect_status`
    and every `expect` column still holds its value (None: IS NULL)."""

    task_id: str
    fields: Mapping[str, Any]
    expect_status: TaskStatus | tuple[TaskStatus, ...] | None = None
    expect: Mapping[str, Any] = field(default_factory=dict)
    message: str | None = None


# ---- leases -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Holder:
    """Who holds a lease: the host and pid tell a dead holder (taken over at once) from a live
    one; the random id tells two monitors of one process apart."""

    host: str
    pid: int
    id: str

    @classmethod
    def here(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:16])

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.id}"

    @classmethod
    def parse(cls, value: str | None) -> Holder | None:
        if not value:
            return None
        parts = value.rsplit("/", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        host, pid, ident = parts
        return cls(host, int(pid), ident)

    def alive(self) -> bool:
        """Whether this holder's process still runs (another machine's: assume it does and
        let the lease run out)."""
        if self.host != socket.gethostname():
            return True
        from services.procs import process_running

        return process_running(self.pid)


def leased(task: Task, now: datetime) -> bool:
    """Someone holds a lease on this task that has not run out."""
    return task.lease_until is not None and task.lease_until > now


def held_by_someone_alive(task: Task, now: datetime, me: Holder | None = None) -> bool:
    """A lease that has not run out and whose holder still runs (`me` counts as alive: a
    monitor never takes over its own work)."""
    if not leased(task, now):
        return False
    holder = Holder.parse(task.lease_owner)
    if holder is None:
        return True
    if me is not None and holder == me:
        return True
    return holder.alive()


def _released() -> dict[str, Any]:
    return {"lease_owner": None, "lease_until": None}


def _mine(holder: Holder) -> dict[str, Any]:
    """Compare-and-set columns: the change applies only while `holder` still holds the lease."""
    return {"lease_owner": str(holder)}


# ---- the questions every view asks --------------------------------------------------------
def archive_state(task: Task) -> ArchiveState | None:
    """Where archiving the result stands (None: no result expected)."""
    if task.status is not S.SUCCEEDED:
        return None
    if task.result_path:
        return ArchiveState.DONE
    return task.archive_state or ArchiveState.PENDING


def archive_pending(task: Task) -> bool:
    """A succeeded task whose result is not on disk yet and may still get there (by itself
    or, when blocked by a full disk, after the creator frees space)."""
    return archive_state(task) in (ArchiveState.PENDING, ArchiveState.BLOCKED)


def archive_blocked(task: Task) -> bool:
    """An archive stopped by a full disk: still tried now and then, but it waits on the user."""
    return archive_state(task) is ArchiveState.BLOCKED


def settled(task: Task) -> bool:
    """Nothing more will happen to this task without the user: done, or needs a decision.
    The one answer used by the monitor, the CLI's --wait, the cards and the comparison."""
    if task.status in (S.UNKNOWN, S.DRAFT):
        return True
    return task.status.terminal and archive_state(task) is not ArchiveState.PENDING


def needs_attention(task: Task) -> bool:
    """Ended without a usable result (the CLI's non-zero exit)."""
    return task.status in (S.FAILED, S.CANCELED, S.UNKNOWN)


# ---- moves --------------------------------------------------------------------------------
def _move(
    task: Task,
    to: TaskStatus,
    message: str | None,
    *,
    expect_status: TaskStatus | tuple[TaskStatus, ...] | None = None,
    expect: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Change:
    if to is not task.status and to not in TRANSITIONS[task.status]:
        raise IllegalTransition(f"task {task.id}: {task.status.value} → {to.value}")
    return Change(
        task.id,
        {"status": to, **fields},
        expect_status=task.status if expect_status is None else expect_status,
        expect=dict(expect or {}),
        message=message,
    )


def accepted(task: Task, provider_task_id: str, provider_name: str, now: datetime) -> Change:
    """The provider took the create: follow its task from now on."""
    return _move(
        task,
        S.QUEUED,
        f"Accepted by {provider_name} as {provider_task_id}.",
        expect_status=(S.SUBMITTING, S.UNKNOWN),
        provider_task_id=provider_task_id,
        started_at=now,
        next_poll_at=now,
        error=None,
        error_kind=None,
    )


def create_failed(task: Task, sentence: str, kind: ErrorKind | None, now: datetime) -> Change:
    return _move(
        task,
        S.FAILED,
        sentence,
        error=sentence,
        error_kind=kind or ErrorKind.INVALID_INPUT,
        finished_at=now,
    )


def outcome_unknown(task: Task, sentence: str, message: str | None = None) -> Change:
    """A create whose outcome cannot be known: shown to the user, never re-sent on its own
    (that could charge twice)."""
    return _move(
        task,
        S.UNKNOWN,
        message or sentence,
        error=sentence,
        error_kind=ErrorKind.UNKNOWN_OUTCOME,
    )


def canceled(task: Task, now: datetime) -> Change:
    """By the user; a result that landed meanwhile is kept (the change expects the state the
    cancel was decided from)."""
    from services.errors import default_sentence

    return _move(
        task,
        S.CANCELED,
        "Canceled by the user.",
        finished_at=now,
        next_poll_at=None,
        error=default_sentence(ErrorKind.CANCELED),
        error_kind=ErrorKind.CANCELED,
        **_released(),
    )


# ---- polls (the monitor) --------------------------------------------------------------------
@dataclass(frozen=True)
class QuietPoll:
    """A poll that leaves the status alone: progress, the next poll, the failure count. The
    monitor writes a pass's quiet polls in one batch (`Store.record_polls`)."""

    task_id: str
    status: TaskStatus
    holder: str
    progress: float
    next_poll_at: datetime
    poll_failures: int
    error: str | None
    error_kind: ErrorKind | None
    updated_at: datetime


def quiet(
    task: Task,
    holder: Holder,
    *,
    now: datetime,
    next_at: datetime,
    progress: float | None = None,
    poll_failures: int | None = None,
    error: str | None = None,
    error_kind: ErrorKind | None = None,
    keep_error: bool = False,
) -> QuietPoll:
    """Release the poll lease and schedule the next poll at `next_at`. `keep_error` leaves
    the last sentence shown (a transient failure not worth showing yet)."""
    new_progress = task.progress if progress is None else progress
    new_error = task.error if keep_error else error
    new_kind = task.error_kind if keep_error else error_kind
    moved = (new_progress, new_error, new_kind) != (task.progress, task.error, task.error_kind)
    return QuietPoll(
        task_id=task.id,
        status=task.status,
        holder=str(holder),
        progress=new_progress,
        next_poll_at=next_at,
        poll_failures=task.poll_failures if poll_failures is None else poll_failures,
        error=new_error,
        error_kind=new_kind,
        updated_at=now if moved else task.updated_at,
    )


NO_LINK_SENTENCE = (
    "The provider reported success but sent no link to the result, so there is nothing to "
    "archive. Check the provider's dashboard for the video."
)


def polled(
    task: Task,
    update: ProviderUpdate,
    holder: Holder,
    *,
    now: datetime,
    interval_s: float,
    archive_lease_s: float,
) -> Change | QuietPoll:
    """A poll's answer (the task was claimed by `holder`): a status change, or a quiet poll."""
    from services.errors import default_sentence

    mine = _mine(holder)
    status = update.status
    # What the provider says it charged, where it says it (on a finished task).
    cost: dict[str, Any] = {} if update.cost_usd is None else {"cost_usd": update.cost_usd}
    if status is S.SUCCEEDED:
        if not update.result_url:
            return _move(
                task,
                S.SUCCEEDED,
                NO_LINK_SENTENCE,
                expect=mine,
                progress=1.0,
                finished_at=now,
                next_poll_at=None,
                poll_failures=0,
                error=NO_LINK_SENTENCE,
                error_kind=ErrorKind.UNEXPECTED,
                archive_state=ArchiveState.GAVE_UP,
                **cost,
                **_released(),
            )
        # The move and the archive's lease are one write: nobody else can start the download.
        return _move(
            task,
            S.SUCCEEDED,
            "Succeeded; archiving the result.",
            expect=mine,
            progress=1.0,
            result_url=update.result_url,
            finished_at=now,
            poll_failures=0,
            error=None,
            error_kind=None,
            next_poll_at=None,
            archive_state=ArchiveState.PENDING,
            lease_owner=str(holder),
            lease_until=now + timedelta(seconds=archive_lease_s),
            **cost,
        )
    if status in (S.FAILED, S.CANCELED):
        kind = update.error_kind or (ErrorKind.CANCELED if status is S.CANCELED else None)
        sentence = update.error or (
            default_sentence(ErrorKind.CANCELED)
            if status is S.CANCELED
            else "The provider reported that the task failed, without a reason."
        )
        return _move(
            task,
            status,
            sentence,
            expect=mine,
            error=sentence,
            error_kind=kind,
            finished_at=now,
            next_poll_at=None,
            poll_failures=0,
            **cost,
            **_released(),
        )
    # Anything else the provider says means "not finished yet".
    status = S.RUNNING if status is S.RUNNING else S.QUEUED
    progress = task.progress if update.progress is None else update.progress
    next_at = now + timedelta(seconds=interval_s)
    if status is not task.status:
        note = f" ({update.raw_status})" if update.raw_status else ""
        return _move(
            task,
            status,
            f"{task.status.value} → {status.value}{note}",
            expect=mine,
            progress=progress,
            next_poll_at=next_at,
            poll_failures=0,
            error=None,
            error_kind=None,
            **_released(),
        )
    return quiet(task, holder, now=now, next_at=next_at, progress=progress, poll_failures=0)


def not_found(task: Task, holder: Holder, sentence: str, now: datetime) -> Change:
    """The provider no longer knows the task (after its grace period for fresh ids)."""
    return _move(
        task,
        S.FAILED,
        sentence,
        expect=_mine(holder),
        error=sentence,
        error_kind=ErrorKind.NOT_FOUND,
        finished_at=now,
        next_poll_at=None,
        **_released(),
    )


def nudged(task: Task, now: datetime, horizon_s: float) -> Change | None:
    """A provider's callback: poll now instead of at the planned time. Nothing to do when a
    poll is in flight (it will see the news), already due, or held back further than
    `horizon_s` on purpose (a backoff after rate limits: a callback must not undo it)."""
    if not task.status.pollable or leased(task, now):
        return None
    planned = task.next_poll_at
    if planned is None or planned <= now or (planned - now).total_seconds() > horizon_s:
        return None
    return Change(
        task.id,
        {"next_poll_at": now},
        expect_status=task.status,
        expect={"next_poll_at": task.next_poll_at, "lease_until": None},
    )


# ---- archiving the result -----------------------------------------------------------------
def claim_archive(
    task: Task, holder: Holder, now: datetime, lease_s: float, *, force: bool = False
) -> Change | None:
    """Take the download of `task`'s result, unless someone alive holds it or (without
    `force`, which the user's Retry download is) it is waiting out a backoff or gave up."""
    state = archive_state(task)
    if state in (None, ArchiveState.DONE) or not task.result_url:
        return None
    if state is ArchiveState.GAVE_UP and not force:
        return None
    if held_by_someone_alive(task, now, holder if not force else None):
        return None
    if not force and task.next_poll_at is not None and task.next_poll_at > now:
        return None
    fields: dict[str, Any] = {
        "lease_owner": str(holder),
        "lease_until": now + timedelta(seconds=lease_s),
        "archive_state": ArchiveState.PENDING,
    }
    if force:
        fields.update(next_poll_at=None, error=None, error_kind=None)
    return Change(
        task.id,
        fields,
        expect_status=S.SUCCEEDED,
        expect={
            "result_path": None,
            "lease_owner": task.lease_owner,
            "lease_until": task.lease_until,
        },
    )


def retry_download(task: Task, now: datetime) -> Change | None:
    """The creator asked for the result again (a dead link, a full disk freed): the next
    archive attempt is due now, wherever a monitor runs. None while someone alive is
    downloading it."""
    if archive_state(task) in (None, ArchiveState.DONE):
        return None
    if held_by_someone_alive(task, now):
        return None
    return Change(
        task.id,
        {
            "archive_state": ArchiveState.PENDING,
            "next_poll_at": now,
            "error": None,
            "error_kind": None,
            "poll_failures": 0,
            **_released(),
        },
        expect_status=S.SUCCEEDED,
        expect={"result_path": None, "lease_until": task.lease_until},
        message="Retry download requested.",
    )


def _archive_write(task: Task, holder: Holder, message: str, **fields: Any) -> Change:
    return Change(
        task.id,
        {**fields, **_released()},
        expect_status=S.SUCCEEDED,
        expect={"result_path": None, **_mine(holder)},
        message=message,
    )


def archived(task: Task, holder: Holder, path: str) -> Change:
    return _archive_write(
        task,
        holder,
        f"Result archived to {path}.",
        result_path=path,
        archive_state=ArchiveState.DONE,
        next_poll_at=None,
        poll_failures=0,
        error=None,
        error_kind=None,
    )


def archive_retry(
    task: Task, holder: Holder, sentence: str, failures: int, next_at: datetime, wait_s: float
) -> Change:
    """A download that may work later (a flaky link): every monitor waits out the backoff."""
    return _archive_write(
        task,
        holder,
        f"Archiving failed, retrying in {wait_s:.0f} s: {sentence}",
        poll_failures=failures,
        next_poll_at=next_at,
    )


def archive_gave_up(
    task: Task, holder: Holder, sentence: str, kind: ErrorKind, failures: int
) -> Change:
    """Nothing more can be done by itself (an expired link, a page instead of a video)."""
    return _archive_write(
        task,
        holder,
        sentence,
        archive_state=ArchiveState.GAVE_UP,
        error=sentence,
        error_kind=kind,
        poll_failures=failures,
        next_poll_at=None,
    )


def archive_blocked_by_disk(
    task: Task, holder: Holder, sentence: str, failures: int, next_at: datetime, wait_s: float
) -> Change:
    """No room for the result: never given up (space often frees up), tried again after
    `wait_s`, or at once when the creator asks."""
    return _archive_write(
        task,
        holder,
        f"{sentence} Trying again by itself in {wait_s:.0f} s.",
        archive_state=ArchiveState.BLOCKED,
        error=sentence,
        error_kind=ErrorKind.DISK_FULL,
        poll_failures=failures,
        next_poll_at=next_at,
    )


def result_missing(task: Task) -> Change | None:
    """The archived file is gone (removed by hand): archive it again from its link."""
    if task.status is not S.SUCCEEDED or not task.result_path:
        return None
    return Change(
        task.id,
        {"result_path": None, "archive_state": ArchiveState.PENDING, "next_poll_at": None},
        expect_status=S.SUCCEEDED,
        expect={"result_path": task.result_path},
        message="The archived file is missing; archiving it again.",
    )
