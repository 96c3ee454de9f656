"""Batches: many rows — a driving clip, a character, providers, options — checked, priced and
confirmed once, then sent as one run per row. The Create page's Batch tab and
`reenact batch FILE.csv` both come here.

    read_csv(path) / lines_for(videos, images, providers, options)   → rows (BatchLine)
    plan(studio, lines, name=, key=, owner=)   every input checked, every row priced, nothing
                                               sent; rows already sent under `key` are skipped
    send(studio, plan, owner=)                 the cap, then one `Studio.submit_many` per row
    load(studio, batch_id)                     the progress view: counts, ETA, row by row
    export(studio, view, out_dir)              a ZIP of every result + the CSV of the rows

**Nothing twice.** A batch's key is a hash of its rows (the CSV's content, its paths resolved)
and, on the page, a per-session nonce; each row's run has the key `batch:<id>:<row>` and each
task `<run>:<provider>` (submit_many's own). Sent again — a rerun, a second `reenact batch` of
the same file, a crash halfway — the batch, its runs and their tasks are found and nothing is
created twice; only rows not sent yet go (a row refused before and fixed since, say).

**The CSV.** A header line names the columns `video,image,providers,options` (any order, any
case; `providers` and `options` may be left out). Paths are relative to the CSV's folder (or
absolute, or http(s) links); `providers` is a list like `local;runway`; `options` is like
`intensity=3;seed=7;ratio=1280:720` (any TaskOptions field; `intensity` is short for
expression_intensity). Blank lines and lines starting with `#` are skipped. A row is named
by its line in the file (the header is line 1), as a spreadsheet numbers it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, Field, ValidationError

from services.config import PROVIDER_IDS
from services.errors import InputError, ReenactError
from services.links import is_web_link, looks_like_link
from services.models import (
    LOCAL_OWNER,
    Batch,
    BatchLine,
    MediaRole,
    Run,
    Task,
    TaskInputs,
    TaskOptions,
    TaskStatus,
    utcnow,
)

if TYPE_CHECKING:
    from services.config import Settings
    from services.media.checks import CheckReport, Source
    from services.studio import Studio

COLUMNS = ("video", "image", "providers", "options")
# Short names a CSV may use for a TaskOptions field (the field's own name works too).
OPTION_ALIASES = {
    "intensity": "expression_intensity",
    "body": "body_control",
    "public_figure": "public_figure_threshold",
}
_LIST_SPLIT = re.compile(r"[;,|\s]+")
MAX_ROWS = 2_000

# Checks one file as one role against these providers: (path, role, provider ids, source,
# the name sentences use) → report. The page passes its cached one.
Checker = Callable[[Path, MediaRole, tuple[str, ...], "Source", str], "CheckReport"]


# ------------------------------------------------------------------ rows


def read_csv(path: Path | str, *, default_providers: Sequence[str] = ()) -> list[BatchLine]:
    """The rows of a batch CSV. A malformed file (no header, an unknown column, not text)
    raises InputError; a malformed row becomes a row with its problems, so the others can go.
    `default_providers`: for rows whose providers cell is empty."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"There is no CSV file at {path}.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(
            f"{path.name} is not a text CSV file: save it as “CSV UTF-8” and try again."
        ) from None
    except OSError as err:
        raise InputError(f"{path.name} could not be read ({err.strerror or err}).") from None
    return parse_csv(
        text, folder=path.resolve().parent, name=path.name, providers=default_providers
    )


