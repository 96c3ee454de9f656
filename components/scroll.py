"""Bring a keyed container into view, once.

Streamlit has no scroll command, and a new element far below the fold (a run's cards after
Submit) is invisible to a creator who just clicked. A components-v2 element without markup
runs a few lines of JavaScript when it mounts: they find the container by the class
Streamlit gives a keyed container (`.st-key-<key>`) and scroll it to the top of the view.
"""

from __future__ import annotations

from functools import cache
from typing import Any

COMPONENT_NAME = "reenact_scroll_into_view"

# Mounted once per call site and run, so no cleanup; a frame later, so the container the
# element sits in has been laid out.
_JS = """
export default function (component) {
  const key = component.data && component.data.key;
  if (!key) return;
  requestAnimationFrame(() => {
    const target = document.querySelector(`.st-key-${CSS.escape(key)}`);
    if (target) target.scrollIntoView({ behavior: "smooth", block: "start" });
  });
}
"""


@cache
def _renderer() -> Any:
    # Imported here so importing the module does not touch Streamlit's component registry
    # before a runtime exists (same as the synced player).
    import streamlit as st

    return st.components.v2.component(COMPONENT_NAME, js=_JS)


def scroll_into_view(container_key: str, *, token: str) -> None:
    """Scroll the container made with `st.container(key=container_key)` into view. Call it on
    the one run that should scroll; `token` (e.g. the run id) makes each request distinct."""
    _renderer()(key=f"scroll_{container_key}", data={"key": container_key, "token": token})
