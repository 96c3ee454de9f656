"""What the `reenact` CLI shows a person: task summaries, tables and the `--wait` progress bar.

Everything here writes text; nothing decides exit codes or talks to providers. The progress
bar always goes to stderr so `--json` leaves stdout to its one JSON document.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

from services.models import Task, TaskStatus, shown_progress

BAR_WIDTH = 24


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def percent(task: Task) -> str:
    shown = shown_progress(task)
    return "—" if shown is None else f"{round(shown * 100):d}%"


def describe(task: Task) -> str:
    """A few lines about one task, for `status`, `submit` and friends."""
    lines = [f"Task {task.id}  {task.provider}  {task.status.value}  {percent(task)}"]
    if task.provider_task_id:
        lines.append(f"  provider task: {task.provider_task_id}")
    if task.result_path:
        lines.append(f"  result:        {task.result_path}")
    elif task.result_url and task.status is TaskStatus.SUCCEEDED:
        lines.append("  result:        not archived yet (reenact download " + task.id + ")")
    if task.error:
        lines.append(f"  note:          {task.error}")
    if task.cost_estimate is not None:
        lines.append(f"  estimated:     ${task.cost_estimate:.2f}")
    lines.append(f"  created:       {when(task.created_at)}   updated: {when(task.updated_at)}")
    return "\n".join(lines)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(r) for r in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))

    def fmt(row: Sequence[str]) -> str:
        cells = [c.ljust(widths[i]) for i, c in enumerate(row[:-1])]
        return "  ".join([*cells, row[-1]]).rstrip()

    return "\n".join([fmt(headers), *(fmt(r) for r in rows)])


def task_table(tasks: Sequence[Task]) -> str:
    if not tasks:
        return "No tasks yet. Start one with `reenact submit` or `reenact track`."
    rows = []
    for t in tasks:
        note = t.result_path or t.error or ""
        rows.append([t.id, t.provider, t.status.value, percent(t), when(t.created_at), note])
    return table(["ID", "PROVIDER", "STATUS", "PROGRESS", "CREATED", "RESULT / NOTE"], rows)


def provider_table(infos: Sequence[dict[str, Any]]) -> str:
    rows = []
    for info in infos:
        caps = info["capabilities"]
        if info["available"]:
            source = info.get("key_source")
            state = f"yes ({source})" if source else "yes"
        else:
            state = "no"
        can = [w for w, ok in (("create", caps["can_create"]), ("track", caps["can_track"])) if ok]
        notes = [", ".join(can) or "-"]
        if caps.get("needs_urls"):
            notes.append("URLs only")
        if caps.get("required_aspect"):
            notes.append(f"{caps['required_aspect']} inputs")
        if caps.get("cost_per_second_usd") is not None:
            notes.append(f"${caps['cost_per_second_usd']:.2f}/s")
        if not info["available"] and info.get("reason"):
            notes.append(info["reason"])
        rows.append([info["id"], info["name"], state, "; ".join(notes)])
    return table(["ID", "NAME", "READY", "NOTES"], rows)


class StatusLine:
    """A line of `--wait` feedback on stderr: redrawn in place on a terminal, one line per
    change otherwise (logs and CI stay readable). A closed or broken stream is ignored."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = False

    def redraw(self, line: str) -> None:
        """Replace the line in place (terminal only)."""
        self._write("\r\x1b[K" + line)
        self._drawn = True

    def done(self) -> None:
        if self.tty and self._drawn:
            self._write("\n")
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass


