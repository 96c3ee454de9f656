"""The page shell: navigation only (and, when the operator configured sign-in, nothing but
the sign-in page until the person has signed in). Each page lives in `pages/`."""

from __future__ import annotations

import streamlit as st

from components.identity import sign_in_page, signed_in

st.set_page_config(
    page_title="Reenact Studio", page_icon=":material/theater_comedy:", layout="wide"
)

if signed_in():
    pages = [
        st.Page("pages/create.py", title="Create", icon=":material/movie_edit:", default=True),
        st.Page("pages/tasks.py", title="Tasks", icon=":material/list_alt:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ]
    st.navigation(pages, position="top").run()
else:
    st.navigation([st.Page(sign_in_page, title="Sign in")], position="hidden").run()
