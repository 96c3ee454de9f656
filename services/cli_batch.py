"""`reenact batch FILE.csv`, `reenact batch-status BATCH_ID`, `reenact batch-export BATCH_ID`:
the Create page's Batch tab for scripts (services/batch.py does the work).

`batch` checks every row and prices it, prints the plan and the total, and sends only once
confirmed: `--yes`, or an answer at the prompt when stdin is a terminal (`--dry-run` checks
and prices, and sends nothing). A refused row is reported with its sentences and the others
go. The same file sent again sends nothing twice (`--again`: a new batch, new charges).
With `--wait` the counts and the ETA are drawn on stderr until every task is settled, and
the exit code is `compare`'s: 0 all done, 1 any row refused or task failed, 3 timeout.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services import cli
from services.cli import EXIT_FAILED, EXIT_GAVE_UP, EXIT_OK, EXIT_USAGE, CliExit, Ctx
from services.cli_output import StatusLine

if TYPE_CHECKING:
    from services.batch import BatchView, Plan
    from services.models import Task
    from services.studio import Studio


def register(
    add: Callable[[str, Callable[[Ctx], int], str], argparse.ArgumentParser],
    json_flag: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the batch commands to `reenact`'s parser (services/cli.py build_parser)."""
    p = add("batch", cmd_batch, "check, price and send many rows from a CSV, one run per row")
    p.add_argument(
        "file",
        metavar="FILE.csv",
        help="columns video,image,providers,options (paths relative to the CSV's folder)",
    )
    p.add_argument(
        "--providers",
        metavar="ID,ID,...",
        help="providers for the rows whose providers cell is empty",
    )
    send = p.add_mutually_exclusive_group()
    send.add_argument("--yes", action="store_true", help="send without asking")
    send.add_argument(
        "--dry-run", action="store_true", help="check and price every row; send nothing"
    )
    p.add_argument(
        "--again",
        action="store_true",
        help="send the same rows again as a new batch (new charges)",
    )
    cli.sound_flag(p)
    _wait_flags(p)
    json_flag(p)

    p = add("batch-status", cmd_batch_status, "show a batch: counts, ETA and every row")
    p.add_argument("batch_id", metavar="BATCH_ID")
    _wait_flags(p)
    json_flag(p)

    p = add("batch-export", cmd_batch_export, "write a batch's ZIP of results and its CSV")
    p.add_argument("batch_id", metavar="BATCH_ID")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write them to")


def _wait_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait until every task is done, with the counts and ETA on stderr",
    )
    p.add_argument(
        "--timeout",
        type=cli._timeout,
        metavar="S",
        help="with --wait: give up after S seconds (exit 3; the batch carries on)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="with --wait: write the ZIP of results and the CSV of the rows here",
    )


# ---- commands --------------------------------------------------------------------------------
def cmd_batch(ctx: Ctx) -> int:
    from services.batch import batch_key, plan, read_csv, send
    from services.models import LOCAL_OWNER

    a = ctx.args
    defaults = _default_providers(a.providers)
    out = cli._out_dir(a.out)
    lines = read_csv(a.file, default_providers=defaults)
    key = batch_key(lines, LOCAL_OWNER, nonce=uuid.uuid4().hex if a.again else "")
    ctx.note(f"Checking {len(lines)} row{'s' if len(lines) != 1 else ''}…")
    planned = plan(ctx.studio, lines, name=Path(a.file).name, key=key)
    ctx.out(plan_text(planned))
    refused = bool(planned.refused)

    if not planned.to_send:
        if planned.batch_id is None:
            ctx.emit(plan_json(planned))
            raise CliExit(EXIT_FAILED, "Nothing was sent: every row was refused (see above).")
        ctx.note(
            f"The rows that can go were sent before (batch {planned.batch_id}); nothing was "
            "sent again. `--again` sends the same rows as a new batch."
        )
        return _follow(ctx, planned.batch_id, out, refused=refused)
    if a.dry_run:
        ctx.emit(plan_json(planned))
        return EXIT_FAILED if refused else EXIT_OK
    if not a.yes:
        _confirm(planned)
    batch = send(ctx.studio, planned, meta=cli._sound_meta(a))
    sent = f"Batch {batch.id}: {planned.task_count} task{'s' if planned.task_count != 1 else ''}"
    ctx.note(
        f"{sent} sent."
        if a.wait
        else f"{sent} sent. Follow it with `reenact batch-status {batch.id}`, or add --wait."
    )
    return _follow(ctx, batch.id, out, refused=refused)


def cmd_batch_status(ctx: Ctx) -> int:
    from services.batch import load

    ctx.studio.recover_interrupted()
    view = load(ctx.studio, ctx.args.batch_id)
    return _follow(ctx, view.batch.id, cli._out_dir(ctx.args.out), refused=bool(view.not_sent()))


