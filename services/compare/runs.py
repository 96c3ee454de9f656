"""A comparison run as the Compare page and the CLI see it: one task per provider in the order
the creator chose them (a retry stands in for the task it retried), with the app's own
measurements, the numbers table, and the creator's vote."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from services.compare.analysis import local_input
from services.errors import InputError
from services.models import OutputFacts, Run, Task, TaskAnalysis, TaskStatus, Vote, utcnow

if TYPE_CHECKING:
    from services.studio import Studio


class TaskNumbers(OutputFacts):
    """One row of a run's numbers table (also `summary.csv` / `summary.json` in the ZIP and
    `numbers` in `reenact compare --json`): the result file's facts and the task's."""

    provider: str
    provider_name: str
    task_id: str
    state: TaskStatus
    progress: float
    queued_s: float | None = None  # submitted → the provider started rendering
    render_s: float | None = None  # started rendering → done
    total_s: float | None = None  # submitted → done
    cost_usd: float | None = None
    cost_source: str | None = None  # "reported" by the provider, or "estimate"
    price_source: str | None = None  # for an estimate: "published" or "yours"
    fidelity: float | None = None
    fidelity_note: str | None = None  # why there is no score ("No face found…", "measuring…")
    error: str | None = None

    def summary_row(self) -> dict[str, Any]:
        """The flat row written to summary.csv / summary.json."""
        return {
            "provider": self.provider,
            "task_id": self.task_id,
            "state": self.state.value,
            "queued_s": self.queued_s,
            "render_s": self.render_s,
            "total_s": self.total_s,
            "cost_usd": self.cost_usd,
            "cost_source": self.cost_source,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "duration_s": self.duration_s,
            "size_bytes": self.size_bytes,
            "has_audio": self.has_audio,
            "fidelity": self.fidelity,
            "fidelity_note": self.fidelity_note,
            "error": self.error,
        }


class RunView(BaseModel):
    run: Run
    tasks: list[Task]  # one per provider, in the run's provider order
    analyses: dict[str, TaskAnalysis]
    vote: Vote | None = None
    reference: str | None = None  # the driving clip on this machine (None: not here)

    def analysis(self, task_id: str) -> TaskAnalysis | None:
        return self.analyses.get(task_id)

    @property
    def contenders(self) -> list[str]:
        """Providers whose result can be judged (succeeded and on disk)."""
        return [
            t.provider for t in self.tasks if t.status is TaskStatus.SUCCEEDED and t.result_path
        ]

    @property
    def settled(self) -> bool:
        from services.lifecycle import settled

        return all(settled(t) for t in self.tasks)


def current_tasks(run: Run, tasks: Sequence[Task]) -> list[Task]:
    """The newest task per provider (a retry replaces what it retried), in run order."""
    latest: dict[str, Task] = {}
    for task in tasks:  # the store gives them oldest first within a provider
        latest[task.provider] = task
    order = list(run.providers) + [p for p in latest if p not in run.providers]
    return [latest[p] for p in order if p in latest]


def load_run(studio: Studio, run_id: str, *, owner: str | None = None) -> RunView:
    """The run as seen (with `owner`: only if it is theirs — someone else's run is answered
    exactly like a missing one)."""
    run = studio.store.get_run(run_id)
    if run is None or (owner is not None and run.owner != owner):
        raise InputError(f"No comparison run with id '{run_id[:40]}'.")
    tasks = current_tasks(run, studio.store.run_tasks(run.id))
    votes = studio.store.votes([run.id])
    driving = local_input(run.inputs.video, studio.settings)
    return RunView(
        run=run,
        tasks=tasks,
        analyses=studio.store.analyses([t.id for t in tasks]),
        vote=votes[-1] if votes else None,
        reference=str(driving) if driving else None,
    )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, (end - start).total_seconds()), 1)


def numbers(studio: Studio, view: RunView) -> list[TaskNumbers]:
    """The numbers table: one row per provider, from the store (no provider is asked)."""
    running_at = studio.store.first_status_at([t.id for t in view.tasks], TaskStatus.RUNNING)
    driving_s: float | None = None
    prices = studio.prices()  # once for the table, not per row (the page asks every second)
    rows: list[TaskNumbers] = []
    for task in view.tasks:
        provider = studio.provider(task.provider)
        row = TaskNumbers(
            provider=task.provider,
            provider_name=provider.name,
            task_id=task.id,
            state=task.status,
            progress=task.progress,
            error=task.error if task.status is not TaskStatus.SUCCEEDED else None,
        )
        done = task.finished_at if task.status.terminal else None
        started = running_at.get(task.id)
        row.total_s = _seconds(task.created_at, done)
        row.queued_s = _seconds(task.created_at, started or done)
        row.render_s = _seconds(started, done) if started else None
        if task.cost_usd is not None:
            row.cost_usd, row.cost_source = task.cost_usd, "reported"
        else:
            caps = provider.capabilities()
            _, row.price_source = studio.price_per_second(caps, prices)
            cost = task.cost_estimate
            if cost is None and row.price_source and task.inputs is not None:
                if driving_s is None and view.reference:
                    driving_s = _duration(Path(view.reference))
                cost = studio.estimate_cost(caps, task.inputs, duration_s=driving_s, prices=prices)
            if cost is not None:
                row.cost_usd, row.cost_source = cost, "estimate"
        _measured(row, task, view.analysis(task.id))
        rows.append(row)
    return rows


def _measured(row: TaskNumbers, task: Task, analysis: TaskAnalysis | None) -> None:
    if task.status is not TaskStatus.SUCCEEDED:
        return
    if not task.result_path:
        row.fidelity_note = "waiting for the result file"
        return
    current = analysis is not None and analysis.result_path == task.result_path
    if analysis is None or not current or analysis.state == "running":
        row.fidelity_note = "measuring…"
        return
    if analysis.output is not None:
        for name, value in analysis.output:
            setattr(row, name, value)
    if analysis.error:
        row.fidelity_note = analysis.error
        return
    fid = analysis.fidelity or {}
    score = fid.get("score")
    if isinstance(score, int | float):
        row.fidelity = round(float(score), 1)
    else:
        row.fidelity_note = str(fid.get("reason") or "not measured")


def _duration(path: Path) -> float | None:
    try:
        from services.media import probe

        return probe(path).duration_s
    except Exception:
        return None


# ---- judging ---------------------------------------------------------------------------------
def vote(
    studio: Studio,
    run_id: str,
    winner: str,
    *,
    note: str | None = None,
    blind: bool = False,
    owner: str | None = None,
) -> Vote:
    """Record which provider's result won this run (replacing an earlier vote on it)."""
    view = load_run(studio, run_id, owner=owner)
    contenders = view.contenders
    winner = winner.strip().lower()
    if len(contenders) < 2:
        raise InputError(
            "A vote needs at least two finished results in the run; "
            f"this one has {len(contenders)}."
        )
    if winner not in contenders:
        names = ", ".join(contenders)
        raise InputError(
            f"'{winner}' has no result in this run to vote for; choose one of {names}."
        )
    note = (note or "").strip()[:2000] or None
    return studio.store.save_vote(
        Vote(
            run_id=run_id,
            winner=winner,
            contenders=contenders,
            note=note,
            blind=blind,
            created_at=utcnow(),
        )
    )