class ProgressBar(StatusLine):
    """Every task waited for, in one line on a terminal, one line per change otherwise.
    `waiting(task)`, asked once per change of a task, names what a queued task waits for
    beyond its provider (a render worker: services.engine.render_queue.waiting_for_worker)."""

    def __init__(
        self, stream: TextIO | None = None, *, waiting: Callable[[Task], str | None] | None = None
    ) -> None:
        super().__init__(stream)
        self.tasks: dict[str, Task] = {}
        self._last: dict[str, tuple[str, str]] = {}
        self._waiting = waiting
        self._states: dict[str, str] = {}

    def update(self, task: Task) -> None:
        self.tasks[task.id] = task
        for_what = self._waiting(task) if self._waiting and not task.status.terminal else None
        self._states[task.id] = task.status.value + (f" ({for_what})" if for_what else "")
        if self.tty:
            self._redraw()
            return
        key = (self._states[task.id], percent(task))
        if self._last.get(task.id) != key:
            self._last[task.id] = key
            line = f"{task.id} {task.provider}: {self._states[task.id]} {percent(task)}"
            if task.error and not task.status.terminal:
                line += f" ({task.error})"
            self._write(line + "\n")

    def _redraw(self) -> None:
        if len(self.tasks) == 1:
            t = next(iter(self.tasks.values()))
            filled = round(t.progress * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            line = f"{t.provider} {t.id} [{bar}] {percent(t):>4} {self._states[t.id]}"
        else:
            line = " | ".join(
                f"{t.provider} {self._states[t.id]} {percent(t)}" for t in self.tasks.values()
            )
        width = shutil.get_terminal_size((100, 20)).columns
        self.redraw(line[: max(10, width - 1)])


_MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


def check_text(reports: Sequence[Any]) -> str:
    """`reenact check`: every check of every input with its status and sentence."""
    blocks = []
    for item in reports:
        report = item.report
        role = item.role.value.replace("_", " ") if item.role else "unrecognised file"
        verdict = (
            f"{len(report.failing())} check(s) failed"
            if report.failed
            else "ready" + (" (with warnings)" if report.warned else "")
        )
        lines = [f"{item.input}  [{role}]  {verdict}"]
        for check in report.checks:
            who = f"{check.provider}: " if check.provider else ""
            lines.append(f"  {_MARK.get(check.status, check.status)}  {who}{check.sentence}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return "—" if value is None else f"{value:{fmt}}{unit}"


def numbers_table(rows: Sequence[Any]) -> str:
    """A comparison's numbers (services.compare.runs.TaskNumbers), one line per provider."""
    lines = []
    for r in rows:
        size = f"{r.width}×{r.height}" if r.width and r.height else "—"
        if r.cost_usd is None:
            cost = "no price"
        elif r.cost_usd == 0:
            cost = "free"
        else:
            cost = f"${r.cost_usd:.2f}" + ("" if r.cost_source == "reported" else " est.")
        fidelity = _num(r.fidelity, ".0f") if r.fidelity is not None else (r.fidelity_note or "—")
        audio = "—" if r.has_audio is None else ("yes" if r.has_audio else "no")
        note = r.error or ""
        lines.append(
            [
                r.provider,
                r.state.value,
                _num(r.queued_s, ".0f", " s"),
                _num(r.render_s, ".0f", " s"),
                _num(r.total_s, ".0f", " s"),
                cost,
                size,
                _num(r.fps, ".3g"),
                _num(r.duration_s, ".1f", " s"),
                audio,
                f"{fidelity}  {note}".strip(),
            ]
        )
    headers = [
        "PROVIDER",
        "STATE",
        "QUEUED",
        "RENDER",
        "TOTAL",
        "COST",
        "SIZE",
        "FPS",
        "LENGTH",
        "AUDIO",
        "FIDELITY / NOTE",
    ]
    return table(headers, lines)


def leaderboard_table(standings: Sequence[Any]) -> str:
    if not standings:
        return "No votes yet. Judge a comparison with `reenact vote RUN_ID --winner PROVIDER`."
    rows = [
        [
            str(n),
            s.provider,
            f"{s.rating:.0f}",
            f"{s.low:.0f}–{s.high:.0f}",
            f"{s.wins}–{s.losses}",
            str(s.first_places),
            str(s.votes),
        ]
        for n, s in enumerate(standings, start=1)
    ]
    return table(["#", "PROVIDER", "RATING", "95 % INTERVAL", "PAIRS W–L", "WON", "RUNS"], rows)
