"""Settings blocks: a provider's status and key source (never the key), and storage."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import streamlit as st
from sqlalchemy.engine import make_url

from components.connection import test_connection
from components.providers import accepts_sentence
from services.config import Settings
from services.studio import ProviderInfo, Studio

_SOURCES = {"env": "environment variable", "secrets": ".streamlit/secrets.toml"}


def _masked(url: str) -> str:
    """An address as shown: any user:password part hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unreadable address)"
    if parts.username or parts.password:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=f"***@{host}{port}")
    return urlunsplit(parts)


def provider_row(studio: Studio, info: ProviderInfo) -> None:
    av = info.availability
    conf = studio.settings.provider(info.id)
    with st.container(border=True, key=f"settings_{info.id}"):
        name_col, status_col, action_col = st.columns([2, 3, 1], vertical_alignment="center")
        name_col.markdown(f"**{info.name}**  \n:gray[`{info.id}`]")
        with status_col:
            if info.id == "local":
                st.markdown(
                    ":green-badge[Offline · no key needed]"
                    if av.available
                    else f":gray-badge[Unavailable] {av.reason or ''}"
                )
            elif av.available:
                where = _SOURCES.get(av.key_source or "", "configuration")
                st.markdown(
                    f":green-badge[:material/key: Configured] key from the {where} "
                    f"`{conf.key_variable}`"
                )
            else:
                st.markdown(f":gray-badge[Not configured] {av.reason or ''}")
            st.caption(
                accepts_sentence(info.capabilities)
                if info.capabilities.can_create
                else "Follows tasks made elsewhere by their id."
            )
            address = getattr(studio.provider(info.id), "base_url", None)
            if address and info.id != "local":
                st.caption(f"Address: `{_masked(address)}`")
        clicked = action_col.button(
            "Test connection",
            key=f"test_{info.id}",
            disabled=not av.available,
            width="stretch",
        )
        if clicked:
            with st.spinner(f"Asking {info.name}…"):
                result = test_connection(studio, info.id)
            if result.ok:
                st.success(result.sentence, icon=":material/check_circle:")
            else:
                st.error(result.sentence, icon=":material/error:")


def storage_facts(settings: Settings) -> None:
    db = make_url(settings.database_url).render_as_string(hide_password=True)
    public = (
        f"`{settings.public_url}`"
        if settings.public_url
        else "not set (link-only providers get your uploads from the bucket below when one "
        "is set; else set `REENACT_PUBLIC_URL`, or paste links instead of uploading)"
    )
    st.markdown(
        f"- **Data folder:** `{settings.data_dir}`\n"
        f"- **Uploads:** `{settings.uploads_dir}`\n"
        f"- **Results:** `{settings.results_dir}`\n"
        f"- **Database:** `{db}`\n"
        f"- **Public address:** {public}"
    )


def prices_panel(studio: Studio, infos: list[ProviderInfo]) -> None:
    """The creator's own price per second per provider (stored with the data), used by every
    cost estimate in the app; providers that publish none (CometAPI, LiangXin) need it."""
    mine = studio.prices()
    paid = [i for i in infos if i.capabilities.can_create and i.id != "local"]
    with st.form("prices", border=True):
        values: dict[str, float | None] = {}
        for info in paid:
            published = info.capabilities.cost_per_second_usd
            hint = (
                f"published: ${published:.3f}/s" if published is not None else "no published price"
            )
            values[info.id] = st.number_input(
                f"{info.name} — US$ per second of video ({hint})",
                min_value=0.0,
                max_value=100.0,
                value=mine.get(info.id),
                step=0.01,
                format="%.3f",
                placeholder="use the published price" if published is not None else "unknown",
                key=f"price_{info.id}",
            )
        if st.form_submit_button("Save prices", icon=":material/save:"):
            for pid, value in values.items():
                if value != mine.get(pid):
                    studio.set_price(pid, value)
            st.toast("Prices saved: every estimate now uses them.")
            st.rerun()
    st.caption(
        "Leave a price empty to use the provider's published one. Estimates show "
        "“your price” when they use yours."
    )