def parse_csv(
    text: str, *, folder: Path, name: str = "the CSV", providers: Sequence[str] = ()
) -> list[BatchLine]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header: list[str] | None = None
    lines: list[BatchLine] = []
    start = 1
    for record in reader:
        line_no, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in record) or record[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = _header(record, name)
            continue
        cells = {header[i]: c.strip() for i, c in enumerate(record) if i < len(header)}
        lines.append(_line(line_no, cells, folder, providers))
        if len(lines) > MAX_ROWS:
            raise InputError(
                f"{name} has more than {MAX_ROWS:,} rows; split it into smaller batches."
            )
    if header is None:
        raise InputError(
            f"{name} is empty: its first line names the columns ({', '.join(COLUMNS)}), "
            "then one row per task."
        )
    if not lines:
        raise InputError(f"{name} has a header but no rows.")
    return lines


def _header(record: Sequence[str], name: str) -> list[str]:
    header = [c.strip().lower() for c in record]
    unknown = [c for c in header if c and c not in COLUMNS]
    missing = [c for c in ("video", "image") if c not in header]
    if unknown or missing:
        what = f"Unknown column “{unknown[0]}”" if unknown else f"No “{missing[0]}” column"
        raise InputError(
            f"{what} in {name}: its first line names the columns, from "
            f"{', '.join(COLUMNS)} (video and image are needed; providers and options may "
            "be left out)."
        )
    return header


def _line(row: int, cells: Mapping[str, str], folder: Path, default: Sequence[str]) -> BatchLine:
    problems: list[str] = []
    video = _input(cells.get("video", ""), folder, "driving video", problems)
    image = _input(cells.get("image", ""), folder, "character image", problems) or None
    if image is None:
        problems.append("The image cell is empty: name the character image.")
    named = len(problems)
    providers = provider_list(cells.get("providers", ""), problems) or list(default)
    if not providers and len(problems) == named:
        problems.append("No provider named: fill its providers cell (like local;runway).")
    options = TaskOptions()
    try:
        options = parse_options(cells.get("options", ""))
    except InputError as err:
        problems.append(str(err))
    return BatchLine(
        row=row,
        video=video,
        image=image,
        providers=providers,
        options=options,
        problems=problems,
    )


def _input(value: str, folder: Path, what: str, problems: list[str]) -> str:
    if not value:
        if what == "driving video":
            problems.append("The video cell is empty: name the driving video.")
        return ""
    if is_web_link(value) or looks_like_link(value):
        return value  # a refused scheme gets its own sentence when the row is planned
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (folder / path).resolve())


def provider_list(value: str, problems: list[str]) -> list[str]:
    ids = [p.lower() for p in _LIST_SPLIT.split(value.strip()) if p]
    unknown = [p for p in ids if p not in PROVIDER_IDS]
    for pid in unknown:
        problems.append(
            f"There is no provider called “{pid}”: use one of {', '.join(PROVIDER_IDS)}."
        )
    return list(dict.fromkeys(p for p in ids if p in PROVIDER_IDS))


def parse_options(value: str) -> TaskOptions:
    """`intensity=3;seed=7;ratio=1280:720` → TaskOptions; InputError with a sentence."""
    values: dict[str, str] = {}
    for part in re.split(r"[;|]", value):
        if not part.strip():
            continue
        key, sep, raw = part.partition("=")
        option = key.strip().lower().replace("-", "_")
        option = OPTION_ALIASES.get(option, option)
        if not sep or option not in TaskOptions.model_fields:
            names = ", ".join([*OPTION_ALIASES, *TaskOptions.model_fields])
            raise InputError(
                f"The option “{part.strip()}” is not one this app knows: write name=value, "
                f"with a name from {names}."
            )
        values[option] = raw.strip()
    try:
        return TaskOptions.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = str(first["loc"][0]) if first.get("loc") else "an option"
        msg = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
        raise InputError(f"The option {where}: {msg}.") from None


def lines_for(
    videos: Sequence[str],
    images: Sequence[str],
    providers: Sequence[str],
    options: TaskOptions | None = None,
) -> list[BatchLine]:
    """The page's batch: every driving clip onto every character (clip by clip), numbered
    from 1, the same providers and options for each."""
    opts = options or TaskOptions()
    return [
        BatchLine(row=n, video=v, image=i, providers=list(providers), options=opts)
        for n, (v, i) in enumerate(((v, i) for v in videos for i in images), start=1)
    ]


