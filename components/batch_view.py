"""A batch as it runs (`?batch=ID` on Create): how many tasks are queued, running, done and
failed, the ETA, every row's state with its result, and the ZIP of results.

One fragment re-reads the batch once a second while anything runs — two queries (the batch,
its tasks in one join) and one for the ETA's observed durations — and stops refreshing when
every task is settled. Results play from /files and the ZIP downloads from /batches, streamed
from disk, never through the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st
from streamlit.elements.lib.mutable_tab_container import TabContainer

from components.batch_form import batch_form, new_batch
from components.common import app_base_url, get_studio, result_url, sentences
from components.draft import resume_draft
from components.format import ago, cost, duration, plain, status_label
from components.identity import viewer
from components.providers import provider_name
from components.task_card import REFRESH_S
from services.batch import (
    BatchView,
    csv_name,
    exports_dir,
    image_name,
    load,
    video_name,
    zip_name,
)
from services.errors import InputError
from services.models import TaskStatus, shown_progress

_PREFETCH = "_batch_prefetch"
ONE_TAKE, BATCH = "One take", "Batch"
_TAB_KEY = "create_mode"
_COUNT_LABELS = (
    ("queued", "Queued"),
    ("running", "Running"),
    ("done", "Done"),
    ("failed", "Failed"),
    ("not_sent", "Rows not sent"),
)


def create_tabs() -> Sequence[TabContainer]:
    """Create's two tabs, bound to the URL (`?create_mode=Batch`); only the open one runs.
    A link to a batch (`?batch=ID`) opens the Batch tab; leaving the tab closes the batch."""
    if st.query_params.get("batch"):
        st.session_state[_TAB_KEY] = BATCH
    return st.tabs([ONE_TAKE, BATCH], key=_TAB_KEY, bind="query-params", on_change=_tab_changed)


def _tab_changed() -> None:
    if st.session_state.get(_TAB_KEY) != BATCH:
        st.query_params.pop("batch", None)


def batch_tab() -> None:
    """The Batch tab: a batch's progress (`?batch=ID`), else the form and recent batches."""
    shown = st.query_params.get("batch")
    if shown:
        batch_view(shown)
        return
    batch_id = batch_form(resume_draft())
    if batch_id:
        st.query_params["batch"] = batch_id
        st.rerun()
    recent_batches()


def batch_view(batch_id: str) -> None:
    try:
        view = load(get_studio(), batch_id, owner=viewer().sees)
    except InputError as err:
        st.info(plain(str(err)), icon=":material/search_off:")
        st.button("New batch", icon=":material/add:", on_click=_close, key="batch_new")
        return
    batch = view.batch
    head, action = st.columns([3, 1], vertical_alignment="center")
    head.subheader(f"Batch · {batch.name}")
    action.button(
        "New batch", icon=":material/add:", on_click=_close, key="batch_new", width="stretch"
    )
    rows = len(batch.lines)
    estimate = f" · estimated {cost(batch.estimate_usd)}" if batch.estimate_usd else ""
    st.caption(
        f"{rows} row{'s' if rows != 1 else ''} · {view.total} task{'s' if view.total != 1 else ''}"
        f" · sent {ago(batch.created_at)}{estimate}"
    )
    st.session_state[_PREFETCH] = view
    live = not view.settled
    st.fragment(_live, run_every=REFRESH_S if live else None)(batch.id, live)


def _close() -> None:
    st.query_params.pop("batch", None)
    new_batch()


def _live(batch_id: str, started_live: bool) -> None:
    view: BatchView | None = st.session_state.pop(_PREFETCH, None)
    if view is None or view.batch.id != batch_id:
        view = load(get_studio(), batch_id)  # the one read per tick (ownership checked above)
    _counts(view)
    _table(view)
    with sentences("making the ZIP"):
        _zip(view)
    if started_live and view.settled:
        st.rerun(scope="app")  # drawn once more without run_every: an idle tab polls nothing


