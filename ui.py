"""The page shell: navigation only. Each page lives in `pages/`."""

from __future__ import annotations

import streamlit as st

st.set_page_config(
    page_title="Reenact Studio", page_icon=":material/theater_comedy:", layout="wide"
)

nav = st.navigation(
    [
        st.Page("pages/create.py", title="Create", icon=":material/movie_edit:", default=True),
        st.Page("pages/tasks.py", title="Tasks", icon=":material/list_alt:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ],
    position="top",
)
nav.run()
