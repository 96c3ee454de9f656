"""`reenact`: the command line face of the same services the app uses.

Contract (design.md): commands and flags below; `--json` prints exactly one JSON document on
stdout and everything else goes to stderr; `--wait` draws a progress bar on stderr; exit codes
0 succeeded, 1 task failed / canceled / input rejected, 2 usage or configuration error,
3 gave up waiting (the task stays tracked). No traceback ever reaches the terminal.

Imports are lazy: `reenact providers` must start fast, so the database layer, the monitor and
media tools load only for the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from services.config import Settings
    from services.models import Task
    from services.runtime import Runtime
    from services.studio import Studio

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_GAVE_UP = 0, 1, 2, 3


class CliExit(Exception):
    """Stop with this exit code and sentence (the sentence goes to stderr)."""

    def __init__(self, code: int, sentence: str, payload: Any = None) -> None:
        super().__init__(sentence)
        self.code = code
        self.sentence = sentence
        self.payload = payload


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        # Kept so `--json` can still print its one document on a usage error.
        _Parser.last_error = f"{self.prog}: {message}"
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")

    last_error: str | None = None


class Ctx:
    """One command's run: flags, output helpers and the task ids it is responsible for."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json: bool = bool(getattr(args, "json", False))
        self.task_ids: list[str] = []
        self.run_id: str | None = None  # a comparison: its numbers are printed when done
        self._runtime: Runtime | None = None
        self.printed_json = False

    @property
    def runtime(self) -> Runtime:
        """The process's runtime (services/runtime.py), built on first use: `providers`
        needs no database, most commands no monitor."""
        if self._runtime is None:
            from services.runtime import Runtime

            self._runtime = Runtime()
        return self._runtime

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def studio(self) -> Studio:
        return self.runtime.studio

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()

    def out(self, text: str) -> None:
        """Human output: stdout normally, stderr under --json (stdout is the document's)."""
        stream = sys.stderr if self.json else sys.stdout
        print(text, file=stream, flush=True)

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def emit(self, document: Any) -> None:
        if self.json and not self.printed_json:
            sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            self.printed_json = True


# ---- helpers ---------------------------------------------------------------------------------
def _task_json(task: Task) -> dict[str, Any]:
    return task.public_json()


def exit_code(task: Task) -> int:
    from services.lifecycle import needs_attention

    return EXIT_FAILED if needs_attention(task) else EXIT_OK


def _out_dir(value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise CliExit(EXIT_USAGE, f"--out must be a folder, and {value} is a file.")
    return path


def _copy_result(task: Task, out: Path) -> Path:
    import shutil

    from services.errors import InputError

    assert task.result_path is not None
    source = Path(task.result_path)
    if not source.is_file():
        raise InputError(
            f"The archived result of task {task.id} is missing from the data folder "
            f"({source}); run `reenact download {task.id}` to fetch it again."
        )
    out.mkdir(parents=True, exist_ok=True)
    dest = out / f"{task.id}-{task.provider}{source.suffix or '.mp4'}"
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)
    return dest.resolve()


# TaskOptions field → the flag that sets it.
_OPTION_FLAGS = {
    "expression_intensity": "--intensity",
    "body_control": "--body-control",
    "seed": "--seed",
    "ratio": "--ratio",
    "public_figure_threshold": "--public-figure-threshold",
}