def batch_key(lines: Sequence[BatchLine], owner: str, nonce: str = "") -> str:
    """The batch's identity: its rows as asked (and the page's nonce). The same rows sent
    again are the same batch, and nothing is sent twice."""
    asked = [
        [line.row, line.video, line.image, line.providers, line.options.model_dump(mode="json")]
        for line in lines
    ]
    digest = hashlib.sha256(
        json.dumps({"owner": owner, "rows": asked, "nonce": nonce}, sort_keys=True).encode()
    ).hexdigest()
    return f"batch-{digest[:40]}"


def _shown(value: str | None) -> str:
    """A file's name as a row shows it (a link: the last part of its path)."""
    if not value:
        return ""
    tail = value.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or value


def video_name(line: BatchLine) -> str:
    return _shown(line.video)


def image_name(line: BatchLine) -> str:
    return _shown(line.image)


# ------------------------------------------------------------------ plan


class Plan(BaseModel):
    """What sending a batch would do: every row with its problems, notes and estimates, and
    which rows (and providers) still have something to send."""

    name: str
    key: str
    lines: list[BatchLine]
    batch_id: str | None = None  # sent before under this key
    # Row → providers whose task does not exist yet (rows that can go, not sent before).
    to_send: dict[int, list[str]] = Field(default_factory=dict)
    sent: list[int] = Field(default_factory=list)  # rows sent before: not checked again

    @property
    def refused(self) -> list[BatchLine]:
        return [line for line in self.lines if line.problems and line.row not in self.sent]

    @property
    def task_count(self) -> int:
        return sum(len(p) for p in self.to_send.values())

    def planned_by_provider(self) -> dict[str, float | None]:
        """What the tasks still to send are estimated to cost, per provider (USD; None when
        a task of that provider has no price: what the spending cap is asked about)."""
        out: dict[str, float | None] = {}
        by_row = {line.row: line for line in self.lines}
        for row, providers in self.to_send.items():
            for pid in providers:
                estimate, so_far = by_row[row].estimates.get(pid), out.get(pid, 0.0)
                out[pid] = None if estimate is None or so_far is None else so_far + estimate
        return {pid: None if v is None else round(v, 2) for pid, v in out.items()}

    def priced_by_provider(self) -> dict[str, float]:
        """USD per provider of the tasks still to send that have a price."""
        out: dict[str, float] = {}
        by_row = {line.row: line for line in self.lines}
        for row, providers in self.to_send.items():
            for pid in providers:
                estimate = by_row[row].estimates.get(pid)
                if estimate is not None:
                    out[pid] = round(out.get(pid, 0.0) + estimate, 2)
        return out

    @property
    def total_usd(self) -> float:
        """The priced part of what is still to send (`unpriced` says what is not in it)."""
        return round(sum(self.priced_by_provider().values()), 2)

    @property
    def batch_usd(self) -> float:
        """The priced estimate of the whole batch: rows sent before and rows to send."""
        going = set(self.sent) | set(self.to_send)
        return round(
            sum(
                v
                for line in self.lines
                if line.row in going
                for v in line.estimates.values()
                if v is not None
            ),
            2,
        )

    def unpriced(self) -> dict[str, int]:
        """Providers with no known price → how many of their tasks are to be sent."""
        out: dict[str, int] = {}
        by_row = {line.row: line for line in self.lines}
        for row, providers in self.to_send.items():
            for pid in providers:
                if by_row[row].estimates.get(pid) is None:
                    out[pid] = out.get(pid, 0) + 1
        return out


