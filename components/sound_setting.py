"""Settings: whether silent results get the driving clip's sound (services/archive.py)."""

from __future__ import annotations

import streamlit as st

from components.common import get_studio
from components.identity import viewer
from services.archive import sound_pref_key

LABEL = "Add the driving clip's sound to results that come without any"


def sound_switch() -> None:
    """One switch per creator, on unless turned off; read by whichever monitor archives the
    result, so it applies to every result saved from now on."""
    store = get_studio().store
    key = sound_pref_key(viewer().owner)
    on = store.get_pref(key, True) is not False

    def save() -> None:
        # Only "off" is stored: a creator who never touched the switch follows the default.
        store.set_pref(key, None if st.session_state["sound_switch"] else False)

    st.toggle(LABEL, value=on, key="sound_switch", on_change=save)
    st.caption(
        "The picture is kept exactly as the provider made it and the driving clip's audio is "
        "laid under it from its first frame, cut to the result's length; the provider's own "
        "file stays beside it (`original.mp4`). Results that already have sound are left "
        "alone. From the command line: `--no-sound`."
    )