def _options(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from services.models import TaskOptions

    try:
        return TaskOptions(
            expression_intensity=getattr(args, "intensity", None),
            body_control=True if getattr(args, "body_control", False) else None,
            seed=getattr(args, "seed", None),
            ratio=getattr(args, "ratio", None),
            public_figure_threshold=getattr(args, "public_figure_threshold", None),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        flag = _OPTION_FLAGS.get(str(first["loc"][0]) if first.get("loc") else "", "an option")
        msg = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
        raise CliExit(EXIT_USAGE, f"{flag}: {msg}.") from None


def _note_unused_options(ctx: Ctx, options: Any, provider_ids: list[str]) -> None:
    """A provider is sent only the options it takes: say which flags it leaves out."""
    given = [name for name in options.model_dump(exclude_none=True) if name in _OPTION_FLAGS]
    for pid in provider_ids:
        caps = ctx.studio.provider(pid).capabilities()
        unused = [_OPTION_FLAGS[name] for name in given if name not in caps.options]
        if unused:
            ctx.note(f"Note: {caps.name} does not take {', '.join(unused)}; not sent there.")


def _finish(ctx: Ctx, tasks: list[Task], *, many: bool) -> int:
    """Deliver results (--out), print, and choose the exit code for these settled tasks."""
    from services.models import TaskStatus

    out = _out_dir(getattr(ctx.args, "out", None))
    code = EXIT_OK
    for task in tasks:
        code = max(code, exit_code(task))
        if task.status is TaskStatus.SUCCEEDED and out is not None:
            if task.result_path:
                dest = _copy_result(task, out)
                ctx.note(f"Saved {dest}")
            else:
                ctx.note(f"Task {task.id}: {task.error or 'the result was not archived.'}")
                code = max(code, EXIT_FAILED)
        elif task.status is TaskStatus.SUCCEEDED and not task.result_path and task.error:
            ctx.note(f"Task {task.id}: {task.error}")
        elif task.status is not TaskStatus.SUCCEEDED and task.error:
            ctx.note(f"Task {task.id} {task.status.value}: {task.error}")
    for task in tasks:
        ctx.out(_describe(task))
    if ctx.run_id is not None:
        ctx.emit(_run_numbers(ctx, ctx.run_id))
    else:
        ctx.emit([_task_json(t) for t in tasks] if many else _task_json(tasks[0]))
    return code


def _run_numbers(ctx: Ctx, run_id: str) -> list[dict[str, Any]]:
    """Measure what the comparison still lacks, print its numbers table and return the tasks
    as JSON with their numbers."""
    from services.cli_output import numbers_table
    from services.compare.analysis import analyze_pending
    from services.compare.runs import load_run, numbers

    view = load_run(ctx.studio, run_id)
    if any(t.result_path for t in view.tasks):
        ctx.note("Measuring the results (specs, motion fidelity)…")
        analyze_pending(ctx.studio.store, ctx.settings, view.tasks)
        view = load_run(ctx.studio, run_id)
    rows = numbers(ctx.studio, view)
    ctx.out("")
    ctx.out(numbers_table(rows))
    by_task = {r.task_id: r.model_dump(mode="json") for r in rows}
    return [{**_task_json(t), "numbers": by_task.get(t.id)} for t in view.tasks]


def _describe(task: Task) -> str:
    from services.cli_output import describe

    return describe(task)


def _wait(ctx: Ctx, tasks: list[Task], *, many: bool) -> int:
    from services.cli_output import ProgressBar
    from services.engine.render_queue import WAITING, waiting_for_worker
    from services.errors import ErrorKind
    from services.lifecycle import archive_blocked
    from services.monitor import WaitTimeout

    settings = ctx.studio.settings
    bar = ProgressBar(
        sys.stderr,
        waiting=lambda t: WAITING if waiting_for_worker([t], settings) else None,
    )
    monitor = ctx.runtime.monitor

    def on_update(task: Task) -> None:
        bar.update(task)
        # A rejected key will not fix itself while we wait: stop with the provider's words.
        if task.status.pollable and task.error_kind is ErrorKind.AUTHENTICATION:
            latest = ctx.studio.store.get_tasks([t.id for t in tasks]) if many else [task]
            raise CliExit(
                EXIT_FAILED,
                task.error or "The provider rejected the API key.",
                payload=[_task_json(t) for t in latest] if many else _task_json(task),
            )

    try:
        final = monitor.wait_many(
            [t.id for t in tasks], timeout=ctx.args.timeout, on_update=on_update
        )
    except WaitTimeout as exc:
        bar.done()
        ctx.emit([_task_json(t) for t in exc.tasks] if many else _task_json(exc.tasks[0]))
        raise CliExit(EXIT_GAVE_UP, str(exc)) from None
    finally:
        bar.done()
    code = _finish(ctx, final, many=many)
    # A full disk settles the wait (it needs the user), with the task's sentence said above;
    # the result is not here, so this is a failure.
    blocked = [t for t in final if archive_blocked(t)]
    for task in blocked:
        ctx.note(f"Once there is room: reenact download {task.id}")
    return max(code, EXIT_FAILED) if blocked else code


def _after_submit(ctx: Ctx, tasks: list[Task], *, many: bool) -> int:
    from services.lifecycle import settled

    if ctx.args.wait and not all(settled(t) for t in tasks):
        return _wait(ctx, tasks, many=many)
    code = EXIT_OK
    for task in tasks:
        code = max(code, exit_code(task))
        if task.error:
            ctx.note(f"Task {task.id} ({task.provider}) {task.status.value}: {task.error}")
        ctx.out(_describe(task))
    if code == EXIT_OK:
        ctx.note(
            "Follow progress with `reenact status "
            + (tasks[0].id if len(tasks) == 1 else "ID")
            + "`, or add --wait."
        )
    ctx.emit([_task_json(t) for t in tasks] if many else _task_json(tasks[0]))
    return code


# ---- commands --------------------------------------------------------------------------------
def cmd_providers(ctx: Ctx) -> int:
    infos: list[dict[str, Any]] = [
        {
            "id": info.id,
            "name": info.name,
            "available": info.availability.available,
            "reason": info.availability.reason,
            "key_source": info.availability.key_source,
            "capabilities": info.capabilities.model_dump(mode="json"),
        }
        for info in ctx.runtime.catalog.infos()
    ]
    if ctx.json:
        ctx.emit(infos)
    else:
        from services.cli_output import provider_table

        ctx.out(provider_table(infos))
    return EXIT_OK


def cmd_check(ctx: Ctx) -> int:
    from services.media import check_inputs

    providers = _provider_list(ctx.args.provider) if ctx.args.provider else None
    reports = check_inputs(list(ctx.args.items), providers, ctx.settings)
    failed = any(r.report.failed for r in reports)
    if ctx.json:
        ctx.emit([r.model_dump(mode="json") for r in reports])
    else:
        from services.cli_output import check_text

        ctx.out(check_text(reports))
    return EXIT_FAILED if failed else EXIT_OK


def _provider_list(value: str) -> list[str]:
    ids = [p.strip().lower() for p in value.split(",") if p.strip()]
    if not ids:
        raise CliExit(EXIT_USAGE, "Name at least one provider, for example --providers runway.")
    return list(dict.fromkeys(ids))


def _provider(ctx: Ctx, provider_id: str, *, require: bool = True) -> Any:
    from services.providers.registry import provider_class

    provider_class(provider_id)  # unknown id → ConfigError before the database is touched
    provider = ctx.studio.provider(provider_id)
    if require:
        provider.require_available()
    return provider


def _precheck(ctx: Ctx, inputs: Any, provider_ids: list[str]) -> None:
    """The checks the app shows before its Submit button, run before anyone pays: a failing
    one stops the submission (exit 1) with its sentence; warnings are only shown."""
    from services.links import is_web_link
    from services.media import run_checks
    from services.media.checks import Source
    from services.media.inputs import capabilities_for

    caps = capabilities_for(provider_ids, ctx.settings)
    problems: list[str] = []
    for role, value in inputs.items():
        source: Source = "url" if is_web_link(value) else "path"
        if source == "url":
            from services.fetch import ingest_url

            path = ingest_url(value, ctx.settings)  # InputError: a sentence, exit 1
        else:
            path = Path(value)
        report = run_checks(path, role, caps, source=source)
        for check in report.checks:
            who = f"{check.provider}: " if check.provider else ""
            if check.status == "fail":
                problems.append(f"  - {who}{check.sentence}")
            elif check.status == "warn":
                ctx.note(f"Note: {who}{check.sentence}")
    if problems:
        raise CliExit(
            EXIT_FAILED,
            "Nothing was submitted; these inputs would be refused or wasted:\n"
            + "\n".join(problems),
        )


def cmd_submit(ctx: Ctx) -> int:
    a = ctx.args
    _provider(ctx, a.provider.lower())
    options = _options(a)
    _out_dir(a.out)
    inputs = ctx.studio.prepare_inputs(a.video, a.image, a.character_video)
    _precheck(ctx, inputs, [a.provider.lower()])
    _note_unused_options(ctx, options, [a.provider.lower()])
    task = ctx.studio.submit(a.provider.lower(), inputs, options, meta=_sound_meta(a))
    ctx.task_ids = [task.id]
    return _after_submit(ctx, [task], many=False)


def cmd_compare(ctx: Ctx) -> int:
    a = ctx.args
    ids = _provider_list(a.providers)
    for pid in ids:
        _provider(ctx, pid)
    _out_dir(a.out)
    inputs = ctx.studio.prepare_inputs(a.video, a.image)
    _precheck(ctx, inputs, ids)
    options = _options(a)
    _note_unused_options(ctx, options, ids)
    run, tasks = ctx.studio.submit_many(ids, inputs, options, meta=_sound_meta(a))
    ctx.task_ids = [t.id for t in tasks]
    ctx.note(f"Run {run.id}: {len(tasks)} tasks.")
    if a.wait:
        ctx.run_id = run.id
    return _after_submit(ctx, tasks, many=True)


def cmd_export(ctx: Ctx) -> int:
    from services.compare.bundle import export_video, export_zip
    from services.compare.runs import load_run
    from services.errors import ReenactError

    out = _out_dir(ctx.args.out)
    assert out is not None
    view = load_run(ctx.studio, ctx.args.run_id)
    out.mkdir(parents=True, exist_ok=True)
    code = EXIT_OK
    try:
        ctx.note("Writing the side-by-side video…")
        ctx.out(str(export_video(ctx.studio, view, out).resolve()))
    except ReenactError as err:
        ctx.note(str(err))
        code = EXIT_FAILED
    ctx.out(str(export_zip(ctx.studio, view, out).resolve()))
    return code


def cmd_vote(ctx: Ctx) -> int:
    from services.compare.runs import vote

    saved = vote(ctx.studio, ctx.args.run_id, ctx.args.winner, note=ctx.args.note)
    others = ", ".join(p for p in saved.contenders if p != saved.winner)
    ctx.out(f"Recorded: {saved.winner} won run {saved.run_id} (against {others}).")
    ctx.emit(saved.model_dump(mode="json"))
    return EXIT_OK


def cmd_leaderboard(ctx: Ctx) -> int:
    from services.cli_output import leaderboard_table
    from services.compare.leaderboard import leaderboard

    standings = leaderboard(ctx.studio.store.votes())
    ctx.out(leaderboard_table(standings))
    ctx.emit([s.model_dump(mode="json") for s in standings])
    return EXIT_OK


def cmd_track(ctx: Ctx) -> int:
    from services.errors import ErrorKind

    a = ctx.args
    _provider(ctx, a.provider.lower())
    _out_dir(a.out)
    task = ctx.studio.track(a.provider.lower(), a.provider_task_id)
    ctx.task_ids = [task.id]
    # One poll now: a wrong id or key shows at once instead of after a long wait.
    ctx.runtime.monitor.tick([task.id], block=not a.wait)
    task = ctx.studio.get(task.id)
    if task.status.pollable and task.error_kind is ErrorKind.AUTHENTICATION:
        raise CliExit(
            EXIT_FAILED,
            task.error or "The provider rejected the API key.",
            payload=_task_json(task),
        )
    return _after_submit(ctx, [task], many=False)


def _refresh(ctx: Ctx, task: Task) -> Task:
    """Without the app running nothing else moves a task: check on it once, here."""
    from services.lifecycle import archive_pending

    if not (task.status.pollable or archive_pending(task)):
        return task
    ctx.runtime.monitor.tick([task.id], block=True)
    return ctx.studio.get(task.id)


def cmd_status(ctx: Ctx) -> int:
    ctx.studio.recover_interrupted()
    task = _refresh(ctx, ctx.studio.get(ctx.args.task_id))
    ctx.task_ids = [task.id]
    ctx.out(_describe(task))
    ctx.emit(_task_json(task))
    return exit_code(task)


def cmd_list(ctx: Ctx) -> int:
    from services.cli_output import task_table

    ctx.studio.recover_interrupted()
    tasks = ctx.studio.store.list_tasks(limit=100_000)
    if ctx.json:
        ctx.emit([_task_json(t) for t in tasks])
    else:
        ctx.out(task_table(tasks))
    return EXIT_OK


def cmd_download(ctx: Ctx) -> int:
    from services.errors import InputError
    from services.models import TaskStatus

    task = ctx.studio.get(ctx.args.task_id)
    ctx.task_ids = [task.id]
    if task.status is not TaskStatus.SUCCEEDED:
        raise InputError(
            f"Task {task.id} is {task.status.value}, so there is no result to download"
            + (" yet." if not task.status.terminal else ".")
        )
    if not task.result_path or not Path(task.result_path).is_file():
        from services import lifecycle

        missing = lifecycle.result_missing(task)  # the file was removed by hand: fetch again
        if missing is not None:
            ctx.studio.store.apply(missing)
        task = ctx.runtime.monitor.archive_now(task.id)
    out = _out_dir(ctx.args.out) or Path.cwd()
    try:
        dest = _copy_result(task, out)
    except OSError as exc:
        from services.errors import DiskFullError, is_disk_full

        if not is_disk_full(exc):
            raise
        # The archive is safe; only the copy did not fit. Leave no half-written file there.
        for partial in out.glob(f"{task.id}-*.part"):
            partial.unlink(missing_ok=True)
        raise DiskFullError(
            f"The disk holding {out} is full, so the result was not copied there: free some "
            f"space and run `reenact download {task.id}` again."
        ) from exc
    print(str(dest), flush=True)
    return EXIT_OK


# ---- parser ----------------------------------------------------------------------------------
def _sound_meta(args: argparse.Namespace) -> dict[str, Any]:
    """`--no-sound`, recorded on the task for whichever process archives its result."""
    from services.archive import sound_meta

    return sound_meta(not getattr(args, "no_sound", False))


def sound_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-sound",
        action="store_true",
        help="keep a silent result silent (by default the driving clip's sound is added to a "
        "result that has none; the provider's file is kept as original.mp4)",
    )


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of seconds") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def _public_figure_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--public-figure-threshold",
        choices=("auto", "low"),
        help="Runway's moderation of recognisable public figures: auto (standard) or low "
        "(less strict); other providers do not take it",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="reenact",
        description="Transfer a facial performance from a driving video onto a character, "
        "through paid providers or the offline local engine.",
        epilog="Exit codes: 0 succeeded, 1 task failed/canceled/input rejected, 2 usage or "
        "configuration error, 3 gave up waiting (the task stays tracked).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, func: Callable[[Ctx], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--json",
            action="store_true",
            help="print one JSON document on stdout (messages go to stderr)",
        )

    def wait_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--wait", action="store_true", help="wait until done, with a progress bar on stderr"
        )
        p.add_argument(
            "--timeout",
            type=_timeout,
            metavar="S",
            help="with --wait: give up after S seconds (exit 3; the task stays tracked)",
        )
        p.add_argument("--out", metavar="DIR", help="with --wait: copy the result file here")

    p = add("providers", cmd_providers, "list providers, whether each is ready, and why not")
    json_flag(p)

    p = add("check", cmd_check, "check videos and images (paths or URLs) before submitting")
    p.add_argument("items", nargs="+", metavar="PATH_OR_URL")
    p.add_argument(
        "--provider",
        metavar="ID",
        help="also check against this provider's limits (comma-separate several)",
    )
    json_flag(p)

    p = add("submit", cmd_submit, "start a task at one provider")
    p.add_argument("--provider", required=True, metavar="ID")
    p.add_argument("--video", required=True, metavar="V", help="driving video (path or URL)")
    p.add_argument("--image", required=True, metavar="I", help="character image (path or URL)")
    p.add_argument("--character-video", metavar="V2", help="character video (Act-Two)")
    p.add_argument("--intensity", type=int, metavar="N", help="expression intensity 1-5")
    p.add_argument("--body-control", action="store_true", help="transfer body motion too")
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--ratio", metavar="W:H", help="output ratio, for example 1280:720")
    sound_flag(p)
    _public_figure_flag(p)
    wait_flags(p)
    json_flag(p)

    p = add("track", cmd_track, "follow a task made elsewhere, by its provider task id")
    p.add_argument("--provider", required=True, metavar="ID")
    p.add_argument("provider_task_id", metavar="PROVIDER_TASK_ID")
    wait_flags(p)
    json_flag(p)

    p = add("status", cmd_status, "show one task (checking on it once if it is still running)")
    p.add_argument("task_id", metavar="TASK_ID")
    json_flag(p)

    p = add("list", cmd_list, "list every task, newest first")
    json_flag(p)

    p = add("download", cmd_download, "copy a task's result file (archiving it first if needed)")
    p.add_argument("task_id", metavar="TASK_ID")
    p.add_argument("--out", metavar="DIR", help="folder to write to (default: here)")

    p = add("compare", cmd_compare, "run the same inputs at several providers")
    p.add_argument("--providers", required=True, metavar="ID,ID,...")
    p.add_argument("--video", required=True, metavar="V")
    p.add_argument("--image", required=True, metavar="I")
    sound_flag(p)
    _public_figure_flag(p)
    wait_flags(p)
    json_flag(p)

    p = add("export", cmd_export, "write a comparison's side-by-side video and ZIP of results")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write them to")

    p = add("vote", cmd_vote, "judge a comparison: which provider's result won")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--winner", required=True, metavar="PROVIDER")
    p.add_argument("--note", metavar="TEXT", help="why (kept with the vote)")
    json_flag(p)

    p = add("leaderboard", cmd_leaderboard, "providers ranked from the votes (Bradley-Terry)")
    json_flag(p)

    from services import cli_fix

    cli_fix.register(add, json_flag)

    from services import cli_batch

    cli_batch.register(add, json_flag)

    from services import cli_spend

    cli_spend.register(add, json_flag)

    from services import cli_worker

    cli_worker.register(add, json_flag)
    return parser