def plan(
    studio: Studio,
    lines: Sequence[BatchLine],
    *,
    name: str,
    key: str,
    owner: str = LOCAL_OWNER,
    checker: Checker | None = None,
) -> Plan:
    """Check every input of every row not sent yet (each file once, against the providers
    of the rows that use it) and price it. Nothing is written or sent."""
    existing = studio.store.batch_by_key(key)
    if existing is not None and existing.owner != owner:
        existing = None  # keys hash the owner in: a collision is not theirs to reuse
    sent: dict[int, set[str]] = {}
    kept: dict[int, BatchLine] = {}
    if existing is not None:
        # A run with no task yet (a process stopped between the two writes) counts as
        # sent: its providers go now, under the run's own keys.
        for row in studio.store.batch_runs(existing.id):
            sent.setdefault(row, set())
        for row, task in studio.store.batch_tasks(existing.id):
            sent[row].add(task.provider)
        kept = {line.row: line for line in existing.lines if line.row in sent}

    out: list[BatchLine] = []
    to_check: list[BatchLine] = []
    to_send: dict[int, list[str]] = {}
    for line in lines:
        if line.row in kept:
            # Sent before: shown as it was planned then, its missing providers go now.
            previous = kept[line.row]
            missing = [p for p in previous.providers if p not in sent[line.row]]
            if missing:
                to_send[line.row] = missing
            out.append(previous)
            continue
        fresh = line.model_copy(deep=True)
        fresh.notes, fresh.estimates = [], {}
        if not fresh.problems:
            _ready(studio, fresh)
        out.append(fresh)
        if not fresh.problems:
            to_check.append(fresh)
    _check(studio, to_check, checker or _default_checker(studio))
    for line in to_check:
        if not line.problems:
            to_send[line.row] = list(line.providers)
    return Plan(
        name=name,
        key=key,
        lines=out,
        batch_id=existing.id if existing else None,
        to_send=to_send,
        sent=sorted(kept),
    )


def _ready(studio: Studio, line: BatchLine) -> None:
    """The inputs exist (or are links) and every provider can take them."""
    try:
        inputs = studio.prepare_inputs(line.video, line.image)
    except ReenactError as err:
        line.problems.append(str(err))
        return
    line.video, line.image = inputs.video, inputs.image
    for pid in line.providers:
        try:
            studio._ready_to_create(pid, inputs)
        except ReenactError as err:
            line.problems.append(str(err))


def _default_checker(studio: Studio) -> Checker:
    from services.media import run_checks

    def check(
        path: Path, role: MediaRole, providers: tuple[str, ...], source: Source, name: str
    ) -> CheckReport:
        caps = [studio.provider(pid).capabilities() for pid in providers]
        return run_checks(path, role, caps, source=source, name=name)

    return check


def _check(studio: Studio, lines: Sequence[BatchLine], checker: Checker) -> None:
    """Each file once (as the role the rows use it in, against every provider that will get
    it); each row then keeps the sentences of its own providers. Sequential: a file's checks
    take ~0.1 s (headers and a few small keyframes), and OpenCV's face finder is shared."""
    wanted: dict[tuple[str, MediaRole], set[str]] = {}
    for line in lines:
        for role, value in TaskInputs(video=line.video, image=line.image).items():
            wanted.setdefault((value, role), set()).update(line.providers)
    reports: dict[tuple[str, MediaRole], CheckReport | str] = {}
    for (value, role), providers in wanted.items():
        reports[(value, role)] = _report(studio, value, role, tuple(sorted(providers)), checker)
    prices = studio.prices()
    for line in lines:
        duration: float | None = None
        for role, value in TaskInputs(video=line.video, image=line.image).items():
            report = reports[(value, role)]
            if isinstance(report, str):
                line.problems.append(report)
                continue
            if role is MediaRole.DRIVING_VIDEO and report.info is not None:
                duration = report.info.duration_s
            for check in report.checks:
                if check.provider is not None and check.provider not in line.providers:
                    continue
                who = f"{studio.provider(check.provider).name}: " if check.provider else ""
                if check.status == "fail":
                    line.problems.append(who + check.sentence)
                elif check.status == "warn":
                    line.notes.append(who + check.sentence)
        inputs = TaskInputs(video=line.video, image=line.image)
        for pid in line.providers:
            caps = studio.provider(pid).capabilities()
            line.estimates[pid] = studio.estimate_cost(
                caps, inputs, duration_s=duration, prices=prices
            )


