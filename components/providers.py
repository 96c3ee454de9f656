"""Provider facts for pages: who is configured, what each accepts, what it costs.

Read from the Studio (no network: availability only looks at configuration), cached briefly
so a rerun does not rebuild provider objects.
"""

from __future__ import annotations

import streamlit as st

from components.common import get_studio
from services.models import ProviderCapabilities
from services.providers.catalog import ProviderInfo

OPTION_LABELS = {
    "expression_intensity": "Expression intensity",
    "body_control": "Body control",
    "seed": "Seed",
    "ratio": "Output ratio",
    "public_figure_threshold": "Public-figure moderation",
}


@st.cache_data(ttl=30, show_spinner=False)
def provider_infos() -> list[ProviderInfo]:
    return get_studio().providers()


def info_by_id() -> dict[str, ProviderInfo]:
    return {p.id: p for p in provider_infos()}


def provider_name(provider_id: str) -> str:
    info = info_by_id().get(provider_id)
    return info.name if info else provider_id


def capabilities(provider_id: str) -> ProviderCapabilities | None:
    info = info_by_id().get(provider_id)
    return info.capabilities if info else None


def accepts_sentence(caps: ProviderCapabilities) -> str:
    """What a provider takes, in one line (shown beside its name in the picker)."""
    parts = ["driving video"]
    parts.append("character image" if caps.requires_image else "character image (optional)")
    if caps.accepts_character_video:
        parts.append("or a character video")
    limits = []
    if caps.required_aspect:
        limits.append(f"{caps.required_aspect} only")
    if caps.reference_min_s or caps.reference_max_s:
        lo = f"{caps.reference_min_s:g}" if caps.reference_min_s else "0"
        hi = f"{caps.reference_max_s:g}" if caps.reference_max_s else "∞"
        limits.append(f"video {lo}–{hi} s")
    if caps.needs_urls:
        limits.append("fetches inputs by link")
    text = "Takes a " + ", ".join(parts)
    return text + (f" · {', '.join(limits)}" if limits else "")