class _NoTraceback(logging.Formatter):
    """Log lines for a person: the sentence, never a stack trace."""

    def formatException(self, ei: Any) -> str:
        return ""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = None
        saved, record.exc_info = record.exc_info, None
        try:
            return super().format(record)
        finally:
            record.exc_info = saved


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_NoTraceback("reenact: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


def _skip_httpx_cli() -> None:
    """`import httpx` also tries to import its own command line whenever click is installed
    — and Streamlit installs it: click and pygments load (13–20 ms) before it gives up on the
    missing rich. Nothing here uses `httpx.main`, so a stand-in module keeps that cost out of
    every command that talks to a provider.

    This relies on httpx's `__init__` taking `main` from `httpx._main`, true of httpx 0.28
    (pyproject pins <0.29); tests/providers/test_httpx_reliance.py fails if that moved."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    import types

    def _unavailable() -> None:
        raise SystemExit("httpx's own command line is not available inside reenact.")

    stub = types.ModuleType("httpx._main")
    stub.main = _unavailable  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stub


def main(argv: Sequence[str] | None = None) -> int:
    _skip_httpx_cli()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
        raw = list(sys.argv[1:] if argv is None else argv)
        if code == EXIT_USAGE and "--json" in raw:
            print(json.dumps({"error": _Parser.last_error or "usage error"}, indent=2))
        return code
    _setup_logging()
    ctx = Ctx(args)
    try:
        return args.func(ctx)
    except CliExit as exc:
        ctx.note(exc.sentence)
        ctx.emit(exc.payload if exc.payload is not None else {"error": exc.sentence})
        return exc.code
    except KeyboardInterrupt:
        if ctx.task_ids:
            ids = " ".join(ctx.task_ids)
            ctx.note(f"\nStopped waiting; the task is still tracked: reenact status {ids}")
        else:
            ctx.note("\nStopped. If a task was being submitted, `reenact list` shows it.")
        ctx.emit({"error": "interrupted", "task_ids": ctx.task_ids})
        return EXIT_GAVE_UP
    except BrokenPipeError:
        # The reader went away (`reenact list | head`): stop quietly, no "Exception ignored".
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:
        return _report(ctx, exc)
    finally:
        with contextlib.suppress(Exception):
            ctx.close()


def _report(ctx: Ctx, exc: Exception) -> int:
    from services.errors import (
        DISK_FULL_ARCHIVE,
        DISK_FULL_SUBMIT,
        ConfigError,
        ErrorKind,
        ReenactError,
        default_sentence,
        is_disk_full,
    )

    if isinstance(exc, ConfigError):
        code, sentence = EXIT_USAGE, str(exc)
    elif isinstance(exc, ReenactError):
        code, sentence = EXIT_FAILED, str(exc)
    elif is_disk_full(exc, ctx._runtime.settings.data_dir if ctx._runtime is not None else None):
        # Rows are written before anything is sent, so a submit stopped here sent nothing.
        code = EXIT_FAILED
        sentence = {
            "submit": DISK_FULL_SUBMIT,
            "compare": DISK_FULL_SUBMIT,
            "download": DISK_FULL_ARCHIVE,
        }.get(getattr(ctx.args, "command", ""), default_sentence(ErrorKind.DISK_FULL))
    elif isinstance(exc, OSError) and exc.filename:
        code = EXIT_FAILED
        sentence = f"Could not read or write {exc.filename}: {exc.strerror or exc}."
    else:
        code = EXIT_FAILED
        where = _log_trace(ctx, exc)
        sentence = (
            f"Something went wrong ({type(exc).__name__}); nothing was lost — `reenact list` "
            "shows every task. If it happens again, please report it"
            + (f" with the details in {where}." if where else ".")
        )
    ctx.note(sentence)
    ctx.emit({"error": sentence})
    return code


def _log_trace(ctx: Ctx, exc: Exception) -> Path | None:
    """Keep the details of an unexpected failure for a bug report, out of the terminal."""
    import traceback

    try:
        path = ctx.settings.data_dir / "logs" / "cli-errors.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- reenact {' '.join(sys.argv[1:2])}\n")
            fh.write("".join(traceback.format_exception(exc)))
        return path
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
