"""Tasks: every task kept on this computer, newest first; `?task=ID` opens one."""

import streamlit as st

from components.common import sentences
from components.task_detail import task_detail, track_form
from components.task_list import filters, task_history

task_id = st.query_params.get("task")
with sentences("loading the task"):
    if task_id:
        # A row's Open link stays on this page, and Streamlit only writes a link's query into
        # the address bar when the page changes: said again here, a reload keeps the task.
        st.query_params["task"] = task_id
        st.title("Task")
        task_detail(task_id)
    else:
        head, action = st.columns([3, 1], vertical_alignment="bottom")
        head.title("Tasks")
        with action.popover(
            "Track a task made elsewhere", icon=":material/add_link:", width="stretch"
        ):
            track_form()
        st.caption(
            "Everything submitted from this app or the `reenact` CLI. Tasks keep running "
            "while this page is closed; results are saved to the data folder as they finish."
        )
        chosen_providers, chosen_states = filters()
        task_history(chosen_providers, chosen_states)
