"""What the app measures of every archived result, the same way for every provider: the
file's real specs (probed) and, for a task made from a driving clip, its motion fidelity.

Runs in the background — the monitor's analysis thread, or the CLI after `--wait` — once the
result is on disk, never on a page render. Several processes may share the database: a claim
(lease) in the store makes one of them do each file; a dead claimer's lease runs out.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from services.config import Settings
from services.errors import ReenactError
from services.links import is_web_link, looks_like_link
from services.models import OutputFacts, Task, TaskAnalysis, TaskStatus
from services.store import Store

log = logging.getLogger("reenact.analysis")

# Longer than scoring a 30 s clip can take on a busy machine.
ANALYSIS_LEASE_S = 600.0
NO_DRIVING_CLIP = "The driving clip is not on this machine, so motion fidelity cannot be measured."


def local_input(value: str | None, settings: Settings) -> Path | None:
    """The file on this machine a task input names: the path itself, or the stored copy of a
    link the app ingested."""
    if not value:
        return None
    if is_web_link(value):
        from services.fetch import stored_copy

        return stored_copy(value, settings)
    if looks_like_link(value):
        return None
    path = Path(value)
    return path if path.is_file() else None


def output_facts(path: Path) -> OutputFacts:
    from services.media import probe

    info = probe(path)
    return OutputFacts(
        width=info.width,
        height=info.height,
        fps=round(info.fps, 3) if info.fps else None,
        duration_s=round(info.duration_s, 3) if info.duration_s is not None else None,
        size_bytes=info.size_bytes,
        has_audio=info.has_audio,
        codec=info.codec,
    )


def _track_cache(settings: Settings, driving: Path) -> Path:
    """The driving clip's face track is computed once per file content (every result of a
    run, and every run of the same clip, is scored against it)."""
    from services.publish import sha256_of

    return settings.data_dir / "analysis" / f"{sha256_of(driving)}.npz"


def _driving_track(settings: Settings, driving: Path) -> object:
    from services.compare.fidelity import FaceTrack, face_track

    cache = _track_cache(settings, driving)
    if cache.is_file():
        try:
            return FaceTrack.load(cache)
        except Exception:
            log.info("Face track cache %s unreadable; computing it again", cache.name)
    track = face_track(driving)
    cache.parent.mkdir(parents=True, exist_ok=True)
    part = cache.with_name(f"{cache.stem}.{os.getpid()}.part.npz")
    try:
        track.save(part)
        os.replace(part, cache)
    except OSError:
        log.info("Could not cache the face track of %s", driving.name)
    finally:
        part.unlink(missing_ok=True)
    return track


def measure(task: Task, settings: Settings) -> TaskAnalysis:
    """Probe and score one archived result (no store access): each part that fails says why
    in a sentence and the other part is still kept."""
    assert task.result_path is not None
    path = Path(task.result_path)
    analysis = TaskAnalysis(task_id=task.id, state="done", result_path=task.result_path)
    try:
        analysis.output = output_facts(path)
    except ReenactError as err:
        return analysis.model_copy(update={"state": "failed", "error": str(err)})
    except Exception as err:
        log.exception("Probing the result of %s failed", task.id)
        return analysis.model_copy(
            update={"state": "failed", "error": f"The result file could not be read ({err})."}
        )
    driving = local_input(task.inputs.video if task.inputs else None, settings)
    if driving is None:
        analysis.fidelity = {"score": None, "reason": NO_DRIVING_CLIP, "signals": []}
        return analysis
    try:
        from services.compare.fidelity import face_track, fidelity

        score = fidelity(_driving_track(settings, driving), face_track(path))  # type: ignore[arg-type]
        analysis.fidelity = score.model_dump(mode="json")
    except ReenactError as err:
        analysis.fidelity = {"score": None, "reason": str(err), "signals": []}
    except Exception:
        log.exception("Scoring the result of %s failed", task.id)
        analysis.fidelity = {
            "score": None,
            "reason": "Motion fidelity could not be measured for this result.",
            "signals": [],
        }
    return analysis


def analyze(store: Store, settings: Settings, task: Task) -> TaskAnalysis | None:
    """Measure `task`'s archived result unless it is measured already or someone else is on
    it. Returns the stored analysis, or None when there was nothing for this caller to do."""
    if task.status is not TaskStatus.SUCCEEDED or not task.result_path:
        return None
    if not store.claim_analysis(task.id, task.result_path, lease_s=ANALYSIS_LEASE_S):
        return None
    try:
        analysis = measure(task, settings)
    except BaseException:
        # Give the claim back at once rather than after the lease: a Ctrl-C or a bug here must
        # not hide the task from every other analyser for ten minutes.
        store.save_analysis(
            TaskAnalysis(task_id=task.id, state="running", result_path=task.result_path)
        )
        raise
    store.save_analysis(analysis)
    return analysis


def analyze_pending(store: Store, settings: Settings, tasks: list[Task]) -> None:
    """Measure what is missing among `tasks` here and now (the CLI after --wait)."""
    have = store.analyses([t.id for t in tasks])
    for task in tasks:
        done = have.get(task.id)
        if done is not None and done.state != "running" and done.result_path == task.result_path:
            continue
        analyze(store, settings, task)
