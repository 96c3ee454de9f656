"""Server entry point: `streamlit run app.py`.

`st.App` gives one lifespan per server process, which starts exactly one background monitor
(polling providers, archiving results) whether or not a browser is open.
"""

from __future__ import annotations

import streamlit as st

app = st.App("ui.py")
