"""One task in full (the `?task=ID` deep link), and following a task made elsewhere."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from components.common import get_studio, sentences
from components.format import ago, plain, status_label
from components.identity import viewer
from components.providers import OPTION_LABELS, provider_infos, provider_name
from components.task_card import task_cards
from services.archive import sound_note
from services.links import is_web_link
from services.models import Task


def task_detail(task_id: str) -> None:
    if st.button("All tasks", icon=":material/arrow_back:", type="tertiary", key="back"):
        del st.query_params["task"]
        st.rerun()
    task = get_studio().store.get_task(task_id)
    if task is None or not viewer().may_see(task.owner):
        st.warning(
            f"There is no task with id {plain(task_id)}. It may have been deleted; the list "
            "of tasks shows every task you can open.",
            icon=":material/search_off:",
        )
        return
    st.caption(f"{provider_name(task.provider)} · created {ago(task.created_at)}")
    main, side = st.columns([3, 2], gap="large")
    with main:
        task_cards([task], key="detail", columns=1)
    with side:
        _facts(task)
        _history(task.id)


def _facts(task: Task) -> None:
    st.markdown("##### Details")
    rows = [("Provider", provider_name(task.provider))]
    if task.provider_task_id:
        rows.append(("Provider's task id", plain(task.provider_task_id)))
    rows.append(("Created", task.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
    if task.finished_at:
        rows.append(("Finished", task.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC")))
    if task.inputs:
        for label, value in (
            ("Driving video", task.inputs.video),
            ("Character image", task.inputs.image),
            ("Character video", task.inputs.character_video),
        ):
            if value:
                rows.append((label, plain(_name(value))))
    chosen = task.options.model_dump(exclude_none=True)
    for key, value in chosen.items():
        shown = ("on" if value else "off") if isinstance(value, bool) else str(value)
        rows.append((OPTION_LABELS.get(key, key), plain(shown)))
    sound = sound_note(task)
    if sound:  # "Sound added from …" under the label "Sound": "Added from …"
        said = sound.removeprefix("Sound ")
        rows.append(("Sound", plain(said[:1].upper() + said[1:])))
    st.markdown("\n".join(f"- **{k}:** {v}" for k, v in rows))


def _name(value: str) -> str:
    return value if is_web_link(value) else Path(value).name


def _history(task_id: str) -> None:
    events = get_studio().store.events(task_id)
    with st.expander(f"History · {len(events)} events", icon=":material/history:"):
        for ev in events:
            state = f"**{status_label(ev.status)}** · " if ev.status else ""
            st.markdown(f"`{ev.at.strftime('%H:%M:%S')}` {state}{plain(ev.message)}")


def track_form() -> None:
    """Provider + its task id → a tracked task the monitor follows like any other."""
    infos = [i for i in provider_infos() if i.capabilities.can_track]
    usable = [i for i in infos if i.availability.available]
    if not usable:
        st.caption(
            "No configured provider can follow outside tasks yet. "
            + " ".join(i.availability.reason or "" for i in infos if i.availability.reason)
        )
        return
    with st.form("track_form", border=False):
        names = {i.id: i.name for i in usable}
        pid = st.selectbox("Provider", list(names), format_func=names.__getitem__)
        ptid = st.text_input(
            "The provider's task id",
            placeholder="e.g. 4f1c…",
            help="Copy it from the provider's dashboard or API answer.",
        )
        go = st.form_submit_button("Track this task", icon=":material/travel_explore:")
    if go:
        with sentences("tracking the task"):
            task = get_studio().track(pid, ptid or "", owner=viewer().owner)
            st.query_params["task"] = task.id
            st.rerun()
