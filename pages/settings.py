"""Settings: providers and where their keys come from (never the keys), storage in use."""

import streamlit as st

from components.common import get_studio, sentences
from components.identity import account_panel, viewer
from components.input_routes import input_routes_panel
from components.providers import provider_infos
from components.settings_panel import prices_panel, provider_row, storage_facts
from components.sound_setting import sound_switch
from components.spending_panel import spending_panel
from services.config import load_settings

st.title("Settings")
st.caption(
    "Set keys as environment variables or in `.streamlit/secrets.toml`, then restart the app. "
    "Keys are never shown here, logged or stored."
)

with sentences("reading your account"):
    account_panel()

with sentences("reading the provider settings"):
    studio = get_studio()
    st.subheader("Providers")
    for info in provider_infos():
        provider_row(studio, info)

with sentences("saving the prices"):
    st.subheader("Your prices")
    prices_panel(get_studio(), provider_infos())

with sentences("reading the spending"):
    st.subheader("Spending")
    spending_panel(get_studio(), provider_infos(), can_edit=viewer().admin)

with sentences("saving the sound setting"):
    st.subheader("Sound")
    sound_switch()

with sentences("reading the storage settings"):
    # Straight from the configuration: this must show even when the database is down.
    st.subheader("Storage")
    settings = load_settings()
    storage_facts(settings)
    input_routes_panel(settings, provider_infos())
