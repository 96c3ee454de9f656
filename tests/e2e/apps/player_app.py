"""Harness page for the synced player's browser tests: the tiles come from the environment
(set by tests/e2e/test_synced_player.py), plus two buttons that rerun the script the way the
Compare page does while tasks run — one changes nothing, one lands a pending result."""

from __future__ import annotations

import json
import os

import streamlit as st

from components.synced_player import PlayerTile, synced_player

st.set_page_config(page_title="Synced player harness", layout="wide")

tiles = [PlayerTile.model_validate(t) for t in json.loads(os.environ["PLAYER_TILES"])]
# ?without=ID drops a tile, ?height=PX bounds the tiles (layout checks).
tiles = [t for t in tiles if t.id != st.query_params.get("without")]
height = st.query_params.get("height")
landed = json.loads(os.environ.get("PLAYER_LANDED", "null"))

if st.session_state.get("landed") and landed:
    tiles = [
        t.model_copy(update={"src": landed["src"], "status": "Succeeded"})
        if t.id == landed["id"]
        else t
        for t in tiles
    ]

st.title("Synced player")
left, right, _ = st.columns([1, 1, 4])
if left.button("Rerun", key="rerun"):
    st.session_state["reruns"] = st.session_state.get("reruns", 0) + 1
if right.button("Land result", key="land"):
    st.session_state["landed"] = True
    st.rerun()
st.caption(f"Reruns: {st.session_state.get('reruns', 0)}")
if st.toggle("Notice above the player", key="notice"):
    st.info("An element that appears above the player moves it down the page.")

synced_player(
    tiles,
    key="player",
    fps=float(os.environ.get("PLAYER_FPS", "24")),
    height=int(height) if height else None,
)
