"""The task history: filters, one page of rows, live while any row is moving.

One COUNT and one page query per rerun; while a listed task is live, a fragment re-reads
just those rows (one query per tick). Selecting a row opens it (`?task=ID`).
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from components.common import app_base_url, get_studio
from components.format import ago, duration, elapsed_s, status_label
from components.identity import viewer
from components.pager import pager
from components.providers import info_by_id, provider_name
from components.task_card import REFRESH_S, needs_refresh
from services.config import PROVIDER_IDS
from services.models import Task, TaskStatus

PAGE_SIZE = 25
_STATUS_ICON = {
    TaskStatus.DRAFT: "✎",
    TaskStatus.SUBMITTING: "⇡",
    TaskStatus.QUEUED: "◷",
    TaskStatus.RUNNING: "▶",
    TaskStatus.SUCCEEDED: "✓",
    TaskStatus.FAILED: "✕",
    TaskStatus.CANCELED: "⊘",
    TaskStatus.UNKNOWN: "?",
}


def filters() -> tuple[list[str], list[TaskStatus]]:
    names = {pid: info.name for pid, info in info_by_id().items()}
    left, right = st.columns(2)
    with left:
        providers = st.multiselect(
            "Provider",
            list(PROVIDER_IDS),
            key="f_provider",
            bind="query-params",
            format_func=lambda p: names.get(p, p),
            placeholder="All providers",
        )
    with right:
        statuses = st.multiselect(
            "State",
            [s.value for s in TaskStatus],
            key="f_state",
            bind="query-params",
            format_func=lambda s: status_label(TaskStatus(s)),
            placeholder="All states",
        )
    return list(providers), [TaskStatus(s) for s in statuses]


def task_history(providers: list[str], statuses: list[TaskStatus]) -> None:
    store = get_studio().store
    sees = viewer().sees
    total = store.count_tasks(provider=providers or None, status=statuses or None, owner=sees)
    if total == 0:
        if providers or statuses:
            st.info("No task matches these filters.", icon=":material/filter_alt_off:")
        else:
            st.info(
                "No tasks yet. Start one on the Create page, or track a task made elsewhere.",
                icon=":material/inbox:",
            )
        return
    pages = max(1, math.ceil(total / PAGE_SIZE))
    signature = (tuple(providers), tuple(statuses))
    if st.session_state.get("_list_sig") != signature:
        st.session_state["_list_sig"] = signature
        st.session_state["list_page"] = 1
    page = min(max(1, int(st.session_state.get("list_page", 1))), pages)
    tasks = store.list_tasks(
        provider=providers or None,
        status=statuses or None,
        owner=sees,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    _table(tasks)
    _pager(page, pages, total)


def _pager(page: int, pages: int, total: int) -> None:
    caption = f"Page {page} of {pages} · {total:,} task{'' if total == 1 else 's'}"
    asked = pager(page, pages, caption, key="pg")
    if asked is not None:
        st.session_state["list_page"] = asked
        st.rerun()


def _table(tasks: list[Task]) -> None:
    st.session_state["_list_prefetch"] = tasks
    live = any(needs_refresh(t) for t in tasks)
    st.fragment(_rows, run_every=REFRESH_S if live else None)([t.id for t in tasks], live)


def _rows(ids: list[str], started_live: bool) -> None:
    tasks: list[Task] | None = st.session_state.pop("_list_prefetch", None)
    if tasks is None:
        tasks = get_studio().store.get_tasks(ids)
    base = app_base_url()
    gen = st.session_state.setdefault("_list_gen", 0)
    event = st.dataframe(
        [_row(t, base) for t in tasks],
        key=f"task_table_{gen}",
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        column_order=("state", "provider", "progress", "created", "time", "note", "open"),
        column_config={
            "state": st.column_config.TextColumn("State", width="small"),
            "provider": st.column_config.TextColumn("Provider", width="small"),
            "progress": st.column_config.ProgressColumn(
                "Progress", min_value=0.0, max_value=1.0, format="percent", width="small"
            ),
            "created": st.column_config.TextColumn("Created", width="small"),
            "time": st.column_config.TextColumn("Time", width="small"),
            "note": st.column_config.TextColumn("Note", width="large"),
            "open": st.column_config.LinkColumn("Task", display_text=r"tasks\?task=(.*)"),
        },
    )
    rows = event.selection.rows if event is not None else []  # type: ignore[union-attr]
    if rows:
        st.session_state["_list_gen"] = gen + 1  # a fresh table: the selection is spent
        st.query_params["task"] = tasks[rows[0]].id
        st.rerun(scope="app")
    if started_live and not any(needs_refresh(t) for t in tasks):
        st.rerun(scope="app")


def _row(task: Task, base: str) -> dict[str, Any]:
    note = task.error or ""
    if task.tracked:
        note = note or f"Tracked {task.provider_task_id}"
    if task.retry_of and not note:
        note = f"Retry of {task.retry_of}"
    if task.status is TaskStatus.SUCCEEDED and not note:
        note = "Result saved" if task.result_path else "Saving result…"
    return {
        "state": f"{_STATUS_ICON[task.status]} {status_label(task.status)}",
        "provider": provider_name(task.provider),
        "progress": 1.0 if task.status is TaskStatus.SUCCEEDED else (task.progress or 0.0),
        "created": ago(task.created_at),
        "time": duration(elapsed_s(task)),
        "note": note,
        "open": f"{base}/tasks?task={task.id}",
    }
