"""Words and numbers for people: status labels, durations, ETAs, sizes, costs."""

from __future__ import annotations

import re
from datetime import datetime

from services.engine.render_queue import WAITING
from services.models import Task, TaskStatus, utcnow

# label, badge colour, material icon
STATUS_STYLE: dict[TaskStatus, tuple[str, str, str]] = {
    TaskStatus.DRAFT: ("Draft", "gray", ":material/edit:"),
    TaskStatus.SUBMITTING: ("Submitting", "blue", ":material/upload:"),
    TaskStatus.QUEUED: ("Queued", "blue", ":material/schedule:"),
    TaskStatus.RUNNING: ("Running", "violet", ":material/autorenew:"),
    TaskStatus.SUCCEEDED: ("Done", "green", ":material/check_circle:"),
    TaskStatus.FAILED: ("Failed", "red", ":material/error:"),
    TaskStatus.CANCELED: ("Canceled", "gray", ":material/block:"),
    TaskStatus.UNKNOWN: ("Needs a look", "orange", ":material/help:"),
}


def status_label(status: TaskStatus) -> str:
    return STATUS_STYLE[status][0]


def status_badge_md(status: TaskStatus) -> str:
    label, color, icon = STATUS_STYLE[status]
    return f":{color}-badge[{icon} {label}]"


def is_live(task: Task) -> bool:
    """Still changing on its own (the monitor is on it), so a card should keep refreshing."""
    return task.status in (TaskStatus.SUBMITTING, TaskStatus.QUEUED, TaskStatus.RUNNING)


def waiting_to_start(task: Task) -> bool:
    """Queued, or said to run with no sign of work yet (no progress, no ETA): providers
    answer "running" while a task still waits behind others (throttled), so 0 % is not
    rendering yet."""
    if task.status is TaskStatus.QUEUED:
        return True
    return (
        task.status is TaskStatus.RUNNING
        and not task.progress
        and not isinstance(task.meta.get("eta_seconds"), int | float)
    )


def queued_text(*, for_worker: bool = False) -> str:
    """A queued task's progress line: its local render waits for a `reenact worker`
    (`services.engine.render_queue.waiting_for_worker`), or for its provider."""
    return f"Queued · {WAITING}" if for_worker else "Queued · waiting for the provider to start"


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {s:02d} s"
    return f"{s} s"


def elapsed_s(task: Task, now: datetime | None = None) -> float:
    start = task.started_at or task.created_at
    end = task.finished_at if task.status.terminal and task.finished_at else (now or utcnow())
    return max(0.0, (end - start).total_seconds())


def eta_s(task: Task, now: datetime | None = None) -> float | None:
    """Seconds left: the provider's own estimate when it gave one, else extrapolated from
    progress (only once there is enough progress for the guess to mean something)."""
    if task.status is not TaskStatus.RUNNING:
        return None
    given = task.meta.get("eta_seconds")
    if isinstance(given, int | float) and given >= 0:
        return float(given)
    p = task.progress or 0.0
    if p < 0.05 or p >= 1.0:
        return None
    ran = elapsed_s(task, now)
    return ran * (1.0 - p) / p


def ago(when: datetime, now: datetime | None = None) -> str:
    secs = ((now or utcnow()) - when).total_seconds()
    if secs < 60:
        return "just now"
    if secs < 3600:
        return f"{int(secs // 60)} min ago"
    if secs < 86400:
        return f"{int(secs // 3600)} h ago"
    return when.strftime("%Y-%m-%d %H:%M")


def size(n: int | float | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def cost(usd: float | None) -> str:
    if usd is None:
        return "price not published"
    if usd == 0:
        return "free"
    return f"≈ ${usd:,.2f}"


# What Markdown (and Streamlit's :directive[...] / :icon: syntax) gives meaning to anywhere in a
# line; list markers and headings only mean something at a line's start.
# (A colon before "//" too, and "www.": GitHub-style Markdown turns bare links into anchors.)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>~$]|:(?=[A-Za-z]|//)|(?<=www)\.)")
_LINE_START = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s)", re.MULTILINE)


def plain(text: object) -> str:
    """Text from outside (a provider's message, a file name, a task id) made safe to put
    inside Markdown: shown as typed, never as a link, an image, code, a list or a colour."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
    escaped = _LINE_START.sub(_escape_marker, escaped)
    return escaped.replace("\n", "  \n")


def _escape_marker(m: re.Match[str]) -> str:
    marker = m.group(2)
    marker = marker[:-1] + "\\." if marker.endswith(".") else "\\" + marker
    return m.group(1) + marker