def _report(
    studio: Studio, value: str, role: MediaRole, providers: tuple[str, ...], checker: Checker
) -> CheckReport | str:
    """One file's report; a link is fetched first (a refused link: its sentence)."""
    if is_web_link(value):
        from services.fetch import ingest_url

        try:
            path = ingest_url(value, studio.settings)
        except InputError as err:
            return str(err)
        return checker(path, role, providers, "url", _shown(value))
    path = Path(value)
    return checker(path, role, providers, "path", path.name)


# ------------------------------------------------------------------ send


def send(studio: Studio, planned: Plan, *, owner: str = LOCAL_OWNER, meta: Any = None) -> Batch:
    """Within the spending cap (refused as a whole, with a sentence, before anything is
    written), the batch row, then one run per row that can go. A row whose submission
    raises anyway keeps the sentence; the others carry on. Sent again: nothing twice."""
    from services.spending import ensure_within_cap

    if planned.to_send:
        try:
            ensure_within_cap(studio.store, studio.settings, planned.planned_by_provider())
        except InputError as err:
            raise InputError(f"{err} Nothing in this batch was sent.") from None
    batch, _ = studio.store.create_batch(
        planned.name,
        planned.lines,
        idempotency_key=planned.key,
        estimate_usd=planned.batch_usd,
        owner=owner,
    )
    lines = {line.row: line for line in batch.lines}
    failed = False
    for row, _providers in planned.to_send.items():
        line = lines[row]
        try:
            studio.submit_many(
                line.providers,
                TaskInputs(video=line.video, image=line.image),
                line.options,
                idempotency_key=f"batch:{batch.id}:{row}",
                owner=owner,
                meta=meta,
                batch_id=batch.id,
                batch_row=row,
            )
        except ReenactError as err:
            line.problems.append(str(err))
            failed = True
    if failed:
        studio.store.set_batch_lines(batch.id, list(lines.values()))
        batch = batch.model_copy(update={"lines": list(lines.values())})
    return batch


# ------------------------------------------------------------------ progress

Bucket = Literal["queued", "running", "done", "failed"]
BUCKETS: tuple[Bucket, ...] = ("queued", "running", "done", "failed")


def bucket(task: Task) -> Bucket:
    """Where a task counts in the batch's progress: a success counts as done once its file
    is saved (saving is still running); one that cannot be saved needs a look, as a failure."""
    from services.lifecycle import archive_pending

    status = task.status
    if status is TaskStatus.SUCCEEDED:
        if task.result_path:
            return "done"
        return "running" if archive_pending(task) else "failed"
    if status in (TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN):
        return "failed"
    if status is TaskStatus.RUNNING:
        return "running"
    return "queued"


class RowTask(NamedTuple):
    row: int
    task: Task


@dataclass
class BatchView:
    """A batch as it stands. Plain data, built on every refresh of a running batch's view
    (500 tasks: no per-task validation)."""

    batch: Batch
    tasks: list[RowTask]  # the current task per row and provider (a retry replaces its task)
    counts: dict[str, int]  # queued, running, done, failed (tasks) and not_sent (rows)
    eta_s: float | None = None  # seconds until every task is settled, as far as can be told
    lines: dict[int, BatchLine] = field(init=False)

    def __post_init__(self) -> None:
        self.lines = {line.row: line for line in self.batch.lines}

    @property
    def settled(self) -> bool:
        from services.lifecycle import settled

        return all(settled(rt.task) for rt in self.tasks)

    @property
    def total(self) -> int:
        return len(self.tasks)

    def line(self, row: int) -> BatchLine | None:
        return self.lines.get(row)

    def not_sent(self) -> list[BatchLine]:
        sent = {rt.row for rt in self.tasks}
        return [line for line in self.batch.lines if line.problems and line.row not in sent]


