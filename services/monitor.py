"""The monitor: follows every non-terminal task to its end and archives each result the moment
it succeeds, whether or not a browser (or the CLI that submitted it) is still there.

One instance runs per process (services.runtime.Runtime); the app server starts it as a
background thread, and the CLI's `--wait` drives the
same code for its own tasks (`Monitor.wait`), so the CLI works without the app. Several
monitors can share one database: every poll and every archive is *claimed* first under a
lease (`lease_owner`/`lease_until`), and every write is a compare-and-set change made by
services/lifecycle.py, so two processes never poll the same task at once, never apply the same
transition twice and never download the same result twice.

Timing is the provider's own (`ProviderCapabilities.poll_interval_s`); `REENACT_POLL_SCALE`
(or `interval_scale`) multiplies every provider-declared time — intervals, backoff, the
not-found grace — so tests can run a provider's whole life in a second.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services import lifecycle
from services.config import Settings
from services.errors import (
    DISK_FULL_ARCHIVE,
    ErrorKind,
    ProviderError,
    ReenactError,
    is_disk_full,
)
from services.lifecycle import Change, Holder, QuietPoll, archive_pending, settled
from services.models import (
    ProviderCapabilities,
    ProviderUpdate,
    Task,
    TaskStatus,
    utcnow,
)
from services.studio import Studio

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("reenact.monitor")

# A poll claim outlives the longest single poll call (the HTTP base's deadline is 120 s), so
# a slow answer is never polled twice; if the poller dies, the task is polled again after it.
POLL_LEASE_S = 150.0
# Under a time scale below 1 (tests, benchmarks) the lease shrinks with the intervals, but
# never below this: a loopback poll answers well within it.
POLL_LEASE_FLOOR_S = 5.0
# An archive claim outlives the longest download (fetch's whole-transfer deadline is 900 s);
# a claim whose owner process is gone is taken over at once.
ARCHIVE_LEASE_S = 1000.0
MAX_BACKOFF_S = 300.0  # the longest wait between two polls of a task that keeps failing
ARCHIVE_MAX_ATTEMPTS = 6
# Archive workers: the fewest kept, and the most while a backlog waits (one per
# ARCHIVE_BATCH queued). An archive mostly waits — on the result host, the fsyncs, the
# database — so a burst of successes is worked through in parallel.
ARCHIVE_THREADS = (4, 16)
# A worker takes its share of the queue, up to this many, and writes their outcomes in one
# statement: one commit for the batch instead of one per file.
ARCHIVE_BATCH = 16
ARCHIVER_IDLE_S = 30.0  # a worker beyond the fewest ends after this long without work
FAILURES_BEFORE_SHOWN = 3  # transient poll failures stay quiet until they repeat
IDLE_TICK_S = 1.0  # the background loop looks for new work at least this often
# Due polls are gathered into passes at most this far apart (2 % of the shortest interval,
# within these bounds): each pass has a fixed cost, so 1,000 tasks spread over an interval
# must not mean 1,000 passes.
PASS_GRANULARITY_S = (0.005, 0.1)
SWEEP_EVERY_S = 1.0  # interrupted submissions and leftover archives are looked for this often
# Archived results not yet measured (specs, motion fidelity) after a restart are looked for
# this often; new ones are queued the moment they are archived.
ANALYSIS_BACKLOG_EVERY_S = 30.0
UPLOAD_SWEEP_EVERY_S = 3600.0  # uploads no task uses are cleaned up this often (server only)
# A pass claims what this monitor's poll threads can answer within the shortest interval at
# the poll time seen so far, within these bounds: replicas on one database then each take a
# share of what is due rather than the first to look taking everything (and polling it late).
CLAIM_BOUNDS = (25, 10_000)
FIRST_POLL_GUESS_S = 0.5  # a poll's wall time before any was measured (a slow provider's)


class WaitTimeout(ReenactError):
    """`--timeout` ran out; the task stays tracked (CLI exit 3)."""

    def __init__(self, sentence: str, tasks: list[Task]) -> None:
        super().__init__(sentence)
        self.tasks = tasks


@dataclass
class TickStats:
    polled: int = 0
    changed: int = 0
    archives_started: int = 0
    errors: int = 0


@dataclass
class _PollResult:
    task: Task
    answered_at: datetime  # the next poll counts from here
    update: ProviderUpdate | None = None
    error: BaseException | None = None


@dataclass
class _Writes:
    """What one pass wants written: quiet polls in one batch, status changes in one transaction."""

    quiet: list[QuietPoll] = field(default_factory=list)
    # Status changes, written together; a task to archive once its change has applied.
    changes: list[tuple[Change, Task | None]] = field(default_factory=list)


def env_scale() -> float:
    raw = os.environ.get("REENACT_POLL_SCALE", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        log.warning("REENACT_POLL_SCALE=%r is not a number; using 1", raw)
        return 1.0
    return value if value > 0 else 1.0


class Monitor:
    def __init__(
        self,
        studio: Studio,
        *,
        interval_scale: float = 1.0,
        max_workers: int = 8,
        not_found_grace_s: float | None = None,
    ) -> None:
        self.studio = studio
        self.store = studio.store
        self.settings: Settings = studio.settings
        self.scale = interval_scale * env_scale()
        self.max_workers = max(1, max_workers)
        self._grace_override = not_found_grace_s
        # Who holds this monitor's leases (a dead holder's are taken over at once).
        self.holder = Holder.here()
        self._pool: ThreadPoolExecutor | None = None
        self._releaser: ThreadPoolExecutor | None = None  # bucket deletions (services/storage)
        self._granularity: float | None = None
        self._polled_providers: set[str] = set()  # since the last sweep
        self._recent_providers: set[str] = set()  # in the sweep period before
        # Poll threads for the next pass: all of them until polling shows it needs fewer.
        self._workers = self.max_workers
        self._poll_s = FIRST_POLL_GUESS_S  # a poll's wall time per thread, smoothed
        self._last_sweep = 0.0
        self._lock = threading.Lock()
        # Archives in progress or queued here (task id -> set when finished).
        self._archiving: dict[str, threading.Event] = {}
        self._archive_queue: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._archivers: list[threading.Thread] = []
        self._archives_idle = threading.Event()  # set while nothing is queued or archiving
        self._archives_idle.set()
        self._http: httpx.Client | None = None  # result downloads (_download_client)
        # Results to measure (task ids), by one background thread: scoring is CPU work, and
        # one at a time keeps the other core for the pages and the polls.
        self._analysis_queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._analysing: set[str] = set()
        self._analyzer: threading.Thread | None = None
        self._last_backlog = -ANALYSIS_BACKLOG_EVERY_S
        self._last_upload_sweep = -UPLOAD_SWEEP_EVERY_S
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    # ---- timing ----------------------------------------------------------------------------
    def capabilities(self, provider_id: str) -> ProviderCapabilities:
        return self.studio.catalog.capabilities(provider_id)

    def interval(self, provider_id: str) -> float:
        return max(0.01, self.capabilities(provider_id).poll_interval_s * self.scale)

    def granularity(self) -> float:
        """The shortest pause between two passes: 2 % of the shortest interval among
        the providers being polled (every provider until the first pass)."""
        if self._granularity is None:
            from services.config import PROVIDER_IDS

            shortest = IDLE_TICK_S / 0.02
            for pid in (self._recent_providers | self._polled_providers) or PROVIDER_IDS:
                with contextlib.suppress(Exception):  # a provider that cannot load
                    shortest = min(shortest, self.interval(pid))
            low, high = PASS_GRANULARITY_S
            self._granularity = min(high, max(low, shortest * 0.02))
        return self._granularity

    def grace(self, provider_id: str) -> float:
        if self._grace_override is not None:
            return self._grace_override
        return self.capabilities(provider_id).not_found_grace_s * self.scale

    def backoff(self, provider_id: str, failures: int, retry_after: float | None) -> float:
        cap = MAX_BACKOFF_S * self.scale
        wait = min(cap, self.interval(provider_id) * 2 ** min(failures, 16))
        if retry_after is not None:
            # The provider's own word wins over our schedule, within reason.
            wait = max(wait, min(retry_after, MAX_BACKOFF_S))
        return wait

    # ---- one pass --------------------------------------------------------------------------
    def tick(self, task_ids: Sequence[str] | None = None, *, block: bool = True) -> TickStats:
        """Poll every due task (or just `task_ids`), apply what changed, start archives.

        With `block`, returns only after the archives it started have finished.
        """
        stats = TickStats()
        sweep = task_ids is not None or time.monotonic() - self._last_sweep >= SWEEP_EVERY_S
        if sweep:
            self._last_sweep = time.monotonic()
            # The pause between passes follows the providers polled in the last second.
            self._recent_providers, self._polled_providers = self._polled_providers, set()
            self._granularity = None
            try:
                self.studio.recover_interrupted()
            except Exception:
                log.exception("Could not recover interrupted submissions")
        now = utcnow()
        claimed = self.store.claim_due(
            now=now,
            lease_until=now + timedelta(seconds=self.poll_lease()),
            holder=str(self.holder),
            limit=self.claim_limit(),
            task_ids=task_ids,
        )
        if claimed:
            self._polled_providers.update(t.provider for t in claimed)
            writes = _Writes()
            for result in self._poll_all(claimed):
                stats.polled += 1
                if result.error is not None:
                    stats.errors += 1
                if self._apply(result, writes):
                    stats.changed += 1
            # The pass's state changes and quiet polls: one transaction, one commit.
            applied = self.store.apply_changes(
                [change for change, _ in writes.changes], writes.quiet
            )
            if self.settings.s3 is not None:
                self._release_inputs(claimed, writes.changes, applied)
            archive = [t for (_, t), ok in zip(writes.changes, applied, strict=True) if ok and t]
        else:
            archive = []
        started = [e for e in (self._start_archive(t) for t in archive) if e]
        for task in self._leftover_successes(task_ids) if sweep else ():
            done = self._start_archive(task)
            if done:
                started.append(done)
        stats.archives_started = len(started)
        if sweep and self._thread is not None:
            self._analysis_backlog()
            self._upload_sweep()
        if block:
            for done in started:
                done.wait()
        return stats

    def _release_inputs(
        self,
        claimed: list[Task],
        changes: list[tuple[Change, Task | None]],
        applied: Sequence[bool],
    ) -> None:
        """Tasks this pass ended give their bucket inputs back (Studio.release_inputs), on
        the archive workers: a slow bucket never delays polling."""
        by_id = {t.id: t for t in claimed}
        for (change, _), ok in zip(changes, applied, strict=True):
            status = change.fields.get("status")
            task = by_id.get(change.task_id)
            if ok and task is not None and isinstance(status, TaskStatus) and status.terminal:
                ended = task.model_copy(update={"status": status})
                self._pool_for_release().submit(self.studio.release_inputs, ended)

    def _pool_for_release(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._releaser is None:
                self._releaser = ThreadPoolExecutor(1, thread_name_prefix="reenact-release")
            return self._releaser

    def _poll_all(self, tasks: list[Task]) -> list[_PollResult]:
        # Providers are built and asked whether they can be used once per tick, here, not
        # racing inside worker threads for every task.
        blocked: dict[str, str | None] = {}
        for pid in {t.provider for t in tasks}:
            try:
                av = self.studio.provider(pid).availability()
                self.capabilities(pid)
                blocked[pid] = None if av.available else (av.reason or f"{pid} is unavailable.")
            except ReenactError as err:
                blocked[pid] = str(err)

        def poll(task: Task) -> _PollResult:
            from services.errors import ConfigError

            reason = blocked.get(task.provider)
            if reason is not None:
                return _PollResult(task, utcnow(), error=ConfigError(reason))
            return self._poll_one(task)

        def poll_chunk(chunk: list[Task]) -> tuple[list[_PollResult], float]:
            cpu = time.thread_time()
            return [poll(t) for t in chunk], time.thread_time() - cpu

        started = time.monotonic()
        workers = min(self._workers, len(tasks))
        if workers == 1:
            results, cpu = poll_chunk(tasks)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="reenact-poll")
            parts = list(self._pool.map(poll_chunk, [tasks[i::workers] for i in range(workers)]))
            results = [r for part, _ in parts for r in part]
            cpu = sum(c for _, c in parts)
        wall = time.monotonic() - started
        self._poll_s = 0.8 * self._poll_s + 0.2 * (wall * workers / len(tasks))
        self._adapt_workers(workers, wall, cpu)
        return results

    def poll_lease(self) -> float:
        """How long a claimed poll is this monitor's: a replica killed mid-pass hands its
        claims over when this runs out."""
        return max(POLL_LEASE_FLOOR_S, POLL_LEASE_S * min(1.0, self.scale))

    def claim_limit(self) -> int:
        """How many due polls one pass takes (CLAIM_BOUNDS): all this monitor's threads
        polling for the shortest interval (the pass granularity is 2 % of it)."""
        shortest = self.granularity() / 0.02
        low, high = CLAIM_BOUNDS
        return int(min(high, max(low, self.max_workers * shortest / self._poll_s)))

    def _adapt_workers(self, used: int, wall: float, cpu: float) -> None:
        """Threads for the next pass. They pay only while polls wait on the network: a slow
        provider gets more (doubling while a pass overruns the pass granularity and the
        pollers mostly wait); CPU-bound polling (a loopback provider) falls back to one
        thread, as more would only take turns holding the GIL and cost CPU doing so. The CPU
        counted is the polling threads' own, so other work in the process does not count.
        (Judging by a pass's wall time per poll instead feeds on itself: GIL contention
        makes every poll look slower, which asks for more threads.)"""
        busy = cpu / wall if wall > 0 else 1.0
        if wall > self.granularity() and busy < 0.5:
            self._workers = min(self.max_workers, self._workers * 2)
        elif busy > 0.75:
            self._workers = max(1, min(self._workers, used) // 2)

    def _poll_one(self, task: Task) -> _PollResult:
        try:
            assert task.provider_task_id is not None
            provider = self.studio.provider(task.provider)
            update = provider.poll(task.provider_task_id)
            return _PollResult(task, utcnow(), update=update)
        except Exception as err:  # every failure becomes state, never a dead monitor
            return _PollResult(task, utcnow(), error=err)

    # ---- applying a poll -------------------------------------------------------------------
    def _apply(self, result: _PollResult, writes: _Writes) -> bool:
        task = result.task
        # Counting the next poll from this task's own answer means no task is ever asked
        # twice within one interval, however long the pass took.
        now = result.answered_at
        try:
            if result.error is not None:
                return self._apply_error(task, result.error, now, writes)
            assert result.update is not None
            return self._apply_update(task, result.update, now, writes)
        except Exception:
            log.exception("Could not record a poll of task %s", task.id)
            return False

    def _apply_update(
        self, task: Task, update: ProviderUpdate, now: datetime, writes: _Writes
    ) -> bool:
        step = lifecycle.polled(
            task,
            update,
            self.holder,
            now=now,
            interval_s=self.interval(task.provider),
            archive_lease_s=ARCHIVE_LEASE_S,
        )
        if isinstance(step, QuietPoll):
            writes.quiet.append(step)
            return step.progress != task.progress or task.error is not None
        archive = step.fields.get("archive_state") is lifecycle.ArchiveState.PENDING
        writes.changes.append(
            (step, task.model_copy(update=dict(step.fields)) if archive else None)
        )
        return True

    def _apply_error(self, task: Task, err: BaseException, now: datetime, writes: _Writes) -> bool:
        if isinstance(err, ProviderError) and err.kind is ErrorKind.NOT_FOUND:
            since = task.started_at or task.created_at
            if (now - since).total_seconds() < self.grace(task.provider):
                # CometAPI does not know a fresh id for a while: still queued, not an error.
                next_at = now + timedelta(seconds=self.interval(task.provider))
                writes.quiet.append(
                    lifecycle.quiet(task, self.holder, now=now, next_at=next_at, keep_error=True)
                )
                return False
            writes.changes.append((lifecycle.not_found(task, self.holder, str(err), now), None))
            return True
        failures = task.poll_failures + 1
        retry_after = err.retry_after if isinstance(err, ProviderError) else None
        wait = self.backoff(task.provider, failures, retry_after)
        if isinstance(err, ReenactError):
            sentence = str(err)
            kind = getattr(err, "kind", None)
            error_kind = kind if isinstance(kind, ErrorKind) else ErrorKind.CONFIGURATION
            retryable = bool(getattr(err, "retryable", False))
        else:
            log.error("Polling task %s failed unexpectedly", task.id, exc_info=err)
            sentence = (
                "Checking on this task failed unexpectedly; the app keeps trying. If it "
                "persists, the server log has the details."
            )
            error_kind, retryable = ErrorKind.UNEXPECTED, True
        show = not retryable or failures >= FAILURES_BEFORE_SHOWN
        if failures == 1 or (show and task.error != sentence):
            with contextlib.suppress(Exception):
                self.store.add_event(task.id, f"Poll failed, retrying in {wait:.0f} s: {sentence}")
        writes.quiet.append(
            lifecycle.quiet(
                task,
                self.holder,
                now=now,
                next_at=now + timedelta(seconds=wait),
                poll_failures=failures,
                error=sentence,
                error_kind=error_kind,
                keep_error=not show,
            )
        )
        return show and task.error != sentence

    # ---- archiving -------------------------------------------------------------------------
    def _leftover_successes(self, task_ids: Sequence[str] | None) -> list[Task]:
        """Succeeded tasks whose archive is due and not held by anyone alive (a crash, a
        failed download waiting out its backoff, a full disk tried again now and then),
        claimed in one statement."""
        now = utcnow()
        claims: list[tuple[Task, Change]] = []
        for task in self.store.archives_due(now, task_ids=task_ids, taken_over=self._holder_gone):
            with self._lock:
                if task.id in self._archiving:
                    continue
            change = lifecycle.claim_archive(task, self.holder, now, ARCHIVE_LEASE_S)
            if change is not None:
                claims.append((task, change))
        applied = self.store.apply_changes([change for _, change in claims])
        return [
            task.model_copy(update=dict(change.fields))
            for (task, change), ok in zip(claims, applied, strict=True)
            if ok
        ]

    def _holder_gone(self, owner: str) -> bool:
        """Whether claims held by `owner` may be taken over now: someone else's, and its
        process is gone (lifecycle.claim_archive still decides, task by task)."""
        holder = lifecycle.Holder.parse(owner)
        return holder is not None and holder != self.holder and not holder.alive()

    def _claim_archive(self, task: Task, *, force: bool = False) -> Task | None:
        """Take the archive of `task` (see lifecycle.claim_archive); `force` (the user asked)
        skips a backoff and takes back one that gave up."""
        with self._lock:
            if task.id in self._archiving:
                return None
        change = lifecycle.claim_archive(task, self.holder, utcnow(), ARCHIVE_LEASE_S, force=force)
        return self.store.apply(change) if change is not None else None

    def _start_archive(self, task: Task) -> threading.Event | None:
        """Queue a claimed archive; the returned event is set when it is done."""
        with self._lock:
            if task.id in self._archiving:
                return None
            done = threading.Event()
            self._archiving[task.id] = done
            self._archives_idle.clear()
            self._archive_queue.put(task)
            # Workers follow the backlog: one per ARCHIVE_BATCH waiting, within bounds.
            low, high = ARCHIVE_THREADS
            wanted = min(high, max(low, -(-len(self._archiving) // ARCHIVE_BATCH)))
            if len(self._archivers) < wanted:
                # Daemon threads: a CLI giving up waiting must not hang on a download; the
                # claim left behind names a dead process and is taken over by the next one.
                worker = threading.Thread(
                    target=self._archiver, name=self.archiver_name(), daemon=True
                )
                self._archivers.append(worker)
                worker.start()
        return done

    def archiver_name(self) -> str:
        """The name of this monitor's archive threads (in a thread dump, and for tests)."""
        return f"reenact-archive-{self.holder.id[:8]}"

    def _next_batch(self) -> tuple[list[Task], bool] | None:
        """This worker's next archives: the first to come, then its share of what waits
        behind it (up to ARCHIVE_BATCH), and whether it was told to stop after them. None:
        it was told to stop, or it is a worker beyond the fewest that has been idle."""
        me = threading.current_thread()
        while True:
            try:
                first = self._archive_queue.get(timeout=ARCHIVER_IDLE_S)
                break
            except queue.Empty:
                with self._lock:
                    if len(self._archivers) > ARCHIVE_THREADS[0] and me in self._archivers:
                        self._archivers.remove(me)
                        return None
        if first is None:
            return None
        batch, stop = [first], False
        share = -(-self._archive_queue.qsize() // max(1, len(self._archivers)))
        while len(batch) < min(ARCHIVE_BATCH, 1 + share):
            try:
                more = self._archive_queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                stop = True
                break
            batch.append(more)
        return batch, stop

    def _archiver(self) -> None:
        while (taken := self._next_batch()) is not None:
            batch, stop = taken
            try:
                self._archive_batch(batch)
            except Exception:
                log.exception("Archiving %d results failed unexpectedly", len(batch))
            finally:
                with self._lock:
                    finished = [self._archiving.pop(t.id, None) for t in batch]
                    if not self._archiving:
                        self._archives_idle.set()
                for done in finished:
                    if done is not None:
                        done.set()
            if stop:
                return

    def _archive_batch(self, batch: list[Task]) -> None:
        """Archive claimed tasks one after the other, then write every outcome in one
        statement (one commit instead of one per file). Each file is durable (fsynced,
        renamed, its folder fsynced) before its row says so; a worker killed before the
        write leaves claims naming a dead process, taken over at once, and the files are
        fetched again over the top."""
        from services.archive import sound_needs_inputs, sound_needs_switch, sound_switch

        # What the sound step reads from the store, read once for the batch: each owner's
        # switch, and the inputs the light claim rows leave out.
        switches = {
            owner: sound_switch(self.store, owner)
            for owner in {t.owner for t in batch if sound_needs_switch(t)}
        }
        light = [t.id for t in batch if sound_needs_inputs(t)]
        inputs = {t.id: t.inputs for t in self.store.get_tasks(light)} if light else {}
        outcomes: list[tuple[Task, Change]] = []
        for task in batch:
            if task.id in inputs:
                task = task.model_copy(update={"inputs": inputs[task.id]})
            try:
                change, _ = self._archive_outcome(task, switches.get(task.owner))
            except Exception:
                log.exception("Archiving task %s failed unexpectedly", task.id)
                continue
            outcomes.append((task, change))
        applied = self.store.apply_changes([change for _, change in outcomes])
        for (task, change), ok in zip(outcomes, applied, strict=True):
            if ok and change.fields.get("result_path"):
                self._queue_analysis(task.id)

    def _archive(self, task: Task) -> str | None:
        """Archive one claimed task and record the outcome; the failure sentence, or None."""
        change, failure = self._archive_outcome(task)
        self.store.apply(change)
        if failure is None:
            self._queue_analysis(task.id)
        return failure

    def _archive_outcome(self, task: Task, switch: bool | None = None) -> tuple[Change, str | None]:
        """Download (or copy) the claimed task's result, give it the driving clip's sound if
        it has none (`switch`: the owner's Settings switch, if read already). Returns what
        to record — the path, or the reason and when to try again — and the failure
        sentence (None on success)."""
        from services.archive import SOUND_NOTE, add_sound, fetch_result

        assert task.result_url is not None
        try:
            path = fetch_result(
                task.result_url, task.id, self.settings, client=self._download_client()
            )
            sound = add_sound(task, path, self.settings, self.store, switch=switch)
            self._keep_in_bucket(task, path)
        except Exception as exc:
            if is_disk_full(exc):
                return self._disk_full(task), DISK_FULL_ARCHIVE
            if not isinstance(exc, ReenactError):
                raise
            err = exc
            # Expected (an expired link, a page instead of a video): one line, no traceback.
            log.info("The result of task %s was not saved: %s", task.id, err)
            failures = task.poll_failures + 1
            kind = getattr(err, "kind", None)
            if getattr(err, "retryable", False) and failures < ARCHIVE_MAX_ATTEMPTS:
                wait = self.backoff(task.provider, failures, getattr(err, "retry_after", None))
                next_at = utcnow() + timedelta(seconds=wait)
                change = lifecycle.archive_retry(
                    task, self.holder, str(err), failures, next_at, wait
                )
                return change, str(err)
            kind = kind if isinstance(kind, ErrorKind) else ErrorKind.INVALID_RESULT
            return lifecycle.archive_gave_up(task, self.holder, str(err), kind, failures), str(err)
        done = lifecycle.archived(task, self.holder, str(path))
        # What happened to the sound is written with the archive, in its one event.
        done = replace(
            done,
            fields={**done.fields, "meta": {**task.meta, SOUND_NOTE: sound.as_meta()}},
            message=f"{done.message} {sound.sentence}",
        )
        return done, None

    def _download_client(self) -> httpx.Client:
        """One pooled client for every result download of this monitor: connections to a
        result host are kept open between files instead of one per file."""
        with self._lock:
            if self._http is None:
                from services.fetch import download_client

                self._http = download_client(self.settings)
            return self._http

    def _keep_in_bucket(self, task: Task, path: Path) -> None:
        """With a bucket, the result is written there too before the archive counts as done
        (StorageError, retryable: the archive is tried again later); the local file stays as a
        cache, and any replica's /files route can stream the bucket's copy."""
        from services.storage import bucket_for

        bucket = bucket_for(self.settings)
        if bucket is not None:
            bucket.put_result(task.id, path)

    def _disk_full(self, task: Task) -> Change:
        """No room for the result: say so on the task and release the claim with a backoff.
        Never given up on (a full disk often frees up; the link may outlive it), and the
        released claim lets the user's Retry download, from any process, go at once."""
        failures = task.poll_failures + 1
        wait = self.backoff(task.provider, failures, None)
        log.warning(
            "The disk is full: the result of task %s is not saved; trying again in %.0f s",
            task.id,
            wait,
        )
        next_at = utcnow() + timedelta(seconds=wait)
        return lifecycle.archive_blocked_by_disk(
            task, self.holder, DISK_FULL_ARCHIVE, failures, next_at, wait
        )

    # ---- measuring results -----------------------------------------------------------------
    def _queue_analysis(self, task_id: str) -> None:
        """Measure this archived result in the background (only while the monitor runs as
        the server's background thread; the CLI measures what it waited for itself)."""
        if self._thread is None or self._stopped:
            return
        with self._lock:
            if task_id in self._analysing:
                return
            self._analysing.add(task_id)
            if self._analyzer is None or not self._analyzer.is_alive():
                self._analyzer = threading.Thread(
                    target=self._analyse_loop, name="reenact-analysis", daemon=True
                )
                self._analyzer.start()
        self._analysis_queue.put(task_id)

    def _analysis_backlog(self) -> None:
        now = time.monotonic()
        if now - self._last_backlog < ANALYSIS_BACKLOG_EVERY_S:
            return
        self._last_backlog = now
        try:
            for task in self.store.unanalysed(limit=100):
                self._queue_analysis(task.id)
        except Exception:
            log.exception("Could not look for results to measure")

    def _upload_sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_upload_sweep < UPLOAD_SWEEP_EVERY_S:
            return
        self._last_upload_sweep = now
        from services.upload_policy import sweep

        try:
            sweep(self.store, self.settings)
        except Exception:
            log.exception("Could not clean up old uploads")

    def _analyse_loop(self) -> None:
        from services.compare.analysis import analyze

        while True:
            task_id = self._analysis_queue.get()
            if task_id is None:
                return
            # Measuring waits while archives are queued here: a burst of successes is
            # archived first, then measured, instead of the two taking turns on the CPU.
            self._archives_idle.wait()
            try:
                task = self.store.get_task(task_id)
                if task is not None:
                    analyze(self.store, self.settings, task)
            except Exception:
                log.exception("Measuring the result of task %s failed", task_id)
            finally:
                with self._lock:
                    self._analysing.discard(task_id)

    def archive_now(self, task_id: str, *, timeout: float = ARCHIVE_LEASE_S) -> Task:
        """Archive one succeeded task here and now (`reenact download`), even one whose
        archive gave up before; raises the sentence if it cannot be done."""
        task = self.studio.get(task_id)
        deadline = time.monotonic() + timeout
        while task.status is TaskStatus.SUCCEEDED and not task.result_path:
            if not task.result_url:
                raise ReenactError(task.error or "The provider sent no link to the result.")
            claimed = self._claim_archive(task, force=True)
            if claimed is not None:
                with self._lock:
                    self._archiving[task.id] = threading.Event()
                try:
                    failure = self._archive(claimed)
                finally:
                    with self._lock:
                        self._archiving.pop(task.id, threading.Event()).set()
                if failure:
                    raise ReenactError(failure)
            elif time.monotonic() > deadline:
                raise ReenactError(
                    "Another process is still archiving this result; try again in a minute."
                )
            else:
                time.sleep(0.1)  # someone alive (the app's monitor) is on it
            task = self.studio.get(task_id)
        return task

    # ---- waiting (CLI --wait) --------------------------------------------------------------
    def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[Task], None] | None = None,
    ) -> Task:
        return self.wait_many([task_id], timeout=timeout, on_update=on_update)[0]

    def wait_many(
        self,
        task_ids: Sequence[str],
        *,
        timeout: float | None = None,
        on_update: Callable[[Task], None] | None = None,
    ) -> list[Task]:
        """Drive these tasks until each is settled (terminal and archived); raise
        WaitTimeout when `timeout` seconds pass first. Works with or without the app's
        monitor running: whoever claims a poll does it, both see the store."""
        ids = list(dict.fromkeys(task_ids))
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: dict[str, tuple[Any, ...]] = {}
        while True:
            tasks = self.store.get_tasks(ids)
            if on_update is not None:
                for task in tasks:
                    snap = _snapshot(task)
                    if seen.get(task.id) != snap:
                        seen[task.id] = snap
                        on_update(task)
            pending = [t for t in tasks if not settled(t)]
            if not pending:
                return tasks
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"Gave up waiting after {timeout:g} s; the task is still tracked: "
                    + "; ".join(f"reenact status {t.id}" for t in pending),
                    tasks,
                )
            self.tick([t.id for t in pending], block=False)
            tasks = self.store.get_tasks([t.id for t in pending])
            pause = self._sleep_for(tasks)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)

    def _sleep_for(self, tasks: Sequence[Task]) -> float:
        now = utcnow()
        pause = IDLE_TICK_S
        for task in tasks:
            due = task.lease_until or task.next_poll_at  # a poll in flight elsewhere: its lease
            if due is not None and task.status.pollable:
                pause = min(pause, (due - now).total_seconds())
            elif archive_pending(task) or task.status is TaskStatus.SUBMITTING:
                pause = min(pause, 0.1)
        return max(self.granularity(), pause)

    # ---- background thread -----------------------------------------------------------------
    def start(self) -> Monitor:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="reenact-monitor", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        log.info("Monitor started (time scale %g)", self.scale)
        while not self._stop.is_set():
            try:
                self.tick(block=False)
                pause = self._idle_pause()
            except Exception:
                log.exception("Monitor tick failed; trying again shortly")
                pause = IDLE_TICK_S
            self._wake.wait(pause)
            self._wake.clear()

    def _idle_pause(self) -> float:
        due = self.store.next_due_at()
        if due is None:
            return IDLE_TICK_S
        return max(self.granularity(), min(IDLE_TICK_S, (due - utcnow()).total_seconds()))

    def wake(self) -> None:
        """Look for due work now (a provider callback moved a task up the queue)."""
        self._wake.set()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread and release resources; safe to call any number of times."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if self._releaser is not None:
            # Deletions queued by the last passes finish (a CLI's --wait ends right after).
            self._releaser.shutdown(wait=True)
            self._releaser = None
        with self._lock:
            for _ in self._archivers:
                self._archive_queue.put(None)  # each worker ends after its current batch
            self._archivers = []
            self._archives_idle.set()  # the analysis thread is not held back any more
            if self._http is not None and not self._archiving:
                # (A download still going keeps the client; the process's end closes it.)
                self._http.close()
                self._http = None
            if self._analyzer is not None:
                self._analysis_queue.put(None)  # ends after the result it is measuring
                self._analyzer = None


def _snapshot(task: Task) -> tuple[Any, ...]:
    return (task.status, round(task.progress, 3), task.error, task.result_path)
