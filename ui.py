"""The page shell: navigation only. Each page lives in `pages/`."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Reenact Studio", page_icon="🎭", layout="wide")

nav = st.navigation(
    [
        st.Page("pages/create.py", title="Create", icon="🎬", default=True),
        st.Page("pages/tasks.py", title="Tasks", icon="📋"),
        st.Page("pages/compare.py", title="Compare", icon="🪞"),
        st.Page("pages/settings.py", title="Settings", icon="⚙️"),
    ]
)
nav.run()
