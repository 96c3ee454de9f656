"""The driving clip and every provider's result side by side, under one shared control bar.

A Streamlit components-v2 element (inline HTML/CSS/JS, no iframe, no build step): all tiles
play from one master clock in the browser; Python only describes the tiles. Videos stream from
the URLs given (the app's `/files/...` route, which honours Range requests), never through the
session.

    synced_player(
        [
            PlayerTile(id="reference", label="Driving clip", src=drive_url, reference=True),
            PlayerTile(id=task.id, label="Runway", src=result_url, status="Succeeded · 41 s"),
            PlayerTile(id=other.id, label="CometAPI", status="Running · 42 %"),
        ],
        key="compare_player",
        fps=24.0,
    )

Calling it again with the same `key` (every rerun) keeps the browser's player — playback, mode,
audio choice — and only applies what changed: a tile whose status becomes a video starts in
sync with the others, without the rest restarting.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PlayerTile", "synced_player"]

COMPONENT_NAME = "reenact_synced_player"


class PlayerTile(BaseModel):
    """One tile. Label and status are shown as plain text (they come from providers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)  # stable across reruns: the task id, or "reference"
    label: str  # provider name, or "Result A" in blind mode
    src: str | None = None  # video URL, or None while there is none
    status: str | None = None  # shown instead of the video when src is None, else beside label
    reference: bool = False  # the driving clip


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _slim(source: str, *, css: bool) -> str:
    """The asset as sent: Streamlit puts a v2 component's JS and CSS into the element itself,
    so they travel with every script run. Comments, blank lines and indentation go (safe for
    these files: no string spans lines)."""
    if css:
        source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not (not css and line.startswith("//")))


@cache
def _renderer() -> Any:
    # Imported here so that importing the module (AppTest, CLI tooling) does not pull in
    # Streamlit's component registry before a runtime exists.
    import streamlit as st

    return st.components.v2.component(
        COMPONENT_NAME,
        css=_slim(_asset("player.css"), css=True),
        js=_slim(_asset("player.js"), css=False),
    )


def player_data(tiles: list[PlayerTile], *, fps: float, height: int | None) -> dict[str, Any]:
    """What the browser receives (plain JSON): identical input gives identical JSON, so a
    rerun that changes nothing does not even reach the component's JavaScript."""
    ids = [t.id for t in tiles]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"Tile ids must be unique; repeated: {', '.join(dupes)}")
    if not fps > 0:
        raise ValueError("fps must be positive")
    if height is not None and height <= 0:
        raise ValueError("height must be a positive number of pixels")
    return {
        "tiles": [t.model_dump() for t in tiles],
        "fps": float(fps),
        "height": height,
    }


def synced_player(
    tiles: list[PlayerTile], *, key: str, fps: float = 24.0, height: int | None = None
) -> None:
    """Show `tiles` (in the given order: the reference first, then the providers as chosen)
    as a synced grid with one control bar, a two-up wipe and a focus view.

    key: required and stable — it is what keeps the browser's player (and its playback)
    alive across reruns. fps: frame step size and the sync tolerance. height: the most the
    tiles may take vertically, in px (tiles shrink to fit; default: about 72 % of the window).
    """
    data = player_data(tiles, fps=fps, height=height)
    _renderer()(key=key, data=data)