def load(studio: Studio, batch_id: str, *, owner: str | None = None) -> BatchView:
    """The batch as it stands (two reads: the batch, its runs' tasks; one more for the ETA
    while anything runs). With `owner`: someone else's batch is answered like a missing one."""
    batch = studio.store.get_batch(batch_id) if _ID.match(batch_id) else None
    if batch is None or (owner is not None and batch.owner != owner):
        raise InputError(f"No batch with id '{batch_id[:40]}'.")
    return view_of(studio, batch, studio.store.batch_tasks(batch.id))


_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def view_of(studio: Studio, batch: Batch, row_tasks: Sequence[tuple[int, Task]]) -> BatchView:
    from services.compare.runs import current_tasks

    by_row: dict[int, list[Task]] = {}
    for row, task in row_tasks:
        by_row.setdefault(row, []).append(task)
    lines = {line.row: line for line in batch.lines}
    current: list[RowTask] = []
    for row, tasks in sorted(by_row.items()):
        line = lines.get(row)
        # Only the row's provider order matters to current_tasks (the run as the row asked).
        run = Run.model_construct(providers=line.providers if line else [])
        current.extend(RowTask(row, t) for t in current_tasks(run, tasks))
    counts: dict[str, int] = dict.fromkeys(BUCKETS, 0)
    unfinished: list[Task] = []
    for rt in current:
        where = bucket(rt.task)
        counts[where] += 1
        if where in ("queued", "running"):
            unfinished.append(rt.task)
    view = BatchView(batch=batch, tasks=current, counts=counts)
    view.counts["not_sent"] = len(view.not_sent())
    if unfinished:
        durations = studio.store.recent_durations(sorted({t.provider for t in unfinished}))
        view.eta_s = eta_s(unfinished, durations, utcnow())
    return view


def concurrency(provider_id: str) -> int | None:
    """Tasks a provider renders at once: the local engine its slots (one per two cores);
    a remote provider, as far as this app can tell, all of them (None)."""
    if provider_id == "local":
        from services.engine.jobs import slot_count

        return slot_count()
    return None


def eta_s(
    unfinished: Iterable[Task], durations: Mapping[str, Sequence[float]], now: datetime
) -> float | None:
    """Seconds until the last of these tasks is done, from each provider's observed
    durations (submit → done, the median of its latest successes): a task expects that long
    from its own submit, or what its provider said is left. A provider that renders a few
    at a time (the local engine) works through its queue slot by slot. None while a
    provider has no observed duration yet."""
    by_provider: dict[str, list[Task]] = {}
    for task in unfinished:
        by_provider.setdefault(task.provider, []).append(task)
    longest = 0.0
    for provider, tasks in by_provider.items():
        seen = durations.get(provider) or []
        if not seen:
            return None
        typical = statistics.median(seen)
        left: list[float] = []
        for task in tasks:
            said = task.meta.get("eta_seconds")
            if task.status is TaskStatus.RUNNING and isinstance(said, int | float) and said >= 0:
                left.append(float(said))
                continue
            if task.status is TaskStatus.SUCCEEDED:  # the file is being saved
                left.append(1.0)
                continue
            ran = max(0.0, (now - task.created_at).total_seconds())
            left.append(max(typical - ran, typical * 0.05))
        slots = concurrency(provider)
        if slots is None:
            longest = max(longest, max(left))
        else:
            # Slot by slot: the work still to do shared among the slots, never less than
            # the longest single task still to finish.
            longest = max(longest, sum(left) / slots, max(left))
    return longest


# ------------------------------------------------------------------ results


def exports_dir(settings: Settings, batch_id: str) -> Path:
    """Where a batch's ZIP and CSV are kept (served by the /batches route)."""
    from services.publish import safe_name

    return settings.data_dir / "exports" / "batches" / safe_name(batch_id)


