"""Compare: every run sent to several providers, and one run as a side-by-side workspace
(`?run=ID`): synced players beside the driving clip, the numbers, a blind vote, exports."""

import streamlit as st

from components.common import sentences
from components.compare_runs import leaderboard_panel, run_list

st.title("Compare")

run_id = st.query_params.get("run")
if run_id:
    if st.button("All comparisons", icon=":material/arrow_back:", type="tertiary"):
        st.query_params.pop("run", None)
        st.rerun()
    with sentences("opening the run"):
        from components.compare_view import run_view

        run_view(run_id)
    with st.expander("Leaderboard", icon=":material/leaderboard:"), sentences("ranking"):
        leaderboard_panel()
else:
    st.caption("Runs sent to several providers at once. Open one to play them side by side.")
    runs_col, board_col = st.columns([3, 2], gap="large")
    with runs_col, sentences("loading the runs"):
        run_list()
    with board_col:
        st.subheader("Leaderboard")
        with sentences("ranking the providers"):
            leaderboard_panel()
