"""A run's exports, for the page and `reenact export`: `<run id>-side-by-side.mp4` (the driving
clip beside every result, labelled, with the driving clip's sound) and `<run id>.zip` (every
result plus summary.csv / summary.json, the numbers table). Written from disk to disk."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from services.compare.runs import RunView, numbers
from services.errors import InputError
from services.models import TaskStatus
from services.publish import safe_name

if TYPE_CHECKING:
    from services.studio import Studio


def video_name(run_id: str) -> str:
    return f"{run_id}-side-by-side.mp4"


def zip_name(run_id: str) -> str:
    return f"{run_id}.zip"


def exports_dir(studio: Studio, run_id: str) -> Path:
    """Where the page keeps a run's exports (served by the /exports route)."""
    return studio.settings.data_dir / "exports" / safe_name(run_id)


def _result_files(view: RunView) -> list[tuple[str, Path]]:
    """(provider, archived result) in the run's order; the ZIP numbers them."""
    return [
        (task.provider, Path(task.result_path))
        for task in view.tasks
        if task.status is TaskStatus.SUCCEEDED and task.result_path
    ]


def export_zip(studio: Studio, view: RunView, out_dir: Path) -> Path:
    from services.compare.export import results_zip

    rows = [row.summary_row() for row in numbers(studio, view)]
    return results_zip(out_dir / zip_name(view.run.id), _result_files(view), rows)


def export_video(studio: Studio, view: RunView, out_dir: Path) -> Path:
    from services.compare.export import ExportTile, side_by_side

    if view.reference is None:
        raise InputError(
            "The driving clip of this run is no longer on this machine, so the side-by-side "
            "video cannot be made; the ZIP of results still can."
        )
    if not view.contenders:
        raise InputError(
            "This run has no finished result yet: there is nothing to put side by side."
        )
    tiles = []
    for task in view.tasks:
        name = studio.provider(task.provider).name
        if task.status is TaskStatus.SUCCEEDED and task.result_path:
            tiles.append(ExportTile(label=name, path=Path(task.result_path)))
        else:
            tiles.append(ExportTile(label=name, status=task.status.value.capitalize()))
    return side_by_side(Path(view.reference), tiles, out_dir / video_name(view.run.id))