def zip_name(batch_id: str) -> str:
    return f"batch-{batch_id}.zip"


def csv_name(batch_id: str) -> str:
    return f"batch-{batch_id}.csv"


def _result_files(view: BatchView) -> list[tuple[RowTask, str, Path]]:
    out = []
    for rt in view.tasks:
        task = rt.task
        if task.status is TaskStatus.SUCCEEDED and task.result_path:
            line = view.line(rt.row)
            stem = "-".join(
                p
                for p in (
                    f"row{rt.row}",
                    task.provider,
                    Path(video_name(line)).stem if line else "",
                    Path(image_name(line)).stem if line else "",
                )
                if p
            )
            out.append((rt, stem, Path(task.result_path)))
    return out


def costs(studio: Studio, task_ids: Sequence[str]) -> dict[str, tuple[float | None, str]]:
    """What each task counts for in spending, by the one rule (services/spending.py's
    COUNTED): the provider's own figure ("reported") or the estimate ("estimate"; None
    when there is no price). A task left out counts nothing (a failure it did not charge)."""
    from sqlalchemy import select

    from services.spending import COUNTED
    from services.store import TaskRow

    if not task_ids:
        return {}
    stmt = select(TaskRow.id, TaskRow.cost_usd, TaskRow.cost_estimate).where(
        TaskRow.id.in_(list(task_ids)), COUNTED
    )
    with studio.store.engine.connect() as conn:
        return {
            tid: (reported, "reported") if reported is not None else (estimate, "estimate")
            for tid, reported, estimate in conn.execute(stmt)
        }


def summary_rows(
    studio: Studio, view: BatchView, arcnames: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The CSV of what each row produced: one line per task (and one per row not sent),
    with what each task cost (`costs`)."""
    charged = costs(studio, [rt.task.id for rt in view.tasks])
    rows: list[dict[str, Any]] = []
    by_row: dict[int, list[RowTask]] = {}
    for rt in view.tasks:
        by_row.setdefault(rt.row, []).append(rt)
    for line in view.batch.lines:
        base = {"row": line.row, "video": video_name(line), "image": image_name(line)}
        if line.row not in by_row:
            rows.append(
                {
                    **base,
                    "provider": ";".join(line.providers),
                    "task_id": "",
                    "status": "not sent",
                    "result_file": "",
                    "cost_usd": None,
                    "cost_source": "",
                    "error": " ".join(line.problems),
                }
            )
            continue
        for rt in by_row[line.row]:
            task = rt.task
            cost, source = charged.get(task.id, (None, ""))
            if task.id in charged and cost is None:
                source = "no price"
            rows.append(
                {
                    **base,
                    "provider": task.provider,
                    "task_id": task.id,
                    "status": task.status.value,
                    "result_file": (arcnames or {}).get(task.id, ""),
                    "cost_usd": cost,
                    "cost_source": source,
                    "error": task.error or "",
                }
            )
    return rows


def export(studio: Studio, view: BatchView, out_dir: Path) -> tuple[Path, Path]:
    """Write `batch-<id>.zip` (every result, summary.csv and summary.json) and the same CSV
    beside it as `batch-<id>.csv`; both to `.part` first, then renamed. Returns both."""
    from services.compare.export import arcnames, results_zip, summary_csv

    files = _result_files(view)
    names = arcnames([(stem, path) for _, stem, path in files])
    named = {rt.task.id: n for (rt, _, _), n in zip(files, names, strict=True)}
    rows = summary_rows(studio, view, named)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = results_zip(
        out_dir / zip_name(view.batch.id), [(stem, path) for _, stem, path in files], rows
    )
    table = out_dir / csv_name(view.batch.id)
    part = table.with_name(table.name + ".part")
    try:
        part.write_bytes(summary_csv(rows).encode("utf-8"))
        part.replace(table)
    finally:
        part.unlink(missing_ok=True)
    return archive, table
