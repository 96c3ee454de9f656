"""Live task cards: state, progress, elapsed time, ETA, the provider's sentence on failure,
and — once archived — the result player with download, retry, cancel and delete.

The cards live in one fragment that re-reads every visible task with ONE store query per
tick. The monitor writes the store; a card never calls a provider to learn its state. When
every visible task is terminal the fragment is re-rendered without `run_every`, so an idle
tab costs nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.errors import StreamlitAPIException

from components.common import app_base_url, get_studio, result_url, sentences
from components.format import (
    cost,
    duration,
    elapsed_s,
    eta_s,
    plain,
    queued_text,
    size,
    status_badge_md,
    waiting_to_start,
)
from components.providers import capabilities, provider_name
from services.engine.render_queue import waiting_for_worker
from services.errors import retry_helps
from services.lifecycle import settled
from services.models import Task, TaskStatus, shown_progress, utcnow

REFRESH_S = 1.0
OTHER_INPUTS = "Use other inputs"
# A success whose file is not archived yet keeps the card refreshing, but not forever: counted
# from the archive's latest move, so a Retry download is followed too.
ARCHIVE_WAIT = timedelta(minutes=15)


def needs_refresh(task: Task) -> bool:
    if settled(task):  # done, or waiting on the user (a full disk, a dead link)
        return False
    if task.status is TaskStatus.SUCCEEDED:  # the archive is under way
        return utcnow() - max(task.finished_at or task.updated_at, task.updated_at) < ARCHIVE_WAIT
    return True


def task_cards(tasks: list[Task], *, key: str, columns: int = 1, player: bool = True) -> None:
    """Render cards for `tasks` (already read by the caller: no extra query this run)."""
    if not tasks:
        return
    _flush_toasts()
    st.session_state[f"_cards_prefetch_{key}"] = tasks
    live = any(needs_refresh(t) for t in tasks)
    ids = [t.id for t in tasks]
    fragment = st.fragment(_cards, run_every=REFRESH_S if live else None)
    fragment(ids, key, columns, player, live)


def _cards(ids: list[str], key: str, columns: int, player: bool, started_live: bool) -> None:
    tasks: list[Task] | None = st.session_state.pop(f"_cards_prefetch_{key}", None)
    if tasks is None:
        tasks = get_studio().store.get_tasks(ids)  # the one read per tick
    seen: dict[str, str] = st.session_state.setdefault(f"_cards_seen_{key}", {})
    finished = []
    for t in tasks:
        before = seen.get(t.id)
        if before and before != t.status.value and t.status.terminal:
            finished.append(t)
        seen[t.id] = t.status.value
    for t in finished:
        _queue_toast(t)

    if not tasks:
        st.info("These tasks were deleted.")
        return
    cols = st.columns(columns) if columns > 1 else [st.container()]
    for_worker = waiting_for_worker(tasks, get_studio().settings)  # one read, if any
    for i, task in enumerate(tasks):
        with cols[i % len(cols)]:
            _card(task, key=key, player=player, for_worker=task.id in for_worker)

    # Everything settled: one full rerun re-renders this fragment without run_every
    # (and moves new results into place), after which the tab stops polling.
    if started_live and not any(needs_refresh(t) for t in tasks):
        st.rerun(scope="app")
    _flush_toasts()


def _queue_toast(task: Task) -> None:
    st.session_state.setdefault("_toasts", []).append(
        (task.id, task.status.value, provider_name(task.provider))
    )


def _flush_toasts() -> None:
    for _tid, status, name in st.session_state.pop("_toasts", []):
        if status == TaskStatus.SUCCEEDED.value:
            st.toast(f"{name}: your result is ready.", icon=":material/check_circle:")
        elif status == TaskStatus.FAILED.value:
            st.toast(f"{name}: the task failed.", icon=":material/error:")
        else:
            st.toast(f"{name}: the task was canceled.", icon=":material/block:")


def _card(task: Task, *, key: str, player: bool, for_worker: bool = False) -> None:
    with st.container(border=True, key=f"card_{key}_{task.id}"):
        head, badge = st.columns([3, 1], vertical_alignment="center")
        head.markdown(f"**{provider_name(task.provider)}**")
        badge.markdown(status_badge_md(task.status), width="stretch", text_alignment="right")
        sub = [f"Task `{task.id}`"]
        if task.retry_of:
            sub.append(f"retry of `{task.retry_of}`")
        if task.tracked:
            sub.append(f"tracked from {provider_name(task.provider)}")
        if task.cost_estimate is not None:
            sub.append(cost(task.cost_estimate))
        st.caption(" · ".join(sub))
        _progress(task, for_worker=for_worker)
        # A failure sentence quotes the provider's own words: plain text, never Markdown.
        if task.status is TaskStatus.FAILED and task.error:
            st.error(plain(task.error), icon=":material/error:")
        elif task.status is TaskStatus.UNKNOWN and task.error:
            st.warning(plain(task.error), icon=":material/help:")
        elif task.status is TaskStatus.CANCELED:
            st.caption("Canceled. Nothing more will happen to this task.")
        elif _unsaved(task) and task.error:
            st.warning(plain(task.error), icon=":material/warning:")
        if task.status is TaskStatus.SUCCEEDED and player:
            _result(task)
        _actions(task, key=key)


def _progress(task: Task, *, for_worker: bool = False) -> None:
    now = utcnow()
    elapsed = duration(elapsed_s(task, now))
    shown = shown_progress(task)
    if task.status is TaskStatus.SUBMITTING:
        st.progress(0.0, text="Sending to the provider…")
        st.caption(f"Elapsed {elapsed}")
    elif waiting_to_start(task):
        st.progress(0.0, text=queued_text(for_worker=for_worker))
        st.caption(f"Elapsed {elapsed}")
    elif task.status is TaskStatus.RUNNING and shown is not None:
        st.progress(shown, text=f"Rendering · {shown:.0%}")
        eta = eta_s(task, now)
        left = f" · about {duration(eta)} left" if eta is not None else ""
        st.caption(f"Elapsed {elapsed}{left}")
    elif task.status is TaskStatus.SUCCEEDED:
        st.progress(1.0, text="Done · 100%")
        st.caption(f"Took {elapsed}")


def _archived(task: Task) -> Path | None:
    path = Path(task.result_path) if task.result_path else None
    return path if path is not None and path.is_file() else None


def _unsaved(task: Task) -> bool:
    """A success whose result is not in the data folder and that nothing is saving now: the
    archive stopped (a full disk, a dead link) or the file was removed."""
    if task.status is not TaskStatus.SUCCEEDED or not task.result_url:
        return False
    if task.result_path:
        return _archived(task) is None
    return settled(task)


def _result(task: Task) -> None:
    if not task.result_path:
        if not settled(task):
            st.info("Saving the result to this computer…", icon=":material/downloading:")
        return
    path = _archived(task)
    if path is None:
        st.warning(
            "The result file is no longer in the data folder (it was moved or deleted).",
            icon=":material/warning:",
        )
        return
    st.video(result_url(task))
    st.caption(
        f"{path.suffix.lstrip('.').upper()} · {size(path.stat().st_size)} · saved in "
        "the data folder"
    )


def _actions(task: Task, *, key: str) -> None:
    caps = capabilities(task.provider)
    buttons = st.container(horizontal=True, gap="small", vertical_alignment="center")
    if task.status is TaskStatus.SUCCEEDED and _archived(task) is not None:
        buttons.link_button(
            "Download",
            result_url(task, download=True),
            icon=":material/download:",
            type="primary",
        )
    if _unsaved(task) and buttons.button(
        "Retry download",
        key=f"redownload_{key}_{task.id}",
        icon=":material/download:",
        type="primary",
        help="Saves the result to this computer again from the provider's link (no new "
        "charge). Free some disk space first if the disk was full.",
    ):
        with sentences("asking for the download again"):
            # The server's monitor downloads it (on its next sweep): never this page thread.
            get_studio().retry_download(task.id)
            st.rerun(scope="app")
    cancellable = needs_refresh(task) and task.status is not TaskStatus.SUCCEEDED
    cancellable = cancellable and caps is not None and caps.can_cancel
    if cancellable and buttons.button(
        "Cancel", key=f"cancel_{key}_{task.id}", icon=":material/stop:"
    ):
        with sentences("canceling the task"):
            get_studio().cancel(task.id)
            st.rerun(scope="app")
    retryable = task.status.terminal or task.status is TaskStatus.UNKNOWN
    if task.status is TaskStatus.FAILED and not retry_helps(task.error_kind):
        # The provider refused the content itself: the same files would be refused again
        # (and maybe charged), so the way on is other inputs, not Retry.
        retryable = False
        _other_inputs(buttons)
    if retryable and task.inputs is not None and caps is not None and caps.can_create:
        label = "Run again" if task.status is TaskStatus.SUCCEEDED else "Retry"
        if buttons.button(
            label,
            key=f"retry_{key}_{task.id}",
            icon=":material/replay:",
            help="Starts a NEW task with the same inputs and options (a new charge). "
            "This task stays as it is.",
        ):
            with sentences("starting the retry"):
                # One retry per task: a double click or rerun finds the same new task.
                new = get_studio().retry(task.id, idempotency_key=f"retry:{task.id}")
                st.session_state["_retried"] = (task.id, new.id)
                st.rerun(scope="app")
    if buttons.button(
        "Delete", key=f"delete_{key}_{task.id}", icon=":material/delete:", type="tertiary"
    ):
        _confirm_delete(task)
    if key != "detail":
        try:
            buttons.page_link(
                "pages/tasks.py",
                label="Details",
                icon=":material/open_in_new:",
                query_params={"task": task.id},
            )
        except StreamlitAPIException:
            # Rendered outside the app's navigation (a test harness): a plain link will do.
            buttons.markdown(f"[Details]({app_base_url()}/tasks?task={task.id})")


def _other_inputs(buttons: DeltaGenerator) -> None:
    try:
        buttons.page_link("pages/create.py", label=OTHER_INPUTS, icon=":material/swap_horiz:")
    except StreamlitAPIException:
        # Rendered outside the app's navigation (a test harness): a plain link will do.
        buttons.markdown(f"[{OTHER_INPUTS}]({app_base_url()}/)")


@st.dialog("Delete this task?")
def _confirm_delete(task: Task) -> None:
    live = task.status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.SUBMITTING)
    st.write(
        f"The {provider_name(task.provider)} task `{task.id}` and its result file will be "
        "removed from this computer. This cannot be undone."
    )
    if live:
        st.warning("It is still running: it will be canceled first where the provider allows.")
    yes, no = st.columns(2)
    if yes.button("Delete", type="primary", key=f"confirm_delete_{task.id}"):
        with sentences("deleting the task"):
            get_studio().delete(task.id)
            if st.query_params.get("task") == task.id:
                del st.query_params["task"]
            st.rerun()
    if no.button("Keep it", key=f"keep_{task.id}"):
        st.rerun()