def _counts(view: BatchView) -> None:
    with st.container(key="batch_counts", horizontal=True, gap="medium"):
        for key, label in _COUNT_LABELS:
            if key == "not_sent" and not view.counts.get(key):
                continue
            st.metric(label, view.counts.get(key, 0), border=True)
    finished = view.counts["done"] + view.counts["failed"]
    share = finished / view.total if view.total else 1.0
    if view.settled:
        words = "Every task has finished."
    elif view.eta_s is not None:
        words = f"About {duration(view.eta_s)} left."
    else:
        words = "The time left shows once each provider has finished a task."
    st.progress(share, text=f"{finished} of {view.total} finished · {words}")


def _table(view: BatchView) -> None:
    base = app_base_url()
    rows: list[dict[str, Any]] = []
    for rt in view.tasks:
        task, line = rt.task, view.line(rt.row)
        shown = shown_progress(task)
        done = task.status is TaskStatus.SUCCEEDED and task.result_path
        rows.append(
            {
                "Row": rt.row,
                "Driving clip": video_name(line) if line else "",
                "Character": image_name(line) if line else "",
                "Provider": provider_name(task.provider),
                "State": status_label(task.status),
                "Progress": round(shown * 100) if shown is not None else None,
                "Result": result_url(task) if done else None,
                "Task": f"{base}/tasks?task={task.id}",
                "Note": task.error or "",
            }
        )
    for line in view.not_sent():
        rows.append(
            {
                "Row": line.row,
                "Driving clip": video_name(line),
                "Character": image_name(line),
                "Provider": ", ".join(provider_name(p) for p in line.providers),
                "State": "Not sent",
                "Progress": None,
                "Result": None,
                "Task": None,
                "Note": " ".join(line.problems),
            }
        )
    rows.sort(key=lambda r: r["Row"])
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        key="batch_tasks",
        column_config={
            "Progress": st.column_config.ProgressColumn(
                "Progress", min_value=0, max_value=100, format="%d%%"
            ),
            "Result": st.column_config.LinkColumn("Result", display_text="Play"),
            "Task": st.column_config.LinkColumn("Task", display_text=r"task=(.*)$"),
        },
    )


def _zip_ready(view: BatchView) -> bool:
    """Made after the newest change to the batch's tasks (else it may miss a result)."""
    path = exports_dir(get_studio().settings, view.batch.id) / zip_name(view.batch.id)
    if not path.is_file():
        return False
    newest = max((rt.task.updated_at for rt in view.tasks), default=view.batch.created_at)
    return path.stat().st_mtime >= newest.timestamp()


def _zip(view: BatchView) -> None:
    from services.batch import export

    studio = get_studio()
    has_results = any(
        rt.task.status is TaskStatus.SUCCEEDED and rt.task.result_path for rt in view.tasks
    )
    folder = exports_dir(studio.settings, view.batch.id)
    base = f"{app_base_url()}/batches/{view.batch.id}"
    row = st.container(horizontal=True, gap="small", key="batch_exports")
    if _zip_ready(view):
        size_mb = (folder / zip_name(view.batch.id)).stat().st_size / 1e6
        row.link_button(
            f"Download ZIP of results ({size_mb:.1f} MB)",
            f"{base}/{zip_name(view.batch.id)}?download=1",
            icon=":material/download:",
        )
        row.link_button(
            "Download the CSV",
            f"{base}/{csv_name(view.batch.id)}?download=1",
            icon=":material/table:",
        )
    elif row.button(
        "Make ZIP of results",
        icon=":material/folder_zip:",
        disabled=not has_results,
        key="batch_make_zip",
        help="Every result, plus summary.csv: what each row produced (task, state, file, cost).",
    ):
        with st.spinner("Packing the results…"):
            export(studio, view, folder)
        st.rerun()


def recent_batches() -> None:
    """The owner's latest batches, each opening its progress view."""
    batches = get_studio().store.list_batches(owner=viewer().sees, limit=8)
    if not batches:
        return
    st.divider()
    st.subheader("Recent batches")
    for batch in batches:
        rows = len(batch.lines)
        label = f"{batch.name} · {rows} row{'s' if rows != 1 else ''} · {ago(batch.created_at)}"
        st.button(
            label,
            key=f"batch_open_{batch.id}",
            icon=":material/playlist_play:",
            type="tertiary",
            on_click=_open,
            args=(batch.id,),
        )


def _open(batch_id: str) -> None:
    st.query_params["batch"] = batch_id
