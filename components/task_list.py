"""The task history: filters, one page of rows, live while any row is moving.

One COUNT and one page query per rerun; while a listed task is live, a fragment re-reads
just those rows (one query per tick). Each row's Open link opens it (`?task=ID`). A table on
a wide screen, a compact card per task on a phone; never a scroll box inside the page.
"""

from __future__ import annotations

import math

import streamlit as st

from components.common import get_studio
from components.format import (
    ago,
    duration,
    elapsed_s,
    is_live,
    plain,
    status_badge_md,
    status_label,
)
from components.identity import viewer
from components.pager import pager
from components.providers import info_by_id, provider_name
from components.task_card import REFRESH_S, needs_refresh
from services.config import PROVIDER_IDS
from services.engine.render_queue import WAITING, waiting_for_worker
from services.models import Task, TaskStatus, shown_progress

PAGE_SIZE = 25


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
    st.html(_LIST_CSS)  # with the list it styles: every run that draws rows draws their style
    with st.container(key="task_list", gap=None):
        with st.container(key="tl_head", gap=None):
            for label in _COLUMNS:
                st.markdown(f":small[{label}]")
        for_worker = waiting_for_worker(tasks, get_studio().settings)  # one read, if any
        for task in tasks:
            _task_row(task, for_worker=task.id in for_worker)
    if started_live and not any(needs_refresh(t) for t in tasks):
        st.rerun(scope="app")


# Header labels, in the order every row draws its cells (the stylesheet places them).
_COLUMNS = ("State", "Provider", "Created", "Time", "Note", "")


def _task_row(task: Task, *, for_worker: bool = False) -> None:
    with st.container(key=f"tl_row_{task.id}", gap=None):
        with st.container(key=f"tl_state_{task.id}", gap=None):
            if is_live(task):
                progress = shown_progress(task) or 0.0
                st.markdown(f"{status_badge_md(task.status)} :small[{round(progress * 100)} %]")
                st.progress(progress)
            else:
                st.markdown(status_badge_md(task.status))
        st.markdown(f"**{plain(provider_name(task.provider))}**")
        st.markdown(f":material/schedule: {ago(task.created_at)}")
        st.markdown(f":material/timer: {duration(elapsed_s(task))}")
        note = _note(task, for_worker=for_worker)
        if note:
            st.markdown(plain(note))
        else:
            st.empty()  # keeps the cells' order, takes no room
        st.page_link(
            "pages/tasks.py",
            label="Open",
            icon=":material/open_in_new:",
            query_params={"task": task.id},
            help=f"Open task {plain(task.id)}",
        )


def _note(task: Task, *, for_worker: bool = False) -> str:
    note = task.error or ""
    if for_worker and not note:
        note = WAITING[0].upper() + WAITING[1:]
    if task.tracked:
        note = note or f"Tracked {task.provider_task_id}"
    if task.retry_of and not note:
        note = f"Retry of {task.retry_of}"
    if task.status is TaskStatus.SUCCEEDED and not note:
        note = "Result saved" if task.result_path else "Saving result…"
    return note


# One grid for the header and every row: a table on a wide list, a compact card per task when
# the list itself is narrower than 640 px (a container query, so it follows the list's width,
# not the window's). Cells are the row's children in `_COLUMNS` order.
_LIST_CSS = """<style>
.st-key-task_list { container: tasklist / inline-size; }
.st-key-tl_head, [class*="st-key-tl_row_"] {
  display: grid;
  grid-template-columns: 9rem 8.5rem 7.5rem 6.5rem minmax(0, 1fr) auto;
  grid-template-areas: "state prov when time note open";
  column-gap: 1rem;
  align-items: center;
  padding: 0.45rem 0.5rem;
  border-bottom: 1px solid color-mix(in srgb, currentColor 12%, transparent);
}
.st-key-tl_head { opacity: 0.7; padding-bottom: 0.25rem; }
[class*="st-key-tl_row_"]:hover { background: color-mix(in srgb, currentColor 4%, transparent); }
.st-key-tl_head > *, [class*="st-key-tl_row_"] > * { min-width: 0; width: auto !important; }
/* Cells by name: an empty note is hidden, and hidden items would shift the ones after them. */
:is(.st-key-tl_head, [class*="st-key-tl_row_"]) > :nth-child(1) { grid-area: state; }
:is(.st-key-tl_head, [class*="st-key-tl_row_"]) > :nth-child(2) { grid-area: prov; }
:is(.st-key-tl_head, [class*="st-key-tl_row_"]) > :nth-child(3) { grid-area: when; }
:is(.st-key-tl_head, [class*="st-key-tl_row_"]) > :nth-child(4) { grid-area: time; }
:is(.st-key-tl_head, [class*="st-key-tl_row_"]) > :nth-child(5) { grid-area: note; }
:is(.st-key-tl_head, [class*="st-key-tl_row_"]) > :nth-child(6) { grid-area: open; }
[class*="st-key-tl_row_"] p { overflow-wrap: anywhere; }
/* Streamlit spaces paragraphs with a margin it takes back with a negative one: in a grid cell
   that overflows the cell, so neither is wanted here. */
.st-key-task_list [data-testid="stMarkdownContainer"],
.st-key-task_list [data-testid="stMarkdownContainer"] p { margin: 0 !important; }
@container tasklist (max-width: 640px) {
  .st-key-tl_head { display: none; }
  [class*="st-key-tl_row_"] {
    grid-template-columns: auto auto minmax(0, 1fr) auto;
    grid-template-areas: "state state state open" "prov when time time" "note note note note";
    row-gap: 0 !important;
    margin-bottom: 0.6rem;
    padding: 0.7rem 0.85rem;
    border: 1px solid color-mix(in srgb, currentColor 15%, transparent);
    border-radius: 0.6rem;
  }
  [class*="st-key-tl_row_"] > :nth-child(1) { margin-bottom: 0.35rem; }
  /* A margin, not a row gap: a task without a note leaves no empty line. */
  [class*="st-key-tl_row_"] > :nth-child(5) { margin-top: 0.35rem; }
  [class*="st-key-tl_row_"] > :nth-child(6) { justify-self: end; }
}
</style>"""
