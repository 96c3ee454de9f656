"""The verbs a creator uses — submit, compare, track, cancel, retry, delete — shared by the
app's pages and the CLI. Persist before acting: the task row exists (`submitting`) before the
create call, and the provider's id is written the instant it is known.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from services import lifecycle, spending
from services.archive import ORIGINAL_NAME, sound_choice
from services.config import PROVIDER_IDS, Settings, load_settings
from services.errors import ConfigError, ErrorKind, InputError, ReenactError, TransportError
from services.links import is_web_link, looks_like_link
from services.models import (
    LOCAL_OWNER,
    ProviderCapabilities,
    Run,
    Task,
    TaskInputs,
    TaskOptions,
    TaskStatus,
    utcnow,
)
from services.procs import process_running
from services.providers.base import CreateRequest, Provider
from services.providers.catalog import ProviderCatalog, ProviderInfo
from services.publish import (
    InputRoute,
    callback_url_for,
    input_route,
    new_hook_secret,
    no_route_sentence,
)
from services.store import Store

# A create call never takes longer than this (the HTTP base's total deadline is shorter), so
# a row still `submitting` after it belongs to a process that died mid-call.
SUBMIT_STALE_AFTER = timedelta(minutes=3)

UNKNOWN_SENTENCE = (
    "The app could not learn whether {name} accepted this task (the connection dropped or the "
    "app stopped mid-request). It was not re-sent, so you are not charged twice: check the "
    "provider's dashboard, then use Retry if it is not there."
)


PRICES_PREF = "prices_per_second"

_BEING_SUBMITTED = (
    "This task is being submitted right now; wait until the provider has answered, then "
    "cancel or delete it."
)


class Studio:
    """Built once per process by services.runtime.Runtime (tests may build their own)."""

    def __init__(
        self,
        settings: Settings | None = None,
        store: Store | None = None,
        catalog: ProviderCatalog | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.settings.ensure_dirs()
        self.store = store or Store.open(self.settings)
        self.catalog = catalog or ProviderCatalog(self.settings)

    def close(self) -> None:
        self.catalog.close()
        self.store.close()

    # ---- providers -------------------------------------------------------------------------
    def provider(self, provider_id: str) -> Provider:
        return self.catalog.get(provider_id)

    def providers(self) -> list[ProviderInfo]:
        return self.catalog.infos()

    # ---- inputs ----------------------------------------------------------------------------
    def prepare_inputs(
        self, video: str, image: str | None = None, character_video: str | None = None
    ) -> TaskInputs:
        """URLs stay URLs (providers fetch them); local paths must exist and become absolute."""

        def norm(value: str | None, what: str) -> str | None:
            if value is None or value == "":
                return None
            if is_web_link(value):
                return value
            if looks_like_link(value):
                raise InputError(f"The {what} must be a local file or an http(s) link.")
            path = Path(value).expanduser()
            if not path.is_file():
                raise InputError(f"The {what} file was not found: {value}")
            return str(path.resolve())

        v = norm(video, "driving video")
        assert v is not None
        return TaskInputs(
            video=v,
            image=norm(image, "character image"),
            character_video=norm(character_video, "character video"),
        )

    # ---- submit ----------------------------------------------------------------------------
    def submit(
        self,
        provider_id: str,
        inputs: TaskInputs,
        options: TaskOptions | None = None,
        *,
        run_id: str | None = None,
        idempotency_key: str | None = None,
        retry_of: str | None = None,
        owner: str = LOCAL_OWNER,
        meta: Mapping[str, object] | None = None,
    ) -> Task:
        """One call = at most one create call at the provider, whatever reruns or double
        clicks happen: a repeated idempotency key returns the first task untouched. `meta`:
        the submitter's choices read later (services/archive.py's sound_choice)."""
        provider = self._ready_to_create(provider_id, inputs)
        options = options or TaskOptions()
        estimate = self._estimates([provider], inputs)[provider_id]
        repeat = idempotency_key is not None and self.store.task_by_key(idempotency_key)
        # The cap check and the row are one step: two submits racing cannot both fit under
        # what is left (the row's estimate counts for the next check at once).
        planned = {} if repeat else {provider_id: estimate}
        with spending.within_cap(self.store, self.settings, planned):
            task, created = self._insert(
                provider,
                inputs,
                options,
                estimate,
                run_id=run_id,
                retry_of=retry_of,
                idempotency_key=idempotency_key,
                owner=owner,
                meta=meta,
            )
        if not created:
            return task
        return self._send(provider, task, inputs, options)

    def _estimates(
        self, providers: Sequence[Provider], inputs: TaskInputs
    ) -> dict[str, float | None]:
        """Each provider's estimate, with the driving clip probed at most once."""
        prices = self.prices()
        paid = [p for p in providers if self.price_per_second(p.capabilities(), prices)[0]]
        duration = _duration_of(inputs.video) if paid else None
        return {
            p.id: self.estimate_cost(p.capabilities(), inputs, duration_s=duration, prices=prices)
            for p in providers
        }

    def _insert(
        self,
        provider: Provider,
        inputs: TaskInputs,
        options: TaskOptions,
        estimate: float | None,
        *,
        run_id: str | None,
        retry_of: str | None,
        idempotency_key: str | None,
        owner: str,
        meta: Mapping[str, object] | None,
    ) -> tuple[Task, bool]:
        """The task's row, `submitting`, before anything is sent (persist before acting)."""
        return self.store.create_task(
            provider.id,
            status=TaskStatus.SUBMITTING,
            inputs=inputs,
            options=options,
            run_id=run_id,
            retry_of=retry_of,
            idempotency_key=idempotency_key,
            cost_estimate=estimate,
            meta={
                **(meta or {}),
                "submitter_pid": os.getpid(),
                "submitter_host": socket.gethostname(),
                "hook_secret": new_hook_secret(),
                **self._bucket_inputs(provider, inputs),
            },
            message=f"Submitting to {provider.name}.",
            owner=owner,
        )

    def _bucket_inputs(self, provider: Provider, inputs: TaskInputs) -> dict[str, list[str]]:
        """For a provider that gets presigned links — or the local engine when its renders run
        on render workers, which fetch the bucket's copies — the bucket keys of its local
        inputs, on the row before they are uploaded, so no other task's end deletes them from
        the bucket while this one may still need them (services/storage.py release_inputs)."""
        by_link = input_route(provider.capabilities().needs_urls, self.settings)
        on_workers = provider.id == "local" and self.settings.render_workers == "external"
        if by_link is not InputRoute.BUCKET and not on_workers:
            return {}
        from services.storage import input_keys

        keys = input_keys(inputs, self.settings)
        return {"bucket_inputs": list(keys)} if keys else {}

    def _send(
        self, provider: Provider, task: Task, inputs: TaskInputs, options: TaskOptions
    ) -> Task:
        """The create call for a row this call inserted (only the call that created the row
        may send it: one intent, one create call)."""
        if task.meta.get("bucket_inputs"):  # the row says it uses them: now look for them
            from services.storage import await_releases

            await_releases(task, self.store)
        provider_id = provider.id
        request = CreateRequest(
            video=inputs.video,
            image=inputs.image,
            character_video=inputs.character_video,
            options=options,
            callback_url=callback_url_for(
                provider_id, f"{task.id}.{task.meta['hook_secret']}", self.settings
            ),
            idempotency_key=task.id,
        )
        try:
            provider_task_id = provider.create(request)
        except TransportError as err:
            if err.sent:
                return self._mark_unknown(task, provider.name, str(err))
            return self._fail(task, err)
        except ReenactError as err:
            return self._fail(task, err)
        except Exception as err:
            return self._mark_unknown(task, provider.name, type(err).__name__)
        if os.environ.get("REENACT_TEST_CRASH_AFTER_CREATE") == "1":
            # Crash-safety tests die here: accepted by the provider, not yet persisted.
            os.kill(os.getpid(), signal.SIGKILL)
        # `unknown` too: a sweep may have given up on a slow create that did come back.
        updated = self.store.apply(
            lifecycle.accepted(task, provider_task_id, provider.name, utcnow())
        )
        if updated is None:
            # Cancel and delete refuse `submitting` rows, so this is a last resort: never drop
            # the id of something the provider accepted (and may charge for).
            raise ReenactError(
                f"{provider.name} accepted the task as {provider_task_id}, but its row here was "
                f"removed meanwhile. Follow it with: reenact track --provider {provider_id} "
                f"{provider_task_id}"
            )
        return updated

    def _ready_to_create(self, provider_id: str, inputs: TaskInputs) -> Provider:
        """Everything that would make a create fail for sure, checked before anything is
        written or sent — so a comparison never charges some providers and then stops."""
        provider = self.provider(provider_id)
        provider.require_available()
        caps = provider.capabilities()
        if not caps.can_create:
            raise ConfigError(
                f"{provider.name} cannot start new tasks here; it can only follow a task "
                f"made elsewhere: reenact track --provider {provider_id} TASK_ID."
            )
        # Checked here, not only on the Create page, so the CLI and any caller of submit_many
        # are refused before a comparison has charged the other providers.
        if inputs.character_video and not caps.accepts_character_video:
            raise InputError(
                f"{provider.name} cannot take a character video, only a character image: "
                f"leave {provider.name} out, or use an image."
            )
        if caps.requires_image and not inputs.image:
            raise InputError(f"{provider.name} needs a character image.")
        if not inputs.image and not inputs.character_video:
            raise InputError("Add a character image (or a character video) to submit.")
        local = [v for _, v in inputs.items() if not is_web_link(v)]
        if local and input_route(caps.needs_urls, self.settings) is InputRoute.NONE:
            raise InputError(no_route_sentence(provider.name))
        return provider

    def submit_many(
        self,
        provider_ids_: Sequence[str],
        inputs: TaskInputs,
        options: TaskOptions | None = None,
        *,
        idempotency_key: str | None = None,
        owner: str = LOCAL_OWNER,
        meta: Mapping[str, object] | None = None,
        batch_id: str | None = None,
        batch_row: int | None = None,
    ) -> tuple[Run, list[Task]]:
        """One run, one task per provider (the comparison). Configuration errors surface
        before anything is written, so a run is never half-created for a missing key.
        `batch_id`/`batch_row`: the batch row this run is (services/batch.py)."""
        options = options or TaskOptions()
        unique = list(dict.fromkeys(provider_ids_))
        providers = [self._ready_to_create(pid, inputs) for pid in unique]
        estimates = self._estimates(providers, inputs)
        repeat = idempotency_key is not None and self.store.run_by_key(idempotency_key)
        # The whole run is checked against the caps at once, and every row written before
        # the lock is let go: a comparison is never refused halfway by a racing submit.
        with spending.within_cap(self.store, self.settings, {} if repeat else estimates):
            run, _ = self.store.create_run(
                inputs,
                options,
                unique,
                idempotency_key=idempotency_key,
                owner=owner,
                batch_id=batch_id,
                batch_row=batch_row,
            )
            rows = [
                self._insert(
                    provider,
                    inputs,
                    options,
                    estimates[provider.id],
                    run_id=run.id,
                    retry_of=None,
                    idempotency_key=f"{run.id}:{provider.id}",
                    owner=owner,
                    meta=meta,
                )
                for provider in providers
            ]
        tasks = [
            self._send(provider, task, inputs, options) if created else task
            for provider, (task, created) in zip(providers, rows, strict=True)
        ]
        return run, tasks

    def _fail(self, task: Task, err: ReenactError) -> Task:
        kind = getattr(err, "kind", None)
        change = lifecycle.create_failed(
            task, str(err), kind if isinstance(kind, ErrorKind) else None, utcnow()
        )
        failed = self.store.apply(change)
        if failed is not None:
            self.release_inputs(failed)
        return failed or self.get(task.id)

    def release_inputs(self, task: Task) -> None:
        """Once a task has ended, the bucket copies of its inputs that no unfinished task still
        uses are deleted (services/storage.py). A failure is one log line: the presigned link
        expires anyway, and a bucket lifecycle rule can sweep what is left."""
        if self.settings.s3 is None or not task.status.terminal:
            return
        try:
            if not self.catalog.capabilities(task.provider).needs_urls:
                return
            from services.storage import release_inputs

            release_inputs(task, self.settings, self.store)
        except ReenactError as err:
            logging.getLogger("reenact.studio").warning(
                "The inputs of task %s stay in the bucket: %s", task.id, err
            )

    def _mark_unknown(self, task: Task, provider_name: str, detail: str) -> Task:
        # What happened first (it may point at a wrong base URL), then what to do.
        sentence = f"{detail.rstrip('.')}. " if " " in detail else ""
        sentence += UNKNOWN_SENTENCE.format(name=provider_name)
        return self.store.apply(lifecycle.outcome_unknown(task, sentence)) or self.get(task.id)

    def recover_interrupted(self) -> list[Task]:
        """Rows left `submitting` by a process that died mid-create become `unknown` — shown
        to the user, never re-sent on their own."""
        out = []
        stale_before = utcnow() - SUBMIT_STALE_AFTER
        for task in self.store.list_tasks(status=TaskStatus.SUBMITTING, limit=10_000):
            same_host = task.meta.get("submitter_host") == socket.gethostname()
            if same_host and process_running(task.meta.get("submitter_pid")):
                continue  # still inside its create call, however long uploads take
            if not same_host and task.updated_at > stale_before:
                continue  # another machine's submitter: only time can tell
            name = self.provider(task.provider).name
            changed = self.store.apply(
                lifecycle.outcome_unknown(
                    task,
                    UNKNOWN_SENTENCE.format(name=name),
                    "The process submitting this task stopped before the provider answered.",
                )
            )
            if changed:
                out.append(changed)
        return out

    # ---- prices --------------------------------------------------------------------------
    def prices(self) -> dict[str, float]:
        """The creator's own price per second (US dollars) per provider, from Settings."""
        raw = self.store.get_pref(PRICES_PREF, {})
        out: dict[str, float] = {}
        if isinstance(raw, dict):
            for pid, value in raw.items():
                if pid in PROVIDER_IDS and isinstance(value, int | float) and value >= 0:
                    out[pid] = float(value)
        return out

    def set_price(self, provider_id: str, usd_per_second: float | None) -> None:
        """Set (or with None, forget) the creator's price per second for one provider."""
        if provider_id not in PROVIDER_IDS:
            raise InputError(f"There is no provider called '{provider_id}'.")
        if usd_per_second is not None and not 0 <= usd_per_second <= 100:
            raise InputError("A price per second must be between $0 and $100.")
        prices = self.prices()
        if usd_per_second is None:
            prices.pop(provider_id, None)
        else:
            prices[provider_id] = round(float(usd_per_second), 4)
        self.store.set_pref(PRICES_PREF, prices)

    def price_per_second(
        self, caps: ProviderCapabilities, prices: Mapping[str, float] | None = None
    ) -> tuple[float | None, str | None]:
        """(price, where it comes from): the creator's own price ("yours") wins over the
        provider's published one ("published"); (None, None) when neither is known.
        `prices`: the creator's prices already read (a table of several tasks reads once)."""
        mine = (self.prices() if prices is None else prices).get(caps.id)
        if mine is not None:
            return mine, "yours"
        if caps.cost_per_second_usd is not None:
            return caps.cost_per_second_usd, "published"
        return None, None

    def estimate_cost(
        self,
        caps: ProviderCapabilities,
        inputs: TaskInputs,
        *,
        duration_s: float | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> float | None:
        """Price per second × the driving clip's length (or `duration_s` when known)."""
        price, _ = self.price_per_second(caps, prices)
        if price is None:
            return None
        if price == 0:
            return 0.0
        duration = duration_s if duration_s is not None else _duration_of(inputs.video)
        if duration is None:
            return None
        return round(price * duration, 2)

    # ---- follow, cancel, retry, delete -----------------------------------------------------
    def track(self, provider_id: str, provider_task_id: str, *, owner: str = LOCAL_OWNER) -> Task:
        provider = self.provider(provider_id)
        provider.require_available()
        if not provider.capabilities().can_track:
            raise InputError(f"{provider.name} cannot follow tasks by id.")
        provider_task_id = provider_task_id.strip()
        if not provider_task_id or len(provider_task_id) > 256:
            raise InputError("Paste the provider's task id (it looks like a long code).")
        provider.check_task_id(provider_task_id)
        existing = self.store.find_task(provider_id, provider_task_id)
        if existing and existing.owner == owner:
            return existing
        task, _ = self.store.create_task(
            provider_id,
            status=TaskStatus.QUEUED,
            provider_task_id=provider_task_id,
            tracked=True,
            message=f"Tracking {provider.name} task {provider_task_id}.",
            owner=owner,
        )
        return task

    def get(self, task_id: str, *, owner: str | None = None) -> Task:
        """The task, if it exists and (with `owner`) is theirs: someone else's task is
        answered exactly like a missing one."""
        task = self.store.get_task(task_id)
        if task is None or (owner is not None and task.owner != owner):
            raise InputError(f"No task with id '{task_id}'. `reenact list` shows your tasks.")
        return task

    def cancel(self, task_id: str, *, owner: str | None = None) -> Task:
        task = self.get(task_id, owner=owner)
        if task.status.terminal:
            return task
        if task.status is TaskStatus.SUBMITTING:
            raise InputError(_BEING_SUBMITTED)
        provider = self.provider(task.provider)
        if task.provider_task_id and task.status.pollable:
            if not provider.capabilities().can_cancel:
                raise InputError(f"{provider.name} does not let a running task be canceled.")
            provider.cancel(task.provider_task_id)
        # A result that landed meanwhile is kept: the change expects the state seen here.
        canceled = self.store.apply(lifecycle.canceled(task, utcnow()))
        if canceled is not None:
            self.release_inputs(canceled)
        return canceled or self.get(task_id)

    def retry_download(self, task_id: str, *, owner: str | None = None) -> Task:
        """Retry download, from a page: the next archive attempt is due now, and the server's
        monitor takes it within a second (never a download in the page's thread). The CLI's
        `reenact download` does the work in its own process (`Monitor.archive_now`)."""
        task = self.get(task_id, owner=owner)
        if task.status is not TaskStatus.SUCCEEDED:
            raise InputError(
                f"Task {task.id} is {task.status.value}, so there is no result to save."
            )
        if not task.result_url:
            raise ReenactError(task.error or "The provider sent no link to the result.")
        if task.result_path and Path(task.result_path).is_file():
            return task
        missing = lifecycle.result_missing(task)
        if missing is not None:
            task = self.store.apply(missing) or self.get(task_id)
        change = lifecycle.retry_download(task, utcnow())
        return (self.store.apply(change) if change else None) or self.get(task_id)

    def retry(
        self, task_id: str, *, idempotency_key: str | None = None, owner: str | None = None
    ) -> Task:
        """A new task with the same inputs (clearly a new charge); the old one stays."""
        task = self.get(task_id, owner=owner)
        if task.inputs is None:
            raise InputError("This task was tracked by id; there are no inputs to submit again.")
        return self.submit(
            task.provider,
            task.inputs,
            task.options,
            run_id=task.run_id,
            retry_of=task.id,
            idempotency_key=idempotency_key,
            owner=task.owner,
            meta=sound_choice(task.meta),
        )

    def delete(self, task_id: str, *, owner: str | None = None) -> None:
        task = self.get(task_id, owner=owner)
        if task.status is TaskStatus.SUBMITTING:
            raise InputError(_BEING_SUBMITTED)
        if not task.status.terminal and task.status is not TaskStatus.UNKNOWN:
            # Deleting must work even where the provider cannot cancel: the row goes anyway.
            with contextlib.suppress(ReenactError):
                self.cancel(task_id)
        if task.result_path:
            result = Path(task.result_path)
            if result.is_file() and self.settings.results_dir in result.parents:
                result.unlink(missing_ok=True)
                # The provider's own file, kept beside a result the app added sound to.
                (result.parent / ORIGINAL_NAME).unlink(missing_ok=True)
                if result.parent != self.settings.results_dir and not any(result.parent.iterdir()):
                    shutil.rmtree(result.parent, ignore_errors=True)
        self.store.delete_task(task_id)


def _duration_of(value: str) -> float | None:
    if is_web_link(value):
        return None
    try:
        from services.media import probe

        return probe(Path(value)).duration_s
    except Exception:
        return None