def cmd_batch_export(ctx: Ctx) -> int:
    from services.batch import export, load

    out = cli._out_dir(ctx.args.out)
    assert out is not None
    view = load(ctx.studio, ctx.args.batch_id)
    for path in export(ctx.studio, view, out):
        ctx.out(str(path.resolve()))
    return EXIT_OK


def _default_providers(value: str | None) -> list[str]:
    if not value:
        return []
    from services.providers.registry import provider_class

    ids = cli._provider_list(value)
    for pid in ids:
        provider_class(pid)  # an unknown id is a usage error (ConfigError, exit 2)
    return ids


def _confirm(planned: Plan) -> None:
    """Ask once at a terminal; a script must say --yes."""
    what = f"{planned.task_count} task{'s' if planned.task_count != 1 else ''}"
    cost = total_words(planned)
    if not sys.stdin.isatty():
        raise CliExit(
            EXIT_USAGE,
            f"Nothing was sent: add --yes to send {what} ({cost}), or --dry-run to only "
            "check and price them.",
        )
    sys.stderr.write(f"Send {what} ({cost})? [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline().strip().lower()
    except (OSError, ValueError):
        answer = ""
    if answer not in ("y", "yes"):
        raise CliExit(EXIT_FAILED, "Nothing was sent.")


def _follow(ctx: Ctx, batch_id: str, out: Path | None, *, refused: bool) -> int:
    """Show the batch (waiting first with --wait), write its ZIP with --out, pick the code."""
    from services.batch import export, load

    view = load(ctx.studio, batch_id)
    if ctx.args.wait and not view.settled:
        view = _wait(ctx, view)
    if out is not None and ctx.args.wait:
        for path in export(ctx.studio, view, out):
            ctx.note(f"Saved {path.resolve()}")
    ctx.out(status_text(view))
    ctx.emit(view_json(ctx.studio, view))
    if refused or view.counts["failed"]:
        return EXIT_FAILED
    return EXIT_OK


def _wait(ctx: Ctx, view: BatchView) -> BatchView:
    from services.batch import load
    from services.monitor import WaitTimeout

    line = CountsLine(sys.stderr, view, ctx.studio.store.recent_durations)
    try:
        ctx.runtime.monitor.wait_many(
            [rt.task.id for rt in view.tasks], timeout=ctx.args.timeout, on_update=line.update
        )
    except WaitTimeout:
        line.done()
        current = load(ctx.studio, view.batch.id)
        ctx.emit(view_json(ctx.studio, current))
        raise CliExit(
            EXIT_GAVE_UP,
            f"Gave up waiting after {ctx.args.timeout:g} s; the batch carries on: "
            f"reenact batch-status {view.batch.id} --wait",
        ) from None
    finally:
        line.done()
    return load(ctx.studio, view.batch.id)


class CountsLine(StatusLine):
    """`--wait` feedback on stderr: the batch's counts and ETA."""

    def __init__(
        self,
        stream: Any,
        view: BatchView,
        observed: Callable[[list[str]], dict[str, list[float]]],
    ) -> None:
        super().__init__(stream)
        self.batch_id = view.batch.id
        self.tasks: dict[str, Task] = {rt.task.id: rt.task for rt in view.tasks}
        self.not_sent = view.counts.get("not_sent", 0)
        self.observed = observed  # provider ids → their recent durations (the store's)
        self.durations: dict[str, list[float]] | None = None
        self._last = ""

    def update(self, task: Task) -> None:
        from services.batch import BUCKETS, bucket, eta_s
        from services.models import utcnow

        before = self.tasks.get(task.id)
        self.tasks[task.id] = task
        if before is None or bucket(before) != bucket(task):
            self.durations = None  # a task moved on: what was observed may have changed
        counts: dict[str, int] = dict.fromkeys(BUCKETS, 0)
        for t in self.tasks.values():
            counts[bucket(t)] += 1
        words = counts_words(counts, self.not_sent)
        unfinished = [t for t in self.tasks.values() if bucket(t) in ("queued", "running")]
        if unfinished:
            if self.durations is None:
                self.durations = self.observed(sorted({t.provider for t in unfinished}))
            eta = eta_s(unfinished, self.durations, utcnow())
            if eta is not None:
                words += f" · about {duration_words(eta)} left"
        if words == self._last and not self.tty:
            return
        self._last = words
        line = f"Batch {self.batch_id}: {words}"
        if self.tty:
            self.redraw(line)
        else:
            self._write(line + "\n")


# ---- words -----------------------------------------------------------------------------------
def duration_words(seconds: float) -> str:
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def counts_words(counts: dict[str, int], not_sent: int = 0) -> str:
    words = " · ".join(f"{counts.get(b, 0)} {b}" for b in ("queued", "running", "done", "failed"))
    if not_sent:
        words += f" · {not_sent} row{'s' if not_sent != 1 else ''} not sent"
    return words


def _usd(value: float | None) -> str:
    from services.spending import usd

    if value is None:
        return "no price"
    return "free" if value == 0 else f"≈ {usd(value)}"


def total_words(planned: Plan) -> str:
    unpriced = planned.unpriced()
    words = _usd(planned.total_usd)
    if unpriced:
        n = sum(unpriced.values())
        words += f" + {n} task{'s' if n != 1 else ''} without a price"
    return words


def plan_text(planned: Plan) -> str:
    from services.batch import image_name, video_name
    from services.cli_output import table

    rows = []
    for line in planned.lines:
        if line.row in planned.sent:
            state = "sent before"
        elif line.problems:
            state = "NOT SENT"
        else:
            known = [v for v in line.estimates.values() if v is not None]
            state = _usd(sum(known)) if len(known) == len(line.estimates) else "no price"
        rows.append(
            [str(line.row), video_name(line), image_name(line), ";".join(line.providers), state]
        )
    parts = [
        f"{planned.name}: {len(planned.lines)} row{'s' if len(planned.lines) != 1 else ''}",
        table(["ROW", "VIDEO", "IMAGE", "PROVIDERS", "ESTIMATE"], rows),
    ]
    # A sentence about a file shared by many rows is said once, with its rows.
    said: dict[tuple[str, str], list[int]] = {}
    for line in planned.lines:
        if line.row in planned.sent:
            continue
        for problem in line.problems:
            said.setdefault(("", problem), []).append(line.row)
        for note in line.notes:
            said.setdefault(("note: ", note), []).append(line.row)
    for (kind, sentence), rows_of in sorted(said.items(), key=lambda kv: (kv[0][0], kv[1])):
        which = "row" if len(rows_of) == 1 else "rows"
        parts.append(f"  {which} {', '.join(map(str, rows_of))}: {kind}{sentence}")
    rows_to_send = len(planned.to_send)
    if rows_to_send:
        per_provider = "; ".join(
            f"{pid} {_usd(v)}" for pid, v in planned.priced_by_provider().items()
        )
        parts.append(
            f"To send: {rows_to_send} row{'s' if rows_to_send != 1 else ''}, "
            f"{planned.task_count} task{'s' if planned.task_count != 1 else ''} · "
            f"{total_words(planned)}" + (f" ({per_provider})" if per_provider else "")
        )
    if planned.refused:
        n = len(planned.refused)
        parts.append(f"{n} row{'s are' if n != 1 else ' is'} not sent (the sentences above).")
    return "\n".join(parts)


def status_text(view: BatchView) -> str:
    from services.batch import image_name, video_name
    from services.cli_output import percent, table

    counts = counts_words(view.counts, view.counts.get("not_sent", 0))
    head = f"Batch {view.batch.id} ({view.batch.name}): {counts}"
    if view.eta_s is not None:
        head += f" · about {duration_words(view.eta_s)} left"
    rows = []
    for rt in view.tasks:
        line = view.line(rt.row)
        task = rt.task
        rows.append(
            [
                str(rt.row),
                video_name(line) if line else "",
                image_name(line) if line else "",
                task.provider,
                task.status.value,
                percent(task),
                task.id,
                task.result_path or task.error or "",
            ]
        )
    for line in view.not_sent():
        rows.append(
            [
                str(line.row),
                video_name(line),
                image_name(line),
                ";".join(line.providers),
                "not sent",
                "—",
                "-",
                " ".join(line.problems),
            ]
        )
    rows.sort(key=lambda r: int(r[0]))
    headers = ["ROW", "VIDEO", "IMAGE", "PROVIDER", "STATE", "DONE", "TASK", "RESULT / NOTE"]
    return head + "\n" + table(headers, rows)


# ---- JSON ------------------------------------------------------------------------------------
def plan_json(planned: Plan) -> dict[str, Any]:
    return {
        "batch": None,
        "name": planned.name,
        "sent_before": planned.batch_id,
        "rows": [line.model_dump(mode="json") for line in planned.lines],
        "to_send": {str(row): providers for row, providers in planned.to_send.items()},
        "total_usd": planned.total_usd,
        "unpriced": planned.unpriced(),
    }


def view_json(studio: Studio, view: BatchView) -> dict[str, Any]:
    from services.batch import summary_rows

    batch = view.batch
    return {
        "batch": {
            "id": batch.id,
            "name": batch.name,
            "created_at": batch.created_at.isoformat(),
            "estimate_usd": batch.estimate_usd,
        },
        "counts": view.counts,
        "eta_s": view.eta_s,
        "settled": view.settled,
        "rows": summary_rows(studio, view),
        # Each task as `reenact status --json` shows it, but its inputs and options: the
        # row says them (and a running batch's view reads its tasks without them).
        "tasks": [
            {"row": rt.row, **_without(rt.task.public_json(), "inputs", "options")}
            for rt in view.tasks
        ],
    }


def _without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}
