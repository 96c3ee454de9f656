"""Compare: runs sent to several providers, side by side (a first version; synced players,
timing and cost columns arrive with the comparison issue)."""

import streamlit as st

from components.common import get_studio, sentences
from components.format import ago
from components.providers import provider_name
from components.task_card import task_cards

st.title("Compare")
st.caption("Runs sent to several providers at once, one column per provider.")

with sentences("loading the runs"):
    store = get_studio().store
    runs = [r for r in store.list_runs(limit=30) if len(r.providers) > 1][:5]
    if not runs:
        st.info(
            "No comparisons yet. On the Create page, tick two or more providers and submit "
            "once: their results appear here side by side.",
            icon=":material/compare:",
        )
    for run in runs:
        names = ", ".join(provider_name(p) for p in run.providers)
        st.subheader(f"{names}")
        st.caption(f"Run `{run.id}` · {ago(run.created_at)}")
        tasks = store.run_tasks(run.id)
        task_cards(tasks, key=f"cmp_{run.id}", columns=min(4, max(1, len(tasks))))
