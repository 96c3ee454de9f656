"""Newer / Older buttons around a "Page N of M" caption, for any paginated list."""

from __future__ import annotations

import streamlit as st


def pager(page: int, pages: int, caption: str, *, key: str) -> int | None:
    """Draw the pager; return the page the creator asked for (None: no click this run)."""
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    asked = None
    if row.button("Newer", icon=":material/chevron_left:", disabled=page <= 1, key=f"{key}_prev"):
        asked = page - 1
    row.caption(caption)
    if row.button(
        "Older",
        icon=":material/chevron_right:",
        icon_position="right",
        disabled=page >= pages,
        key=f"{key}_next",
    ):
        asked = page + 1
    return asked
